"""Benchmark driver: the same load against `ocpp-console serve` and against the bare-library
baseline, in one run, printed as one table with the ratio.

    python bench/run.py                          # 1,000 chargers, MeterValues as fast as they are answered
    python bench/run.py --chargers 5000 --rate 2000 --duration 30
    python bench/run.py --smoke                  # a few seconds, for CI
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def thread_cpu_seconds(pid: int) -> dict[str, float]:
    """CPU seconds per thread: the event loop is the process's first thread, the rest are SQLite's."""
    out: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        name = "loop" if task.name == str(pid) else "other threads"
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / TICKS
    return out


def _threads_of(pid: int) -> list[int]:
    return [int(t.name) for t in Path(f"/proc/{pid}/task").iterdir()]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def start_server(kind: str, port: int, tmp: Path, extra: tuple[str, ...] = ()) -> subprocess.Popen[str]:
    if kind == "ocpp-console":
        cmd = [sys.executable, "-m", "ocpp_console", "serve", "--config", str(tmp / "none.toml"), "--host", "127.0.0.1",
               "--port", str(port), "--db", str(tmp / f"bench-{port}.sqlite"), "--unknown-chargers", "accept",
               "--unknown-id-tags", "accept", "--log-level", "WARNING", "--max-calls-per-second", "1000"]
        cmd += extra
    else:
        cmd = [sys.executable, str(ROOT / "bench" / "baseline.py"), "--port", str(port)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("OCPP_CONSOLE_")}
    # The server's output goes to a file: a pipe nobody reads during the run would stop the
    # server once it filled (64 KiB of warnings).
    log_path = tmp / f"{kind}-{port}.log"
    with log_path.open("w") as log_file:
        proc = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT)
    deadline = time.monotonic() + 30
    # serve logs "listening" at WARNING level only when asked; poll the port instead
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(f"{kind} exited: {log_path.read_text()[-4000:]}")
            time.sleep(0.05)
    raise RuntimeError(f"{kind} did not start")


def run_load(kind: str, args: argparse.Namespace, tmp: Path) -> dict[str, float | int | str | None]:
    port = free_port()
    server = start_server(kind, port, tmp, tuple(args.serve_arg) if kind == "ocpp-console" else ())
    cores = sorted(os.sched_getaffinity(0))
    if args.pin and len(cores) > 1:
        # the server on a core of its own, as on a real site (its chargers are elsewhere); the load
        # generators on the others, so that their own scheduling does not show as server latency
        for pid in _threads_of(server.pid):
            os.sched_setaffinity(pid, {cores[0]})
    try:
        time.sleep(0.5)
        idle_rss = rss_kib(server.pid)
        procs = []
        per = args.chargers // args.processes
        for i in range(args.processes):
            procs.append(subprocess.Popen(
                [sys.executable, str(ROOT / "bench" / "loadgen.py"), "--url", f"ws://127.0.0.1:{port}",
                 "--chargers", str(per), "--rate", str(args.rate / args.processes), "--duration", str(args.duration),
                 "--heartbeat", str(args.heartbeat), "--prefix", f"{kind[:4].upper()}{i}", "--hold", "1"],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
            ))
        if args.pin and len(cores) > 1:
            for p in procs:
                os.sched_setaffinity(p.pid, set(cores[1:]))
        for p in procs:  # wait until every generator has its chargers connected and booted
            assert p.stderr is not None
            for line in p.stderr:
                if '"connected"' in line:
                    break
        cpu0, t0, threads0 = cpu_seconds(server.pid), time.monotonic(), thread_cpu_seconds(server.pid)
        connected_rss = rss_kib(server.pid)
        results = [json.loads(p.communicate(timeout=args.duration + 120)[0].strip().splitlines()[-1]) for p in procs]
        cpu1, t1, threads1 = cpu_seconds(server.pid), time.monotonic(), thread_cpu_seconds(server.pid)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
    calls = sum(r["calls"] for r in results)
    connected = sum(r["connected"] for r in results)
    return {
        "connected": connected,
        "booted": sum(r["booted"] for r in results),
        "errors": sum(r["errors"] + r["connect_failures"] for r in results),
        "calls_per_s": round(sum(r["calls_per_s"] for r in results), 1),
        "p50_ms": max(r["p50_ms"] for r in results),
        "p95_ms": max(r["p95_ms"] for r in results),
        "p99_ms": max(r["p99_ms"] for r in results),
        "max_ms": max(r["max_ms"] or 0 for r in results),
        "cpu_s_per_1000_calls": round((cpu1 - cpu0) / calls * 1000, 3) if calls else None,
        "server_cpu_share": round((cpu1 - cpu0) / (t1 - t0), 2),
        "loop_cpu_s_per_1000_calls": round((threads1["loop"] - threads0["loop"]) / calls * 1000, 3) if calls else None,
        "other_cpu_s_per_1000_calls": round((threads1.get("other threads", 0) - threads0.get("other threads", 0))
                                            / calls * 1000, 3) if calls else None,
        "idle_rss_mib": round(idle_rss / 1024, 1),
        "rss_kib_per_charger": round((connected_rss - idle_rss) / connected, 1) if connected else None,
    }


ROWS = [
    ("connected", "chargers connected"), ("booted", "chargers booted"), ("errors", "errors"),
    ("calls_per_s", "calls/s (MeterValues + Heartbeat)"), ("p50_ms", "round trip p50 (ms)"),
    ("p95_ms", "round trip p95 (ms)"), ("p99_ms", "round trip p99 (ms)"), ("max_ms", "round trip max (ms)"),
    ("cpu_s_per_1000_calls", "server CPU s per 1,000 calls"),
    ("loop_cpu_s_per_1000_calls", "... of which the event loop's thread"),
    ("other_cpu_s_per_1000_calls", "... of which other threads (SQLite)"), ("server_cpu_share", "server CPU (cores busy)"),
    ("idle_rss_mib", "server RSS idle (MiB)"), ("rss_kib_per_charger", "RSS per connected charger (KiB)"),
]


def table(ours: dict, base: dict) -> str:
    lines = ["| metric | ocpp-console (persists every call) | bare ocpp library (stores nothing) | ratio |", "|---|---|---|---|"]
    for key, label in ROWS:
        a, b = ours.get(key), base.get(key)
        ratio = f"{a / b:.2f}" if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b else ""
        lines.append(f"| {label} | {a} | {b} | {ratio} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chargers", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=100_000.0, help="MeterValues/s asked for (default: as fast as answered)")
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--heartbeat", type=float, default=60.0)
    parser.add_argument("--processes", type=int, default=1, help="load generator processes")
    parser.add_argument("--smoke", action="store_true", help="20 chargers for 2 s (CI)")
    parser.add_argument("--json", action="store_true", help="print the raw figures as JSON too")
    parser.add_argument("--serve-arg", action="append", default=[], metavar="ARG",
                        help="one more argument for serve (repeat it), e.g. --serve-arg=--sqlite-synchronous=NORMAL")
    parser.add_argument("--pin", action="store_true",
                        help="the server on the first core, the load generators on the others (Linux)")
    parser.add_argument("--only", choices=("ocpp-console", "baseline"), help="run one side only")
    args = parser.parse_args()
    if args.smoke:
        args.chargers, args.rate, args.duration, args.processes = 20, 200.0, 2.0, 1
    with tempfile.TemporaryDirectory() as tmp:
        ours = run_load("ocpp-console", args, Path(tmp)) if args.only != "baseline" else {}
        base = run_load("baseline", args, Path(tmp)) if args.only != "ocpp-console" else {}
    print(f"{args.chargers} chargers, MeterValues asked at {args.rate:g}/s, {args.duration:g} s measured, "
          f"{args.processes} load process(es), {os.cpu_count()} cores")
    print(table(ours, base))
    if args.json:
        print(json.dumps({"ocpp-console": ours, "baseline": base}))
    if not ours:
        return 0
    return 0 if ours["errors"] == 0 and ours["connected"] == args.chargers else 1


if __name__ == "__main__":
    raise SystemExit(main())
