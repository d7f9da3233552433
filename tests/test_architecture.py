"""The console sees the site only through ocpp_console.site; the central system never sees the console."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "ocpp_console"


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at any depth (a function-local import counts too)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def offending(package: str, forbidden: tuple[str, ...]) -> dict[str, list[str]]:
    found = {}
    for path in sorted((PACKAGE / package).rglob("*.py")):
        bad = sorted(m for m in imported_modules(path) if any(m == f or m.startswith(f + ".") for f in forbidden))
        if bad:
            found[str(path.relative_to(PACKAGE.parent))] = bad
    return found


def test_the_console_imports_the_site_not_the_central_system() -> None:
    assert list((PACKAGE / "ui").rglob("*.py")), "no console modules found"
    forbidden = ("ocpp_console.csms", "ocpp_console.store", "ocpp_console.provision", "ocpp_console.api")
    assert offending("ui", forbidden) == {}


@pytest.mark.parametrize("package", ["csms", "store"])
def test_the_central_system_never_imports_the_console(package: str) -> None:
    assert offending(package, ("ocpp_console.ui", "ocpp_console.site")) == {}


def test_the_check_sees_a_forbidden_import(tmp_path: Path) -> None:
    """The walk finds imports in functions and `from X import Y` spellings."""
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from ocpp_console import csms\n    import ocpp_console.store.store\n")
    assert {"ocpp_console.csms", "ocpp_console.store.store"} <= imported_modules(module)
