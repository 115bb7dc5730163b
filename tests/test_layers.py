"""Layers: the import structure drawn in ``anyotp/__init__.py`` and ``_core/__init__.py``.

Two rules, checked on the source (imports inside functions included):

* the core is sealed: nothing outside ``anyotp/_core/`` imports one of its private
  modules or an underscore name from ``anyotp._core`` (except the pattern wildcard
  ``_``);
* every module has a rank, and imports only modules of a strictly lower rank, so
  there is no import cycle and no import from a higher layer.  Imports under
  ``if TYPE_CHECKING:`` do not run and are not counted.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"
PACKAGE = SRC / "anyotp"
CORE = PACKAGE / "_core"

#: Every module of the package and its layer, bottom up.  A module imports only
#: modules of a strictly lower rank.  Taken from the layering comments of
#: ``anyotp/__init__.py`` and ``anyotp/_core/__init__.py``, made exact by the imports.
RANKS: dict[str, int] = {
    "anyotp._exceptions": 0,
    "anyotp._telemetry": 1,  # stdlib only: the core emits events through it
    # the sealed runtime, in the order of _core/__init__.py
    "anyotp._core._ids": 10,
    "anyotp._core._backend": 11,
    "anyotp._core._pattern": 12,
    "anyotp._core._mailbox": 13,
    "anyotp._core._names": 14,
    "anyotp._core._process": 15,
    "anyotp._core._routing": 16,
    "anyotp._core._gen": 17,
    "anyotp._core": 19,
    # behaviours
    "anyotp._actor": 20,
    "anyotp._spawn": 21,  # plain processes: spawn, receive, process_flag
    "anyotp._child_spec": 21,
    "anyotp._task": 22,
    "anyotp._genserver": 23,
    "anyotp._timer": 24,
    "anyotp._agent": 25,
    "anyotp._statem": 25,  # sends its state timeouts with _timer
    "anyotp._registry": 25,
    "anyotp._introspection": 25,
    "anyotp._supervisor": 26,
    "anyotp._dynamic_supervisor": 27,
    "anyotp._task_supervisor": 28,
    "anyotp._application": 38,  # run(App, observer=...) starts the observer
    # the thread API and the test helpers: nothing below imports them
    "anyotp.sync._typecheck": 30,
    "anyotp.sync._client": 30,
    "anyotp.sync._server": 31,
    "anyotp.sync._loop_thread": 31,  # hosts processes under a Supervisor; uses _client
    "anyotp.sync": 32,
    "anyotp.testing": 30,
    "anyotp.telemetry": 30,
    # the observer (an optional extra): built on the public API's modules
    "anyotp.observer._collector": 33,
    "anyotp.observer._app": 34,
    "anyotp.observer._server": 35,
    "anyotp.observer": 36,
    # public re-exports only
    # distribution over NATS (the node extra): a transport behind the core's seam
    "anyotp.node._server": 29,  # stdlib only
    "anyotp.node._seam": 29,
    "anyotp.node._codec": 30,
    "anyotp.node._node": 31,
    "anyotp.node._keeper": 31,  # a GenServer
    "anyotp.node._global": 32,
    "anyotp.node._pg": 32,
    "anyotp.node._transport": 32,
    "anyotp.node._api": 33,
    "anyotp.node._remote": 34,  # a GenServer that spawns through _api
    "anyotp.node": 35,
    "anyotp": 40,
}

HOW_TO_RANK = (
    "add it to RANKS in tests/test_layers.py with a rank above every module it imports "
    "and below every module that imports it (and draw it in the layering comment of "
    "src/anyotp/__init__.py)"
)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def is_type_checking(test: ast.expr) -> bool:
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


def import_nodes(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement, at any depth (lazy ones too), except the body of an
    ``if TYPE_CHECKING:`` block."""
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
            continue
        if isinstance(node, ast.If) and is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


