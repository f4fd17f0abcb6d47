"""The house's rules, read from the source: floors whose imports never run back up,
one folder per vendor that no other vendor reaches into, small modules.

docs/architecture.md draws the same floors.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# lowest first; a module imports from its own floor's folder or from lower floors only
FLOORS = {"common": 0, "state": 1, "mappings": 1, "connectors": 1, "sandbox": 1, "core": 2, "fleet": 3, "app": 4}
# floor-1 folders are side by side: these are the only ways between them
BESIDE = {
    "connectors": {"mappings"},  # a connector applies its vendor's default mapping
    "sandbox": set(),  # an emulator behaves like the vendor, never like our connector
    "state": set(),
    "mappings": set(),
}
# the launcher starts the emulators the vendors' registrations name
EXCEPTIONS = {("sandbox.launch", "connectors.registry")}
VENDORS = ("hubspot", "quickbooks", "salesforce", "xero", "zoho")
MAX_LINES = 400


def _modules() -> list[tuple[str, Path]]:
    found = []
    for folder in FLOORS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            if "versions" in path.parts:  # migrations are frozen history
                continue
            parts = path.relative_to(ROOT).with_suffix("").parts
            found.append((".".join(parts[:-1] if parts[-1] == "__init__" else parts), path))
    return found


def _imports(module: str, path: Path) -> set[str]:
    """Every pouracquit module ``module`` imports, absolute and without the package prefix."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                out.add(".".join(base + ([node.module] if node.module else [])))
            elif node.module and node.module.startswith("pouracquit."):
                out.add(node.module.removeprefix("pouracquit."))
        elif isinstance(node, ast.Import):
            out.update(a.name.removeprefix("pouracquit.") for a in node.names if a.name.startswith("pouracquit."))
    return out


def _allowed(module: str, target: str) -> bool:
    mine, theirs = module.split(".")[0], target.split(".")[0]
    if theirs == mine or (module, target) in EXCEPTIONS or theirs not in FLOORS:
        return True  # its own folder; or the package root, which holds nothing
    return FLOORS[theirs] < FLOORS[mine] or (FLOORS[theirs] == FLOORS[mine] and theirs in BESIDE.get(mine, set()))


def _violations() -> list[str]:
    return sorted(f"{m} imports {t}" for m, p in _modules() for t in _imports(m, p) if not _allowed(m, t))


def test_no_import_runs_back_up_between_the_floors() -> None:
    assert _violations() == []


def test_the_ground_floor_imports_nothing_of_ours() -> None:
    ground = [(m, p) for m, p in _modules() if m.startswith("common")]
    assert ground, "the ground floor is missing"
    assert [f"{m} imports {t}" for m, p in ground for t in _imports(m, p) if not t.startswith("common")] == []


@pytest.mark.parametrize("folder", ["connectors", "sandbox"])
def test_a_vendor_folder_reaches_into_no_other_vendor(folder: str) -> None:
    crossing = []
    for module, path in _modules():
        parts = module.split(".")
        if parts[0] != folder or len(parts) < 2 or parts[1] not in VENDORS:
            continue
        for target in _imports(module, path):
            tparts = target.split(".")
            if len(tparts) > 1 and tparts[1] in VENDORS and tparts[1] != parts[1]:
                crossing.append(f"{module} imports {target}")
    assert crossing == []


def test_the_engine_names_no_vendor_module() -> None:
    named = [f"{m} imports {t}" for m, p in _modules() if m.split(".")[0] in ("core", "app")
             for t in _imports(m, p) if any(f".{v}" in f".{t}" for v in VENDORS) and not t.startswith("sandbox")]
    assert named == []


def test_every_vendor_has_its_folder_on_both_sides() -> None:
    for vendor in VENDORS:
        assert (ROOT / "connectors" / vendor / "__init__.py").is_file(), vendor
        assert (ROOT / "sandbox" / vendor / "__init__.py").is_file(), vendor
        assert (ROOT / "mappings" / f"{vendor}.toml").is_file(), vendor


def test_no_module_over_400_lines() -> None:
    long = [f"{p.relative_to(ROOT)}: {n}" for _, p in _modules()
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES]
    assert long == []


def test_the_rules_catch_what_they_forbid() -> None:
    """The checker itself, so that an empty list of violations means something."""
    assert not _allowed("state.store", "core.errors")  # back up
    assert not _allowed("common.model", "state.tables")
    assert not _allowed("sandbox.xero.native", "connectors.xero.format")  # emulator reading our connector
    assert not _allowed("core.pipeline", "app.admin")
    assert _allowed("app.cli", "core.sync") and _allowed("connectors.zoho.source", "mappings")
    assert {"core.intake", "core.pipeline"} <= _imports("core.sync", ROOT / "core" / "sync.py")  # relative resolved


def test_the_package_ships_every_module_and_data_file() -> None:
    """pyproject lists packages and data by hand (the repository root is the package): a new
    folder or template left out installs fine in the editable checkout and breaks the image."""
    setup = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    on_disk = {"pouracquit"} | {
        "pouracquit." + ".".join(p.parent.relative_to(ROOT).parts)
        for folder in FLOORS for p in (ROOT / folder).rglob("__init__.py")
    }
    assert sorted(on_disk - set(setup["packages"])) == []
    left_out = []
    for package in on_disk - {"pouracquit"}:  # the root holds the project files, not package data
        where = ROOT.joinpath(*package.split(".")[1:])
        shipped = {f for glob in setup["package-data"].get(package, []) for f in where.glob(glob) if f.is_file()}
        for f in where.rglob("*"):
            inner = f.relative_to(where).parts
            if f.is_file() and f.suffix not in (".py", ".pyc") and "__pycache__" not in inner \
                    and not (where / inner[0] / "__init__.py").exists() and f not in shipped:
                left_out.append(str(f.relative_to(ROOT)))
    assert sorted(left_out) == []
