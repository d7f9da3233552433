"""The HTTP file server chargers fetch firmware from and upload diagnostics and logs to.

One route, `/t/<token>/<name>`: GET (or HEAD) streams the firmware image the token's grant is for;
PUT or POST stores an upload in the charger's folder, cut at the grant's size limit. Anything else
(a wrong or spent token, another name, another path or method) is a bare 404: nothing tells a
prober what exists. Progress goes out as FileTransfer events while the bytes flow.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from ocpp_console.csms.events import Event, FileTransfer
from ocpp_console.files.grants import Grant, Grants, _plain, unused_path

log = logging.getLogger("ocpp_console.files")

CHUNK = 64 * 1024
EVERY_BYTES = 64 * 1024  # progress events: at most one per 64 KiB or half a second, and the last
EVERY_S = 0.5


class Progress:
    """Publishes a transfer's FileTransfer events, throttled."""

    def __init__(self, publish: Callable[[Event], None], grant: Grant, name: str, total: int | None) -> None:
        self.publish, self.grant, self.name, self.total = publish, grant, name, total
        self.bytes = 0
        self._sent_bytes = -1
        self._sent_at = 0.0

    def _event(self, done: bool = False, error: str | None = None) -> FileTransfer:
        return FileTransfer(self.grant.charger_id, self.grant.kind, self.name, "http", self.bytes, self.total, done, error)

    def add(self, n: int) -> None:
        self.bytes += n
        now = time.monotonic()
        if self.bytes - self._sent_bytes >= EVERY_BYTES or now - self._sent_at >= EVERY_S:
            self._sent_bytes, self._sent_at = self.bytes, now
            self.publish(self._event())

    def end(self, error: str | None = None) -> None:
        self.publish(self._event(done=True, error=error))


def _not_found() -> web.Response:
    return web.Response(status=404)


class HttpFileServer:
    def __init__(self, grants: Grants, publish: Callable[[Event], None]) -> None:
        self.grants = grants
        self.publish = publish
        self.port: int | None = None
        self._runner: web.AppRunner | None = None

    def app(self) -> web.Application:
        app = web.Application(client_max_size=1024)  # bodies are streamed, never read whole
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        return app

    async def start(self, host: str, port: int) -> int:
        runner = web.AppRunner(self.app(), access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except OSError:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = runner.addresses[0][1]
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- requests ---------------------------------------------------------------------

    def _grant(self, request: web.Request) -> tuple[Grant, str] | None:
        """The grant and plain file name a request's path names, if any."""
        parts = request.path.split("/")  # aiohttp has already %-decoded it
        if len(parts) != 4 or parts[:2] != ["", "t"]:
            return None
        grant = self.grants.check_token(parts[2], request.remote)
        if grant is None:
            return None
        try:
            name = _plain(parts[3])
        except ValueError:
            return None
        return grant, name

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        found = self._grant(request)
        if found is None:
            log.info("file server: refused %s %s from %s", request.method, _masked(request.path), request.remote)
            return _not_found()
        grant, name = found
        if request.method in ("GET", "HEAD") and not grant.upload and name == grant.name:
            return await self._download(request, grant, name)
        if request.method in ("PUT", "POST") and grant.upload:
            return await self._upload(request, grant, name)
        log.info("file server: refused %s %s from %s", request.method, _masked(request.path), request.remote)
        return _not_found()

    async def _download(self, request: web.Request, grant: Grant, name: str) -> web.StreamResponse:
        path = self.grants.firmware_path(name)
        try:
            handle = path.open("rb")
        except OSError:
            log.warning("%s: firmware image %s missing from the library (%s)", grant.charger_id, name, path)
            return _not_found()
        with handle:
            total = path.stat().st_size
            response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
            response.content_length = total
            await response.prepare(request)
            if request.method == "HEAD":
                return response
            progress = Progress(self.publish, grant, name, total)
            log.info("%s: downloading %s (%d bytes) over HTTP from %s", grant.charger_id, name, total, request.remote)
            try:
                while chunk := handle.read(CHUNK):
                    await response.write(chunk)
                    progress.add(len(chunk))
                await response.write_eof()
            except (ConnectionError, OSError) as exc:
                # The charger may ask again with the same URL until one download completes.
                progress.end(f"connection lost: {exc}")
                raise
            self.grants.consume(grant)
            progress.end()
            log.info("%s: downloaded %s (%d bytes)", grant.charger_id, name, progress.bytes)
            return response

    async def _upload(self, request: web.Request, grant: Grant, name: str) -> web.StreamResponse:
        folder = self.grants.upload_dir(grant.charger_id)
        folder.mkdir(parents=True, exist_ok=True)
        partial = folder / f".{name}.{secrets.token_hex(4)}.part"  # two uploads of one name do not mix
        limit = grant.max_bytes
        declared = request.content_length
        progress = Progress(self.publish, grant, name, declared)
        error: str | None = None
        try:
            with partial.open("wb") as out:
                async for chunk in request.content.iter_chunked(CHUNK):
                    if limit is not None and progress.bytes + len(chunk) > limit:
                        error = f"larger than the limit of {limit} bytes"
                        break
                    out.write(chunk)
                    progress.add(len(chunk))
        except (ConnectionError, OSError) as exc:
            error = f"connection lost: {exc}"
        if error is not None:
            _remove(partial)
            if error.startswith("larger"):
                self.grants.consume(grant)  # the same file would be cut again: the operator asks anew
            progress.end(error)
            log.warning("%s: upload %s refused after %d bytes: %s", grant.charger_id, name, progress.bytes, error)
            if error.startswith("larger"):
                return web.Response(status=413, headers={"Connection": "close"})
            return web.Response(status=400)
        target = unused_path(folder, name)  # an earlier upload of the same name is kept
        partial.replace(target)
        self.grants.consume(grant)
        progress.end()
        log.info("%s: received %s (%d bytes) as %s", grant.charger_id, name, progress.bytes, target)
        return web.Response(status=201)


def _remove(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass


def _masked(path: str) -> str:
    """A request path for the log, the token cut short (a live one must not be copied from logs)."""
    parts = path.split("/")
    if len(parts) > 2 and parts[1] == "t":
        parts[2] = parts[2][:4] + "..."
    return "/".join(parts)[:200]
