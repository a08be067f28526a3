"""Declare what is imported and drop what is not.

Walks the imports of our packages with `ast`, maps each third-party top-level module to the
distribution that installs it (importlib.metadata.packages_distributions()) and holds that against
pyproject.toml: a package imports only what the core dependencies and its own extras install (the
edge needs no aggregator dependency), and every dependency an extra declares is imported by a
package that extra serves, or is in NOT_IMPORTED with the reason.
"""

import ast
import re
import sys
import tomllib
from collections.abc import Mapping
from importlib.metadata import distributions, packages_distributions
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CORE = ""  # the key of [project].dependencies among the extras

# Our packages and the extras that install what each one imports (besides the core).
SERVES: dict[str, tuple[str, ...]] = {
    "stockwire": (),
    "device_profiles": (),
    "edge_agent": ("edge", "rfid", "shelf"),
    "aggregator": ("aggregator", "postgres"),
    "simulators": ("demo",),
    "tests": ("dev",),
    "bench": ("dev",),
}

# Declared, never imported by a package the extra serves, and needed all the same.
NOT_IMPORTED: dict[str, str] = {
    "aiosqlite": "SQLAlchemy's async SQLite driver, named by sqlite+aiosqlite:// URLs",
    "asyncpg": "SQLAlchemy's async PostgreSQL driver, named by postgresql+asyncpg:// URLs",
    "psycopg": "the aggregator's sync PostgreSQL driver, named in aggregator/database.py",
    "pytest-asyncio": "a pytest plugin (asyncio_mode = auto in pyproject.toml)",
    "mypy": "a program: make check",
    "ruff": "a program: make check",
    "schemathesis": "a program: tests/integration/test_api_schema.py runs `st run`",
}

_NAME = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[([^\]]*)\])?")


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement(spec: str) -> tuple[str, tuple[str, ...]]:
    """A requirement's normalized distribution name and the extras it asks for."""
    match = _NAME.match(spec)
    assert match, f"cannot read the requirement {spec!r}"
    extras = tuple(e.strip() for e in (match.group(2) or "").split(",") if e.strip())
    return normalize(match.group(1)), extras


def declared(pyproject: Mapping[str, Any]) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """Per extra (CORE for the dependencies): the distributions it names, and our own extras
    it pulls in (`stockwire[edge]`)."""
    project = pyproject["project"]
    me = normalize(project["name"])
    groups = {CORE: project.get("dependencies", []), **project.get("optional-dependencies", {})}
    dists: dict[str, set[str]] = {}
    includes: dict[str, set[str]] = {}
    for extra, specs in groups.items():
        dists[extra], includes[extra] = set(), set()
        for spec in specs:
            name, extras = requirement(spec)
            if name == me:
                includes[extra].update(extras)
            else:
                dists[extra].add(name)
    return dists, includes


def installable(
    extras: tuple[str, ...], dists: dict[str, set[str]], inc: dict[str, set[str]]
) -> set[str]:
    """What the core plus these extras install directly, following `stockwire[...]`."""
    seen: set[str] = set()
    todo = [CORE, *extras]
    while todo:
        extra = todo.pop()
        if extra not in seen:
            seen.add(extra)
            todo.extend(inc.get(extra, ()))
    return set().union(*(dists.get(extra, set()) for extra in seen))


