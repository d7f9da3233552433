"""What the operator is told about a remote action, in sentences: the confirmation before it
(naming the charger, connector and the transactions it would disturb, with a button named after
what it does) and the charger's answer after it (naming the charger, and the connector or
transaction when there is one), never a Python repr."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ocpp_console.site import CommandError, offline_message, unknown_message
from ocpp_console.secret_keys import is_secret_key
from ocpp_console.ui.live import RunningTx, fmt_kwh, local_time

Values = dict[str, Any]


@dataclass(frozen=True)
class Confirmation:
    title: str
    message: str
    button: str  # named after what it does: "Stop transaction", "Reset charger"


# -- small helpers ------------------------------------------------------------------------


def _get(obj: Any, *names: str) -> Any:
    """A field of an answer: OCPP JSON (camelCase, as the Site answers) or a call_result dataclass
    (snake_case attributes): callers name both spellings."""
    for name in names:
        value = obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)
        if value is not None:
            return value
    return None


def _status(result: Any) -> str:
    return str(_get(result, "status") or "")


def _connector(connector_id: int | None) -> str:
    if connector_id in (None, 0):
        return "the whole charger"
    return f"connector {connector_id}"


def _Connector(connector_id: int | None) -> str:  # noqa: N802 - the same, starting a sentence
    where = _connector(connector_id)
    return where[0].upper() + where[1:]


def _tx_phrase(tx: RunningTx) -> str:
    return f"transaction {tx.id} on connector {tx.connector_id} ({tx.id_tag}, {fmt_kwh(tx.energy_wh)} so far)"


def _affected(running: Sequence[RunningTx], connector_id: int | None = None) -> list[RunningTx]:
    return [tx for tx in running if connector_id in (None, 0) or tx.connector_id == connector_id]


def _disturbs(running: Sequence[RunningTx], connector_id: int | None = None, verb: str = "It stops") -> str:
    """The transactions an action would touch, named, e.g. "It stops transaction 12 on connector 2
    (SIMTAG0003, 4.20 kWh so far)."."""
    affected = _affected(running, connector_id)
    if not affected:
        return "No transaction is running there."
    return f"{verb} " + "; ".join(_tx_phrase(tx) for tx in affected) + "."