def resolve(module: str, path: Path, node: ast.ImportFrom) -> str:
    """The absolute module name a ``from ... import`` statement reads from."""
    if node.level == 0:
        return node.module or ""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    base = package.split(".")
    if node.level > 1:
        base = base[: -(node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def imports_of(module: str, path: Path) -> Iterator[tuple[int, str, list[str]]]:
    """``(line, imported module, names)`` for every anyotp import in ``module``;
    ``from pkg import submodule`` counts as an import of the submodule."""
    known = all_modules()
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in import_nodes(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "anyotp":
                    yield node.lineno, alias.name, []
            continue
        source = resolve(module, path, node)
        if source.split(".")[0] != "anyotp":
            continue
        names = [a.name for a in node.names]
        submodules = [n for n in names if f"{source}.{n}" in known]
        for n in submodules:
            yield node.lineno, f"{source}.{n}", []
        rest = [n for n in names if n not in submodules]
        if rest or not names:
            yield node.lineno, source, rest


def outside_core() -> list[tuple[str, Path]]:
    return [(m, p) for m, p in all_modules().items() if CORE not in p.parents]


def import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module, path in all_modules().items():
        graph[module] = {target for _, target, _ in imports_of(module, path) if target != module}
    return graph


class TestSealedCore:
    @pytest.mark.parametrize("module", [m for m, _ in outside_core()])
    def test_no_module_outside_the_core_imports_a_private_core_module_or_name(
        self, module: str
    ) -> None:
        path = all_modules()[module]
        problems = []
        for line, target, names in imports_of(module, path):
            if target.startswith("anyotp._core."):
                problems.append(f"line {line}: imports the private core module {target}")
            elif target == "anyotp._core":
                private = [n for n in names if n.startswith("_") and n != "_"]
                if private:
                    problems.append(f"line {line}: imports {private} from anyotp._core")
        assert not problems, (
            f"{module} reaches into the sealed core ({'; '.join(problems)}): use the names "
            "anyotp._core exports (add one to _core/__init__.py if it is missing)"
        )

    def test_the_check_sees_lazy_imports_and_skips_type_checking_ones(self) -> None:
        source = (
            "from typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n"
            "    from ._core._process import Proc\n"
            "def f():\n"
            "    from ._core._routing import route\n"
            "    import anyotp._core._ids\n"
        )
        tree = ast.parse(source)
        seen = sorted(
            resolve("anyotp._x", PACKAGE / "_x.py", n) if isinstance(n, ast.ImportFrom) else "-"
            for n in import_nodes(tree)
        )
        assert seen == ["-", "anyotp._core._routing", "typing"]


class TestLayerRanks:
    def test_every_module_has_a_rank(self) -> None:
        missing = sorted(set(all_modules()) - set(RANKS))
        assert not missing, f"modules without a layer rank: {missing}: {HOW_TO_RANK}"

    def test_every_ranked_module_exists(self) -> None:
        stale = sorted(set(RANKS) - set(all_modules()))
        assert not stale, f"RANKS in tests/test_layers.py names missing modules: {stale}"

    @pytest.mark.parametrize("module", sorted(all_modules()))
    def test_every_import_goes_to_a_lower_layer(self, module: str) -> None:
        path = all_modules()[module]
        if module not in RANKS:
            pytest.fail(f"{module} has no layer rank: {HOW_TO_RANK}")
        rank = RANKS[module]
        problems = []
        for line, target, _ in imports_of(module, path):
            if target == module:
                continue
            if target not in RANKS:
                problems.append(f"line {line}: imports {target}, which has no rank")
            elif RANKS[target] >= rank:
                problems.append(
                    f"line {line}: {module} (rank {rank}) imports {target} "
                    f"(rank {RANKS[target]}), which is not a lower layer"
                )
        assert not problems, "; ".join(problems)

    def test_there_is_no_import_cycle(self) -> None:
        graph = import_graph()
        done: set[str] = set()

        def visit(module: str, path: list[str]) -> None:
            if module in path:
                cycle = [*path[path.index(module) :], module]
                pytest.fail(f"import cycle: {' -> '.join(cycle)}")
            if module in done:
                return
            for target in sorted(graph.get(module, ())):
                visit(target, [*path, module])
            done.add(module)

        for module in sorted(graph):
            visit(module, [])