def imports(root: Path, package: str) -> dict[str, list[str]]:
    """Third-party top-level modules the package imports -> where ("path:line")."""
    found: dict[str, list[str]] = {}
    for path in sorted((root / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_bytes(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.partition(".")[0]
                if top not in sys.stdlib_module_names and top not in SERVES:
                    where = f"{path.relative_to(root)}:{node.lineno}"
                    found.setdefault(top, []).append(where)
    return found


def problems(root: Path, modules: Mapping[str, list[str]]) -> list[str]:
    """Everything wrong between what root's packages import and what its pyproject declares;
    modules maps top-level module names to the distributions that install them."""
    dists, inc = declared(tomllib.loads((root / "pyproject.toml").read_text()))
    found: list[str] = []
    used: dict[str, set[str]] = {}  # distribution -> our packages that import it
    for package, extras in SERVES.items():
        if not (root / package).is_dir():
            continue
        allowed = installable(extras, dists, inc)
        for module, places in imports(root, package).items():
            names = {normalize(d) for d in modules.get(module, [])}
            if not names:
                found.append(
                    f"{places[0]}: imports {module}, which no installed distribution provides"
                )
                continue
            for name in names:
                used.setdefault(name, set()).add(package)
            if not names & allowed:
                groups = "/".join(["dependencies", *extras])
                found.append(
                    f"{places[0]}: imports {module} ({' or '.join(sorted(names))}), "
                    f"not declared in pyproject.toml's {groups}"
                )
    for extra, names in dists.items():
        served = set(SERVES) if extra == CORE else {p for p, ex in SERVES.items() if extra in ex}
        group = "dependencies" if extra == CORE else f"optional-dependencies.{extra}"
        for name in sorted(names):
            if not used.get(name, set()) & served and name not in NOT_IMPORTED:
                found.append(
                    f"pyproject.toml: {group} declares {name}, which no package it serves "
                    f"({', '.join(sorted(served))}) imports"
                )
    return found


def test_imports_match_pyproject() -> None:
    found = problems(ROOT, packages_distributions())
    assert not found, "\n".join(found)


def test_not_imported_is_all_still_declared() -> None:
    dists, _ = declared(tomllib.loads((ROOT / "pyproject.toml").read_text()))
    assert set(NOT_IMPORTED) <= set().union(*dists.values())


def pins(text: str) -> dict[str, str]:
    """constraints.txt: normalized distribution name -> pinned version."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version.strip(), f"constraints.txt: {line!r} is not name==version"
            found[normalize(name.strip())] = version.strip()
    return found


def test_every_declared_dependency_is_pinned() -> None:
    dists, _ = declared(tomllib.loads((ROOT / "pyproject.toml").read_text()))
    pinned = pins((ROOT / "constraints.txt").read_text())
    missing = sorted(set().union(*dists.values()) - set(pinned))
    assert not missing, f"not in constraints.txt (run `make lock`): {', '.join(missing)}"


def test_the_venv_has_the_pinned_versions() -> None:
    installed = {normalize(d.metadata["Name"]): d.version for d in distributions()}
    pinned = pins((ROOT / "constraints.txt").read_text())
    wrong = {
        name: (version, installed[name])
        for name, version in pinned.items()
        if name in installed and installed[name] != version
    }
    assert not wrong, f"pinned vs installed (run `make venv`): {wrong}"


def _tree(tmp_path: Path, deps: dict[str, list[str]], files: dict[str, str]) -> Path:
    groups = "\n".join(f"{extra} = {specs!r}" for extra, specs in deps.items())
    (tmp_path / "pyproject.toml").write_text(
        f'[project]\nname = "stockwire"\ndependencies = ["pydantic>=2"]\n'
        f"[project.optional-dependencies]\n{groups}\n"
    )
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return tmp_path


MODULES = {"pydantic": ["pydantic"], "fastapi": ["fastapi"], "paho": ["paho-mqtt"]}


def test_an_import_from_another_extra_is_named(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {"edge": [], "aggregator": ["fastapi"]},
        {
            "edge_agent/app.py": "import pydantic\n\nfrom fastapi import FastAPI\n",
            "aggregator/api.py": "import fastapi\n",
        },
    )
    assert problems(root, MODULES) == [
        "edge_agent/app.py:3: imports fastapi (fastapi), not declared in pyproject.toml's "
        "dependencies/edge/rfid/shelf"
    ]


def test_an_extra_reaches_another_through_stockwire(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {"aggregator": ["paho-mqtt>=2"], "demo": ["stockwire[aggregator]"]},
        {
            "simulators/a.py": "import paho.mqtt.client\n",
            "aggregator/b.py": "import paho, pydantic\n",
        },
    )
    assert problems(root, MODULES) == []


def test_a_dependency_nothing_imports_is_named(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {"edge": ["paho-mqtt>=2"], "aggregator": ["paho-mqtt>=2"]},
        {
            "aggregator/mqtt.py": "from paho.mqtt import client\n",
            "edge_agent/x.py": "import pydantic\n",
        },
    )
    assert problems(root, MODULES) == [
        "pyproject.toml: optional-dependencies.edge declares paho-mqtt, which no package it "
        "serves (edge_agent) imports"
    ]


def test_an_uninstalled_module_is_named(tmp_path: Path) -> None:
    root = _tree(tmp_path, {}, {"stockwire/x.py": "import pydantic\nimport nosuchthing.sub\n"})
    assert problems(root, MODULES) == [
        "stockwire/x.py:2: imports nosuchthing, which no installed distribution provides"
    ]