def _list(items: Sequence[Any], limit: int = 5) -> str:
    shown = ", ".join(str(i) for i in items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def _value(key: str, value: Any) -> str:
    return "a new key (not shown)" if is_secret_key(key) else str(value)


# -- confirmations ------------------------------------------------------------------------


def _confirm_remote_stop(cp: str, v: Values, running: Sequence[RunningTx]) -> Confirmation:
    tx_id = v["transaction_id"]
    tx = next((t for t in running if t.id == tx_id), None)
    if tx is None:
        return Confirmation(f"Stop transaction {tx_id} on {cp}?",
                            f"Transaction {tx_id} is not known to be running on {cp}; the charger decides.",
                            "Stop transaction")
    return Confirmation(
        f"Stop transaction {tx.id} on {cp} connector {tx.connector_id} ({tx.id_tag}, {fmt_kwh(tx.energy_wh)} so far)?",
        "The charger ends the session: the car stops charging and the order is settled.",
        "Stop transaction",
    )


def _confirm_reset(cp: str, v: Values, running: Sequence[RunningTx]) -> Confirmation:
    return Confirmation(f"{v['type']} reset of {cp}?",
                        f"{cp} reboots. {_disturbs(running)}", "Reset charger")


def _confirm_unlock(cp: str, v: Values, running: Sequence[RunningTx]) -> Confirmation:
    connector = v["connector_id"]
    return Confirmation(f"Unlock connector {connector} of {cp}?",
                        f"The cable lock is released. {_disturbs(running, connector)}", "Unlock connector")


def _confirm_availability(cp: str, v: Values, running: Sequence[RunningTx]) -> Confirmation:
    connector, kind = v["connector_id"], v["type"]
    title = f"Make {_connector(connector)} of {cp} {kind}?"
    if kind == "Operative":
        return Confirmation(title, "Drivers can start sessions there again.", "Make operative")
    return Confirmation(title, "No new session can start there. "
                        + _disturbs(running, connector, "The charger lets it finish first (Scheduled):"),
                        "Make inoperative")


def _confirm_profile(cp: str, v: Values, running: Sequence[RunningTx]) -> Confirmation:
    connector = v["connector_id"]
    return Confirmation(
        f"Limit {_connector(connector)} of {cp} to {v['limit']:g} {v['unit']}?",
        f"{v['purpose']} {v['profile_id']} (stack level {v['stack_level']}). "
        + _disturbs(running, connector, "It limits"),
        "Set charging profile",
    )


def _confirm_delete_certificate(cp: str, v: Values, running: Sequence[RunningTx]) -> Confirmation:
    return Confirmation(
        f"Delete certificate {v['serial_number']} from {cp}?",
        "A charger without its central system's root certificate cannot connect over TLS again.",
        "Delete certificate",
    )


CONFIRMATIONS: dict[str, Callable[[str, Values, Sequence[RunningTx]], Confirmation]] = {
    "remote_stop": _confirm_remote_stop,
    "reset": _confirm_reset,
    "unlock": _confirm_unlock,
    "availability": _confirm_availability,
    "set_profile": _confirm_profile,
    "delete_certificate": _confirm_delete_certificate,
}


def confirmation(key: str, title: str, charger_id: str, values: Values, running: Sequence[RunningTx]) -> Confirmation:
    """What to ask before an action that would disturb a car charging on `charger_id`."""
    make = CONFIRMATIONS.get(key)
    if make is not None:
        return make(charger_id, values, running)
    return Confirmation(f"{title} on {charger_id}?", _disturbs(running), title)


def lockout_confirmation(title: str, charger_id: str, values: Values, warning: str) -> Confirmation:
    key = values.get("key") or ""
    shown = "" if is_secret_key(key) else f" to {values.get('value')}"
    return Confirmation(f"Change {key} of {charger_id}{shown}?", warning, f"Change {key}")


def _kw(value: float) -> str:
    return f"{value:.1f} kW"


def site_limit_confirmation(load: dict[str, Any], limit_kw: float | None) -> Confirmation:
    """What a new site limit does to the cars charging now (`load`: Site.site_load's picture):
    lowering it lowers their shares at once and may pause some; off lets them draw their maximum."""
    sessions = load.get("sessions") or []
    fixed = [s for s in sessions if s["state"] == "fixed"]
    managed = [s for s in sessions if s["state"] != "fixed"]
    now = load.get("limit_kw")
    n = len(managed)
    cars = f"{n} running session{'s' if n != 1 else ''}"
    if limit_kw is None:
        message = ("Our shares and failsafe profiles are cleared from the chargers: "
                   + (f"the {cars} charge at their chargers' maximum, " if n else "cars charge at their chargers' maximum, ")
                   + "and nothing keeps the site under its grid connection any more.")
        return Confirmation("Turn load management off?", message, "Turn off")
    parts = []
    fixed_kw = sum(s["allocated_kw"] or 0.0 for s in fixed)
    if fixed:
        parts.append(f"{len(fixed)} charger{'s' if len(fixed) != 1 else ''} refusing profiles count as fixed loads "
                     f"({_kw(fixed_kw)} of it).")
    room = limit_kw - fixed_kw
    min_kw = float(load.get("min_kw") or 4.14)
    if not n:
        parts.insert(0, "No session is running: the next cars share it.")
    elif now is not None and limit_kw >= now:
        parts.insert(0, f"The {cars} may draw more: up to {_kw(room)} together (now {_kw(load['allocated_kw'])}).")
    else:
        fit = max(int(room // min_kw), 0) if room > 0 else 0
        lowered = "are limited at once" if now is None else f"have their shares lowered at once (now {_kw(load['allocated_kw'])} together)"
        parts.insert(0, f"The {cars} {lowered}: they share {_kw(max(room, 0.0))}.")
        if fit == 0:
            parts.append(f"That is less than the {_kw(min_kw)} a car takes at least: every session is paused.")
        elif fit < n:
            turns = load.get("rotation_minutes")
            parts.append(f"Only {fit} of them can charge at the {_kw(min_kw)} a car takes at least: {n - fit} "
                         f"{'is' if n - fit == 1 else 'are'} paused and take turns"
                         + (f" every {turns:g} minutes." if turns else "."))
    return Confirmation(f"Set the site limit to {limit_kw:g} kW?", " ".join(parts), "Set limit")


# -- answers ------------------------------------------------------------------------------


def _said(cp: str, status: str, accepted: str, refused: str) -> str:
    return accepted if status == "Accepted" else f"{refused} ({status})."


def _remote_start(cp: str, v: Values, r: Any) -> str:
    where = f" on connector {v['connector_id']}" if v.get("connector_id") else ""
    return _said(cp, _status(r),
                 f"{cp} accepted Remote Start for {v['id_tag']}{where}; waiting for its transaction to start.",
                 f"{cp} refused Remote Start for {v['id_tag']}{where}")


def _remote_stop(cp: str, v: Values, r: Any) -> str:
    return _said(cp, _status(r), f"{cp} is stopping transaction {v['transaction_id']}.",
                 f"{cp} refused to stop transaction {v['transaction_id']}")


def _reset(cp: str, v: Values, r: Any) -> str:
    return _said(cp, _status(r), f"{cp} accepted a {v['type']} reset: it reboots now.",
                 f"{cp} refused a {v['type']} reset")


def _unlock(cp: str, v: Values, r: Any) -> str:
    status = _status(r)
    if status == "Unlocked":
        return f"Connector {v['connector_id']} of {cp} is unlocked."
    if status == "NotSupported":
        return f"{cp} cannot unlock connector {v['connector_id']} (it has no cable lock it can release: NotSupported)."
    return f"{cp} failed to unlock connector {v['connector_id']} ({status})."


def _availability(cp: str, v: Values, r: Any) -> str:
    status, where, kind = _status(r), _connector(v["connector_id"]), v["type"]
    if status == "Accepted":
        return f"{_Connector(v['connector_id'])} of {cp} is now {kind}."
    if status == "Scheduled":
        return f"{_Connector(v['connector_id'])} of {cp} becomes {kind} when its running transaction ends."
    return f"{cp} refused to make {where} {kind} ({status})."


def _clear_cache(cp: str, v: Values, r: Any) -> str:
    return _said(cp, _status(r), f"{cp} emptied its authorization cache.",
                 f"{cp} did not empty its authorization cache")


def _trigger(cp: str, v: Values, r: Any) -> str:
    where = f" for connector {v['connector_id']}" if v.get("connector_id") is not None else ""
    return _said(cp, _status(r), f"{cp} will send a {v['requested_message']}{where} now.",
                 f"{cp} will not send a {v['requested_message']}{where}")


def _get_config(cp: str, v: Values, r: Any) -> str:
    keys = _get(r, "configurationKey", "configuration_key") or []
    unknown = _get(r, "unknownKey", "unknown_key") or []
    text = f"{cp} reported {len(keys)} configuration key{'s' if len(keys) != 1 else ''}"
    if unknown:
        text += f"; it does not know {_list(unknown)}"
    return text + ". They are in the Configuration tab of its detail screen."


def _change_config(cp: str, v: Values, r: Any) -> str:
    status, key, value = _status(r), v["key"], _value(v["key"], v["value"])
    if status == "Accepted":
        if key.strip().lower() == "securityprofile":
            return f"{cp} set {key} to {value}: from now on it is refused below security profile {value}."
        return f"{cp} set {key} to {value}."
    if status == "RebootRequired":
        return f"{cp} set {key} to {value}; it takes effect after a reboot (Reset)."
    if status == "NotSupported":
        return f"{cp} does not support the key {key} (NotSupported)."
    return f"{cp} refused to set {key} to {value} (Rejected: read-only, or a value it does not take)."


def _update_firmware(cp: str, v: Values, r: Any) -> str:
    return (f"Firmware update requested from {cp}: it fetches {v['location'] or v['firmware']} from {local_time(v['retrieve_date'])}. "
            "Its progress shows under Firmware update on the charger's detail screen.")


def _add_firmware(cp: str, v: Values, r: Any) -> str:
    return (f"{r['name']} is in the firmware library ({r['size']} bytes, SHA-256 {r['sha256'][:16]}...): "
            "choose it in Update Firmware.")


def _get_diagnostics(cp: str, v: Values, r: Any) -> str:
    name = _get(r, "fileName", "file_name")
    if not name:
        return f"{cp} has no diagnostics to upload."
    where = v["location"] or "the central system (listed on the charger's detail screen, Received files)"
    return (f"{cp} uploads its diagnostics as {name} to {where}. "
            "Its progress shows under Diagnostics on the charger's detail screen.")


def _reserve(cp: str, v: Values, r: Any) -> str:
    rid = _get(r, "reservationId", "reservation_id")
    status = _status(r)
    if status == "Accepted":
        return (f"{_Connector(v['connector_id'])} of {cp} is reserved for {v['id_tag']} until "
                f"{local_time(v['expiry_date'])} (reservation {rid}).")
    return f"{cp} refused to reserve {_connector(v['connector_id'])} for {v['id_tag']} ({status})."


def _cancel_reservation(cp: str, v: Values, r: Any) -> str:
    return _said(cp, _status(r), f"Reservation {v['reservation_id']} on {cp} is cancelled.",
                 f"{cp} did not cancel reservation {v['reservation_id']} (it does not hold it?)")


def _send_local_list(cp: str, v: Values, r: Any) -> str:
    status = _status(r)
    entries = len([e for e in (v.get("entries") or "").split(",") if e.strip()])
    if status == "Accepted":
        return f"{cp} holds local list version {v['list_version']} now ({v['update_type']}, {entries} entries)."
    if status == "VersionMismatch":
        return f"{cp} refused local list version {v['list_version']}: it holds another version (VersionMismatch)."
    return f"{cp} did not take local list version {v['list_version']} ({status})."


def _get_local_list_version(cp: str, v: Values, r: Any) -> str:
    version = _get(r, "listVersion", "list_version")
    if version == -1:
        return f"{cp} has no local authorization list support."
    if version == 0:
        return f"{cp} holds no local authorization list."
    return f"{cp} holds local list version {version}."


def _set_profile(cp: str, v: Values, r: Any) -> str:
    where = _connector(v["connector_id"])
    return _said(cp, _status(r),
                 f"{cp} limits {where} to {v['limit']:g} {v['unit']} ({v['purpose']} {v['profile_id']}, "
                 f"stack level {v['stack_level']}).",
                 f"{cp} refused charging profile {v['profile_id']} for {where}")


def _clear_profile(cp: str, v: Values, r: Any) -> str:
    which = []
    if v.get("id") is not None:
        which.append(f"profile {v['id']}")
    if v.get("connector_id") is not None:
        which.append(_connector(v["connector_id"]))
    if v.get("purpose"):
        which.append(v["purpose"])
    if v.get("stack_level") is not None:
        which.append(f"stack level {v['stack_level']}")
    what = f"the charging profiles matching {', '.join(which)}" if which else "all its charging profiles"
    if _status(r) == "Accepted":
        return f"{cp} cleared {what}."
    return f"{cp} has no charging profile to clear ({_status(r)}): {what}."


def _composite(cp: str, v: Values, r: Any) -> str:
    where = _connector(v["connector_id"])
    if _status(r) != "Accepted":
        return f"{cp} gave no composite schedule for {where} ({_status(r)})."
    schedule = _get(r, "chargingSchedule", "charging_schedule") or {}
    unit = _get(schedule, "charging_rate_unit", "chargingRateUnit") or ""
    periods = _get(schedule, "charging_schedule_period", "chargingSchedulePeriod") or []
    limits = [f"{_get(p, 'limit'):g} {unit} from {_get(p, 'start_period', 'startPeriod')} s" for p in periods]
    if not limits:
        return f"{cp} sets no limit on {where} for the next {v['duration']} s."
    return f"Over the next {v['duration']} s {cp} allows {where}: {_list(limits, 3)}."


def _data_transfer(cp: str, v: Values, r: Any) -> str:
    status, data = _status(r), _get(r, "data")
    if status == "UnknownVendorId":
        return f"{cp} does not know vendor {v['vendor_id']} (UnknownVendorId)."
    if status == "UnknownMessageId":
        return f"{cp} does not know message {v['message_id']} of vendor {v['vendor_id']} (UnknownMessageId)."
    answer = f" and answered {data[:60] + '...' if len(data) > 60 else data!r}" if data else ""
    verb = "took" if status == "Accepted" else f"refused ({status})"
    return f"{cp} {verb} the data transfer to {v['vendor_id']}{answer}."


def _install_certificate(cp: str, v: Values, r: Any) -> str:
    return _said(cp, _status(r), f"{cp} installed the {v['certificate_type']}.",
                 f"{cp} did not install the {v['certificate_type']}")


def _installed_certificates(cp: str, v: Values, r: Any) -> str:
    hashes = _get(r, "certificateHashData", "certificate_hash_data") or []
    if _status(r) != "Accepted" or not hashes:
        return f"{cp} holds no {v['certificate_type']}."
    serials = [str(_get(h, "serial_number", "serialNumber")) for h in hashes]
    return (f"{cp} holds {len(hashes)} {v['certificate_type']}{'s' if len(hashes) != 1 else ''} "
            f"(serial {_list(serials)}; their hashes are in the message log).")


def _delete_certificate(cp: str, v: Values, r: Any) -> str:
    status = _status(r)
    if status == "NotFound":
        return f"{cp} holds no certificate with serial {v['serial_number']} (NotFound)."
    return _said(cp, status, f"{cp} deleted certificate {v['serial_number']}.",
                 f"{cp} did not delete certificate {v['serial_number']}")


def _certificate_signed(cp: str, v: Values, r: Any) -> str:
    return _said(cp, _status(r), f"{cp} accepted its certificate; it shows on the charger's detail screen.",
                 f"{cp} refused the certificate")


def _renew_certificate(cp: str, v: Values, r: Any) -> str:
    return _said(cp, _status(r),
                 f"{cp} will send a certificate signing request; the operator CA signs it, and the new certificate "
                 "shows on its detail screen once the charger has taken it.",
                 f"{cp} did not agree to request a new certificate")


def _install_operator_ca(cp: str, v: Values, r: Any) -> str:
    return _said(cp, _status(r), f"The operator CA is installed on {cp} as its central system root certificate.",
                 f"{cp} did not install the operator CA")


def _get_log(cp: str, v: Values, r: Any) -> str:
    status, name = _status(r), _get(r, "filename")
    if status in ("Accepted", "AcceptedCanceled"):
        replaced = " (it cancelled the upload it was doing)" if status == "AcceptedCanceled" else ""
        file = f" as {name}" if name else ""
        return (f"{cp} uploads its {v['log_type']}{file} to {v['location'] or 'the central system'}{replaced} (request {v['request_id']}). "
                "Its progress shows in the overview's events.")
    return f"{cp} refused to upload its {v['log_type']} ({status})."


def _signed_update_firmware(cp: str, v: Values, r: Any) -> str:
    status = _status(r)
    if status in ("Accepted", "AcceptedCanceled"):
        replaced = " (it cancelled the update it was doing)" if status == "AcceptedCanceled" else ""
        return (f"Signed firmware update requested from {cp}{replaced}: it fetches {v['location']} from "
                f"{local_time(v['retrieve_date'])}. Its progress shows under Firmware update on the charger's "
                "detail screen.")
    return f"{cp} refused the signed firmware update ({status})."


SENTENCES: dict[str, Callable[[str, Values, Any], str]] = {
    "remote_start": _remote_start,
    "remote_stop": _remote_stop,
    "reset": _reset,
    "unlock": _unlock,
    "availability": _availability,
    "clear_cache": _clear_cache,
    "trigger": _trigger,
    "get_config": _get_config,
    "change_config": _change_config,
    "update_firmware": _update_firmware,
    "add_firmware": _add_firmware,
    "get_diagnostics": _get_diagnostics,
    "reserve": _reserve,
    "cancel_reservation": _cancel_reservation,
    "send_local_list": _send_local_list,
    "get_local_list_version": _get_local_list_version,
    "set_profile": _set_profile,
    "clear_profile": _clear_profile,
    "composite_schedule": _composite,
    "data_transfer": _data_transfer,
    "install_certificate": _install_certificate,
    "installed_certificates": _installed_certificates,
    "delete_certificate": _delete_certificate,
    "certificate_signed": _certificate_signed,
    "extended_trigger": _trigger,
    "renew_certificate": _renew_certificate,
    "install_operator_ca": _install_operator_ca,
    "get_log": _get_log,
    "signed_update_firmware": _signed_update_firmware,
}

# Answers that mean the charger did what was asked (or will): the rest are told as warnings.
GOOD = {"", "Accepted", "Unlocked", "Scheduled", "RebootRequired", "AcceptedCanceled"}


def answer(key: str, title: str, charger_id: str, values: Values, result: Any) -> tuple[str, str]:
    """The charger's answer as (sentence, severity)."""
    severity = "information" if _status(result) in GOOD else "warning"
    return SENTENCES[key](charger_id, values, result), severity


def failure(title: str, charger_id: str, error: CommandError) -> str:
    """No answer, or an error instead of one, as a sentence."""
    text = str(error).rstrip(".")
    not_sent = text in (offline_message(charger_id), unknown_message(charger_id))
    if error.outcome == "invalid" or not_sent:
        return f"{title}: {text}." if "nothing was sent" in text else f"{title} was not sent: {text}."
    if error.outcome == "timeout":
        return f"{text}; it may still act on it (see the message log)."
    if error.outcome == "callerror":
        return f"{charger_id} answered {title} with an error: {text}."
    return f"{text}."
