"""Local authorization: the Local Authorization List (SendLocalList) and the authorization cache."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ocpp.v16.enums import AuthorizationStatus, UpdateStatus, UpdateType

from ocpp_console.sim.clock import parse_time, utc_now


@dataclass(frozen=True, slots=True)
class TagInfo:
    status: AuthorizationStatus
    parent_id_tag: str | None = None
    expiry_date: str | None = None

    @classmethod
    def from_payload(cls, info: Mapping[str, Any] | None) -> TagInfo:
        """idTagInfo as the ocpp library hands it over (snake_case keys)."""
        info = info or {}
        try:
            status = AuthorizationStatus(info.get("status", AuthorizationStatus.invalid))
        except ValueError:
            status = AuthorizationStatus.invalid
        return cls(status, info.get("parent_id_tag"), info.get("expiry_date"))

    def effective(self) -> TagInfo:
        """An Accepted entry past its expiry date counts as Expired."""
        expiry = parse_time(self.expiry_date)
        if self.status == AuthorizationStatus.accepted and expiry is not None and expiry <= utc_now():
            return TagInfo(AuthorizationStatus.expired, self.parent_id_tag, self.expiry_date)
        return self

    @property
    def accepted(self) -> bool:
        return self.status == AuthorizationStatus.accepted


@dataclass(slots=True)
class LocalAuth:
    local_list: dict[str, TagInfo] = field(default_factory=dict)
    version: int = 0
    cache: dict[str, TagInfo] = field(default_factory=dict)

    def lookup_list(self, id_tag: str) -> TagInfo | None:
        info = self.local_list.get(id_tag)
        return info.effective() if info else None

    def lookup_cache(self, id_tag: str) -> TagInfo | None:
        info = self.cache.get(id_tag)
        return info.effective() if info else None

    def remember(self, id_tag: str, info: TagInfo) -> None:
        self.cache[id_tag] = info

    def clear_cache(self) -> None:
        self.cache.clear()

    def list_version(self, enabled: bool) -> int:
        """GetLocalListVersion: -1 when the list is not supported (disabled), 0 when it is empty."""
        if not enabled:
            return -1
        return self.version if self.local_list else 0

    def update(
        self,
        enabled: bool,
        version: int,
        update_type: str,
        entries: Iterable[Mapping[str, Any]],
        max_send: int,
        max_length: int,
    ) -> UpdateStatus:
        """SendLocalList. The list changes only when the whole update is accepted."""
        if not enabled:
            return UpdateStatus.not_supported
        entries = list(entries)
        if len(entries) > max_send:
            return UpdateStatus.failed
        kind = UpdateType(update_type)
        if kind == UpdateType.differential and version <= self.version:
            # Spec: a differential update must carry a newer version than the list has.
            return UpdateStatus.version_mismatch
        new = {} if kind == UpdateType.full else dict(self.local_list)
        for item in entries:
            tag = item.get("id_tag")
            if not isinstance(tag, str):
                return UpdateStatus.failed
            info = item.get("id_tag_info")
            if info is None:
                if kind == UpdateType.full:
                    return UpdateStatus.failed  # a full list entry must say what the tag may do
                new.pop(tag, None)  # differential without idTagInfo: remove the tag
            else:
                new[tag] = TagInfo.from_payload(info)
        if len(new) > max_length:
            return UpdateStatus.failed
        self.local_list = new
        self.version = version
        return UpdateStatus.accepted
