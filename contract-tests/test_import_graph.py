"""The import graph of the first-party packages: no circles inside a package, and layers that point one way.

Read from the source with `ast` (nothing is imported), counting every import statement wherever it
stands: inside functions, `try` blocks and `if TYPE_CHECKING:` too, since a deferred import is a
dependency all the same. `from pkg import name` counts as importing `pkg.name` when that is a module,
else `pkg`; `import a.b` counts as importing `a.b` (not its parent packages); relative imports are
resolved against the importing module.

Layers: libraries (everything under `libs/`, tests included) import no service; a service (its code
and tests) imports no other service and not the CLI, an application under `infra/cli` that depends on
the services, never the reverse.
"""

from __future__ import annotations

import ast
from collections import deque
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
GROUPS = ("libs", "services", "infra")
SERVICE_PACKAGES = {
    "cairn_audit",
    "cairn_evaluator",
    "cairn_feedback",
    "cairn_gateway",
    "cairn_inference",
    "cairn_prompt_store",
    "cairn_retriever",
    "cairn_safety",
    "cairn_tuner",
}
CLI_PACKAGE = "cairn_cli"
SKIPPED_FOLDERS = {"build", "node_modules", "__pycache__"}

Edges = dict[str, dict[str, "Import"]]


@dataclass(frozen=True)
class Import:
    """One import: `module` imports `target` at `path`:`line`."""

    module: str
    target: str
    path: Path
    line: int

    def where(self) -> str:
        path = self.path.relative_to(REPO) if self.path.is_relative_to(REPO) else self.path
        return f"{path}:{self.line}"


# --- reading the source


def _top(module: str) -> str:
    return module.split(".", 1)[0]


def group_of(path: Path) -> str:
    """`libs`, `services` or `infra`: the group a file or package folder lies in."""
    return path.relative_to(REPO).parts[0]


def module_name(path: Path) -> str:
    """The dotted name of a file: from its package's top for `src/` files, else from its project
    folder (`libs/cairn-bus/tests/test_x.py` -> `tests.test_x`)."""
    parts = path.relative_to(REPO).with_suffix("").parts[2:]
    parts = parts[1:] if parts[0] == "src" else parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def packages() -> dict[str, Path]:
    """Every first-party package (`<group>/*/src/cairn_*` with an `__init__.py`), by name -> folder."""
    found: dict[str, Path] = {}
    for group in GROUPS:
        for folder in sorted((REPO / group).glob("*/src/cairn_*")):
            if (folder / "__init__.py").is_file():
                assert folder.name not in found, f"{folder.name} in both {found[folder.name]} and {folder}"
                found[folder.name] = folder
    return found


def services() -> set[str]:
    """The service packages: those under services/ (every one in SERVICE_PACKAGES among them)."""
    return {name for name, folder in packages().items() if group_of(folder) == "services"}


@cache
def sources() -> dict[Path, str]:
    """Every Python file of the projects under libs/, services/ and infra/ -> its dotted module name."""
    found = {}
    for group in GROUPS:
        for path in sorted((REPO / group).glob("*/**/*.py")):
            parts = path.relative_to(REPO).parts
            if not any(part.startswith(".") or part in SKIPPED_FOLDERS for part in parts):
                found[path] = module_name(path)
    return found


@cache
def modules() -> dict[str, Path]:
    """Every module of a first-party package, by dotted name -> file."""
    return {name: path for path, name in sources().items() if _top(name) in packages()}


def _base(module: str, path: Path, level: int) -> str:
    """The package a relative import with `level` dots in `module` starts from."""
    parts = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    if level > len(parts):
        raise ValueError(f"{path}: relative import beyond the top-level package")
    return ".".join(parts[: len(parts) - level + 1])


