"""Modal dialogs: an action's form, a confirmation, the action picker, free-text prompts."""

from __future__ import annotations

from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, OptionList, Select, Static
from textual.widgets.option_list import Option

from ocpp_console.secret_keys import is_secret_key
from ocpp_console.ui.actions import ACTIONS, ActionSpec, FieldError

# A Select with nothing chosen: Select.NULL in current Textual, Select.BLANK in older ones (current
# Textual's Select.BLANK is no sentinel: a form with an optional choice crashed on opening).
NO_CHOICE = getattr(Select, "NULL", None) or Select.BLANK


class FormScreen(ModalScreen[dict[str, Any] | None]):
    """A modal form: Enter in a field or the primary button submits, Escape or Cancel dismisses."""

    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("ctrl+s", "submit", "Submit")]
    # Each form focuses its first field itself; Textual's auto focus would first focus the scrolling
    # field list, centred, scrolling a tall form's title away at 80x24.
    AUTO_FOCUS = ""

    def _submit(self) -> None:
        raise NotImplementedError

    def action_submit(self) -> None:
        self._submit()

    @on(Button.Pressed, "#send, #save")
    def _pressed_submit(self) -> None:
        self._submit()

    @on(Input.Submitted)
    def _enter(self) -> None:
        self._submit()

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


