"""One colour scheme for connector states, used by every screen."""

from __future__ import annotations

from rich.text import Text

STATUS_STYLES: dict[str, str] = {
    "Available": "bold green",
    "Preparing": "bold yellow",
    "Charging": "bold dodger_blue1",
    "SuspendedEV": "bold cyan",
    "SuspendedEVSE": "bold cyan",
    "Finishing": "bold magenta",
    "Reserved": "bold dark_orange",
    "Unavailable": "grey50",
    "Faulted": "bold white on red",
    "Unknown": "dim",
}

REGISTRATION_STYLES = {"Accepted": "green", "Pending": "bold yellow", "Rejected": "bold red"}


def status_text(status: str | None, label: str | None = None) -> Text:
    status = status or "Unknown"
    return Text(label or status, style=STATUS_STYLES.get(status, "dim"))


def registration_text(registration: str) -> Text:
    label = "awaiting approval" if registration == "Pending" else registration
    return Text(label, style=REGISTRATION_STYLES.get(registration, ""))


def online_text(connected: bool) -> Text:
    return Text("● online", style="green") if connected else Text("○ offline", style="grey50")


def connectors_text(connectors: dict[int, object]) -> Text:
    """Each connector (not 0) as a coloured block with its number, e.g. '1 2'."""
    text = Text()
    for cid in sorted(c for c in connectors if c > 0):
        status = getattr(connectors[cid], "status", "Unknown")
        if text:
            text.append(" ")
        text.append(f"{cid}:{_short(status)}", style=STATUS_STYLES.get(status, "dim"))
    return text or Text("-", style="dim")


def _short(status: str) -> str:
    return {
        "Available": "Avail",
        "Preparing": "Prep",
        "Charging": "Chrg",
        "SuspendedEV": "SusEV",
        "SuspendedEVSE": "SusSE",
        "Finishing": "Fin",
        "Reserved": "Resv",
        "Unavailable": "Unav",
        "Faulted": "FAULT",
    }.get(status, "?")


FIRMWARE_STEPS = ("Downloading", "Downloaded", "Installing", "Installed")
DIAGNOSTICS_STEPS = ("Uploading", "Uploaded")
FAILED = {"DownloadFailed", "InstallationFailed", "UploadFailed", "InvalidSignature", "InstallVerificationFailed"}


def progress_text(status: str | None, steps: tuple[str, ...]) -> Text:
    """A firmware or diagnostics status with how far along it is, e.g. 'Installing ▰▰▰▱'."""
    if not status:
        return Text("-", style="dim")
    if status in FAILED:
        return Text(status, style="bold red")
    if status not in steps:
        return Text(status)
    done = steps.index(status) + 1
    text = Text(f"{status} ")
    text.append("▰" * done, style="green" if done == len(steps) else "yellow")
    text.append("▱" * (len(steps) - done), style="grey50")
    return text