def imports_of(module: str, path: Path, known: set[str]) -> list[Import]:
    """Every import in the file of `module`, at any depth, as dotted module names (`known`: the modules
    that `from pkg import name` may name)."""
    found: list[Import] = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [Import(module, alias.name, path, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            source = node.module or ""
            if node.level:
                base = _base(module, path, node.level)
                source = f"{base}.{source}" if source else base
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                target = submodule if alias.name != "*" and submodule in known else source
                found.append(Import(module, target, path, node.lineno))
    return found


@cache
def graph() -> dict[Path, list[Import]]:
    """Each file's imports."""
    known = set(modules())
    return {path: imports_of(name, path, known) for path, name in sources().items()}


# --- circles


def package_edges(package: str) -> Edges:
    """module -> imported module -> (first) import, for the imports between modules of `package`."""
    edges: Edges = {}
    for module, path in modules().items():
        if _top(module) == package:
            edges[module] = {}
            for edge in graph()[path]:
                if _top(edge.target) == package and edge.target != module and edge.target in modules():
                    edges[module].setdefault(edge.target, edge)
    return edges


def circles(edges: Edges) -> list[list[Import]]:
    """A shortest circle through each module that lies on one, each circle once."""
    seen: set[frozenset[str]] = set()
    found = []
    for start in sorted(edges):
        cycle = _shortest_cycle(start, edges)
        if cycle and (members := frozenset(e.module for e in cycle)) not in seen:
            seen.add(members)
            found.append(cycle)
    return found


def _shortest_cycle(start: str, edges: Edges) -> list[Import] | None:
    """The shortest path of imports from `start` back to `start` (breadth first), or None."""
    came_by: dict[str, Import] = {}
    queue = deque([start])
    while queue:
        current = queue.popleft()
        for target, edge in sorted(edges.get(current, {}).items()):
            if target == start:
                path = [edge]
                while path[0].module != start:
                    path.insert(0, came_by[path[0].module])
                return path
            if target not in came_by:
                came_by[target] = edge
                queue.append(target)
    return None


def describe(cycle: list[Import]) -> str:
    chain = " -> ".join([*(e.module for e in cycle), cycle[0].module])
    return f"{chain}\n" + "".join(f"    {e.module} imports {e.target} at {e.where()}\n" for e in cycle)


# --- layers


def violations(group: str, forbidden: dict[str | None, set[str]]) -> list[str]:
    """`module imports target at file:line` for each import, in a file of a project under `group`, of a
    package that `forbidden` names for that project's package (`forbidden[None]`: for every project)."""
    own = {folder.parents[1]: name for name, folder in packages().items()}
    lines: dict[str, None] = {}
    for path, found in graph().items():
        if group_of(path) != group:
            continue
        project = REPO.joinpath(*path.relative_to(REPO).parts[:2])
        banned = forbidden.get(own.get(project), set()) | forbidden.get(None, set())
        lines.update(
            dict.fromkeys(
                f"{e.module} imports {e.target} at {e.where()}" for e in found if _top(e.target) in banned
            )
        )
    return list(lines)


# --- the tests


def test_the_packages_are_found() -> None:
    assert services() >= SERVICE_PACKAGES
    assert set(packages()) >= {"cairn_bus", "cairn_events", "cairn_testing"}
    assert "cairn_bus.postgres" in modules()


def test_imports_are_read_at_any_depth_and_resolved(tmp_path: Path) -> None:
    module = tmp_path / "handlers.py"
    module.write_text(
        "import cairn_x.domain.rules\n"
        "from . import ports, Thing\n"
        "from .adapters import sql\n"
        "from ..other import *\n"
        "def f():\n"
        "    from cairn_x.bootstrap import build\n"
        "class C:\n"
        "    def g(self):\n"
        "        if True:\n"
        "            import json\n"
    )
    known = {"cairn_x.domain.rules", "cairn_x.sub.ports", "cairn_x.sub.adapters.sql", "cairn_x.bootstrap"}
    found = imports_of("cairn_x.sub.handlers", module, known)
    assert sorted((e.target, e.line) for e in found) == [
        ("cairn_x.bootstrap", 6),
        ("cairn_x.domain.rules", 1),
        ("cairn_x.other", 4),
        ("cairn_x.sub", 2),  # `Thing` is no module: the package
        ("cairn_x.sub.adapters.sql", 3),
        ("cairn_x.sub.ports", 2),
        ("json", 10),
    ]
    init = tmp_path / "__init__.py"
    init.write_text("from .ports import Port\nfrom . import ports\n")
    assert [e.target for e in imports_of("cairn_x", init, {"cairn_x.ports"})] == ["cairn_x.ports"] * 2
    module.write_text("from .. import y\n")
    with pytest.raises(ValueError, match="beyond the top-level package"):
        imports_of("cairn_x.handlers", module, known)


def test_a_circle_is_found_at_any_length_and_reported_once() -> None:
    def edge(a: str, b: str) -> Import:
        return Import(a, b, REPO / "x.py", 1)

    pairs = [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d"), ("d", "e"), ("e", "d"), ("f", "a")]
    edges: Edges = {}
    for a, b in pairs:
        edges.setdefault(a, {})[b] = edge(a, b)
    found = [[e.module for e in cycle] for cycle in circles(edges)]
    assert found == [["a", "b", "c"], ["d", "e"]]
    assert "a -> b -> c -> a\n" in describe(circles(edges)[0])
    assert circles({"a": {"b": edge("a", "b")}, "b": {}}) == []


@pytest.mark.parametrize("package", sorted(packages()))
def test_no_import_circle_inside_the_package(package: str) -> None:
    found = circles(package_edges(package))
    assert not found, f"{len(found)} import circle(s) in {package}:\n" + "\n".join(map(describe, found))


def test_libraries_import_no_service() -> None:
    bad = violations("libs", {None: services()})
    assert not bad, "libraries (their code and tests) must not depend on services:\n" + "\n".join(bad)


def test_services_import_no_other_service_nor_the_cli() -> None:
    forbidden: dict[str | None, set[str]] = {
        service: (services() - {service}) | {CLI_PACKAGE} for service in services()
    }
    bad = violations("services", forbidden)
    assert not bad, (
        "services (their code and tests) must not depend on other services or the CLI:\n" + "\n".join(bad)
    )