class ActionForm(FormScreen):
    """A short form for one remote action; dismisses with the parsed values or None."""

    def __init__(self, spec: ActionSpec, charger_id: str, defaults: dict[str, str] | None = None) -> None:
        super().__init__()
        self.spec = spec
        self.charger_id = charger_id
        self.defaults = defaults or {}

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(f"{self.spec.title} · {self.charger_id}", classes="dialog-title")
            yield Static(self.spec.help, classes="dialog-help")
            with VerticalScroll(classes="form-fields"):
                for field in self.spec.fields:
                    yield Label(field.label + (" *" if field.required else ""), classes="field-label")
                    default = self.defaults.get(field.name, "")
                    if field.kind == "choice":
                        yield Select(
                            [(c, c) for c in field.choices],
                            value=default if default in field.choices else NO_CHOICE,
                            allow_blank=not field.required or default not in field.choices,
                            id=f"f-{field.name}",
                        )
                    else:
                        placeholder = field.placeholder or ("YYYY-MM-DDTHH:MM (local time)" if field.kind == "datetime" else "")
                        yield Input(value=default, placeholder=placeholder, id=f"f-{field.name}",
                                    password=field.kind == "password")
            yield Static("", id="form-error", classes="form-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button(self.spec.button_label, variant="primary", id="send")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        # Text fields take the focus; a form of choices only (already filled) is one Enter from sent.
        inputs = self.query(Input)
        # No scroll to centre it: a form taller than the screen would open with its title hidden.
        (inputs.first() if inputs else self.query_one("#send")).focus(scroll_visible=False)
        self._mask_secret()

    @on(Input.Changed, "#f-key")
    def _mask_secret(self) -> None:
        """A value for a secret key (AuthorizationKey) is typed unseen, like a password."""
        keys, values = self.query("#f-key"), self.query("#f-value")
        if keys and values:
            values.first(Input).password = is_secret_key(keys.first(Input).value.strip())

    def values(self) -> dict[str, Any]:
        """Parse every field; raises FieldError with the first problem."""
        values: dict[str, Any] = {}
        for field in self.spec.fields:
            widget = self.query_one(f"#f-{field.name}")
            if isinstance(widget, Select):
                raw = "" if widget.value is NO_CHOICE else str(widget.value)
            else:
                assert isinstance(widget, Input)
                raw = widget.value
            values[field.name] = field.parse(raw)
        return values

    def _submit(self) -> None:
        try:
            values = self.values()
        except FieldError as exc:
            self.query_one("#form-error", Static).update(str(exc))
            return
        self.dismiss(values)


class ConfirmScreen(ModalScreen[bool]):
    """A question before something that cannot be undone; its button says what it does ("Stop
    transaction", "Reset charger"), `y` presses it, `n` or Escape cancel."""

    BINDINGS = [Binding("escape", "no", "Cancel"), Binding("y", "yes", "Confirm"), Binding("n", "no", "Cancel")]

    def __init__(self, title: str, message: str, confirm_label: str) -> None:
        super().__init__()
        self.title_text = title
        self.message = message
        self.confirm_label = confirm_label

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog confirm"):
            yield Label(self.title_text, classes="dialog-title")
            yield Static(self.message, classes="dialog-help")
            with Horizontal(classes="dialog-buttons"):
                yield Button(self.confirm_label, variant="error", id="yes")
                yield Button("Cancel", variant="primary", id="no")

    def on_mount(self) -> None:
        self.query_one("#no").focus()  # the safe choice has the focus

    @on(Button.Pressed, "#yes")
    def action_yes(self) -> None:
        self.dismiss(True)

    @on(Button.Pressed, "#no")
    def action_no(self) -> None:
        self.dismiss(False)


class ActionPicker(ModalScreen[str | None]):
    """Every remote action, to pick one for the selected charger."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, charger_id: str) -> None:
        super().__init__()
        self.charger_id = charger_id

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog picker"):
            yield Label(f"Actions · {self.charger_id}", classes="dialog-title")
            yield OptionList(*(Option(f"{a.title}  [dim]{a.help}[/]", id=a.key) for a in ACTIONS), id="actions")

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()

    @on(OptionList.OptionSelected)
    def _picked(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)


class IdTagForm(FormScreen):
    """Add or edit an id tag."""

    STATUSES = ("Accepted", "Blocked", "Expired", "Invalid")

    def __init__(self, row: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.row = row

    def compose(self) -> ComposeResult:
        row = self.row or {}
        with Vertical(classes="dialog"):
            yield Label("Edit id tag" if self.row else "Add id tag", classes="dialog-title")
            yield Label("Id tag *", classes="field-label")
            yield Input(value=row.get("id_tag", ""), id="tag", disabled=self.row is not None, max_length=20)
            yield Label("Status *", classes="field-label")
            yield Select([(s, s) for s in self.STATUSES], value=row.get("status", "Accepted"), allow_blank=False, id="status")
            yield Label("Expiry (optional, YYYY-MM-DD or date and time)", classes="field-label")
            yield Input(value=row.get("expiry_date") or "", id="expiry")
            yield Label("Parent id tag (optional)", classes="field-label")
            yield Input(value=row.get("parent_id_tag") or "", id="parent", max_length=20)
            yield Label("Note", classes="field-label")
            yield Input(value=row.get("note") or "", id="note")
            yield Static("", id="form-error", classes="form-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Save id tag", variant="primary", id="save")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#status" if self.row else "#tag").focus(scroll_visible=False)

    def _submit(self) -> None:
        from datetime import datetime

        from ocpp_console.timeutil import iso

        tag = self.query_one("#tag", Input).value.strip()
        error = self.query_one("#form-error", Static)
        if not tag:
            error.update("Id tag is required")
            return
        if len(tag) > 20:
            error.update("Id tag: at most 20 characters (OCPP 1.6)")
            return
        expiry_text = self.query_one("#expiry", Input).value.strip()
        expiry = None
        if expiry_text:
            try:
                dt = datetime.fromisoformat(expiry_text)
            except ValueError:
                error.update("Expiry: use a date like 2027-01-31 or 2027-01-31T18:00")
                return
            expiry = iso(dt if dt.tzinfo else dt.astimezone())
        parent = self.query_one("#parent", Input).value.strip() or None
        if parent == tag:
            error.update("A tag cannot be its own parent")
            return
        status = self.query_one("#status", Select).value
        self.dismiss(
            {
                "id_tag": tag,
                "status": str(status),
                "expiry_date": expiry,
                "parent_id_tag": parent,
                "note": self.query_one("#note", Input).value.strip() or None,
            }
        )
