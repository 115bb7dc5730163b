"""The public surface: ``anyotp.__all__`` is complete, sorted and documented."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

import anyotp

# The names the documented async API (seeds 003 and 004) imports from the package.
SEED_NAMES = [
    "Actor",
    "ActorHandle",
    "GenServer",
    "Task",
    "TaskHandle",
    "Supervisor",
    "ChildSpec",
    "RestartStrategy",
    "RestartType",
    "PID",
    "Ref",
    "send",
    "cast",
    "call",
    "ANY",
    "IGNORE",
    "_",
    "register",
    "unregister",
    "whereis",
    "registered",
    "ReceiveTimeout",
]


# Erlang/OTP primitives added on top of the seeds: each must stay exported.
OTP_NAMES = [
    "spawn",
    "spawn_link",
    "spawn_monitor",
    "receive",
    "process_flag",
    "multi_call",
    "abcast",
]


# Class-level functions of the OTP API that must stay reachable and documented.
OTP_METHODS = [
    ("GenServer", "stop"),
    ("Agent", "stop"),
    ("Supervisor", "stop"),
    ("Supervisor", "start_link"),
    ("Task", "await_many"),
    ("Task", "yield_many"),
]


def _isort_key(name: str) -> tuple[int, str]:
    """The order ruff's RUF022 keeps ``__all__`` in ("isort-style"): CONSTANTS, then
    Classes, then everything else, each group sorted."""
    if len(name) > 1 and name.isupper():
        return 0, name
    if name[:1].isupper():
        return 1, name
    return 2, name


def _public_members(cls: type) -> list[tuple[str, Any]]:
    """Public methods and properties that ``cls`` itself defines."""
    out = []
    for key, value in vars(cls).items():
        if key.startswith("_"):
            continue
        if isinstance(value, classmethod | staticmethod):
            out.append((key, value.__func__))
        elif isinstance(value, property) or inspect.isfunction(value):
            out.append((key, value))
    return out


class TestAll:
    @pytest.mark.parametrize("name", anyotp.__all__)
    def test_every_name_in___all___exists(self, name: str) -> None:
        assert hasattr(anyotp, name)

    def test___all___has_no_duplicates(self) -> None:
        assert len(anyotp.__all__) == len(set(anyotp.__all__))

    def test___all___is_sorted(self) -> None:
        assert anyotp.__all__ == sorted(anyotp.__all__, key=_isort_key)

    def test_every_public_attribute_is_in___all__(self) -> None:
        public = {
            name
            for name, value in vars(anyotp).items()
            if not name.startswith("_") and not inspect.ismodule(value)
        }
        assert public - set(anyotp.__all__) == set()

    @pytest.mark.parametrize("name", SEED_NAMES)
    def test_every_name_of_the_documented_api_is_exported(self, name: str) -> None:
        assert name in anyotp.__all__
        assert hasattr(anyotp, name)

    @pytest.mark.parametrize("name", OTP_NAMES)
    def test_every_otp_primitive_is_exported(self, name: str) -> None:
        assert name in anyotp.__all__
        assert hasattr(anyotp, name)

    @pytest.mark.parametrize(("cls", "method"), OTP_METHODS)
    def test_every_otp_class_function_exists_and_is_documented(self, cls: str, method: str) -> None:
        assert inspect.getdoc(getattr(getattr(anyotp, cls), method))

    def test_underscore_is_IGNORE(self) -> None:
        assert anyotp._ is anyotp.IGNORE


class TestDocstrings:
    @pytest.mark.parametrize("name", anyotp.__all__)
    def test_every_public_name_has_a_docstring(self, name: str) -> None:
        obj = getattr(anyotp, name)
        # A class must document itself (inspect.getdoc would fall back to a base's doc).
        doc = vars(obj).get("__doc__") if inspect.isclass(obj) else inspect.getdoc(obj)
        assert doc, f"anyotp.{name} has no docstring"

    @pytest.mark.parametrize(
        "name", [n for n in anyotp.__all__ if inspect.isclass(getattr(anyotp, n))]
    )
    def test_every_public_method_of_a_public_class_has_a_docstring(self, name: str) -> None:
        cls = getattr(anyotp, name)
        undocumented = [
            f"{name}.{key}" for key, member in _public_members(cls) if not inspect.getdoc(member)
        ]
        assert undocumented == []

    def test_the_package_has_a_docstring(self) -> None:
        assert inspect.getdoc(anyotp)


class TestSubpackages:
    @pytest.mark.parametrize(
        "module", ["anyotp.observer", "anyotp.sync", "anyotp.telemetry", "anyotp.testing"]
    )
    def test_every_name_of_a_public_subpackage_exists_and_is_documented(self, module: str) -> None:
        import importlib

        mod = importlib.import_module(module)
        assert inspect.getdoc(mod)
        for name in mod.__all__:
            obj = getattr(mod, name)
            doc = vars(obj).get("__doc__") if inspect.isclass(obj) else inspect.getdoc(obj)
            assert doc, f"{module}.{name} has no docstring"

    def test_the_core_never_imports_the_sync_api_or_the_testing_helpers(self) -> None:
        import pathlib

        src = pathlib.Path(anyotp.__file__).parent
        for path in [*src.glob("_*.py"), *(src / "_core").glob("*.py")]:
            text = path.read_text()
            for forbidden in (
                "from .sync",
                "from ..sync",
                "from .testing",
                "from ..testing",
                "import anyotp.sync",
                "from anyotp.sync",
                "from anyotp.testing",
            ):
                assert forbidden not in text, f"{path.name} imports a higher layer: {forbidden}"


# Names added to a public surface, with the page that documents each: the test fails
# when one is dropped from ``__all__`` or from its page.
DOCUMENTED_NAMES = [
    ("anyotp", "read_timer", "docs/timers.md"),
    ("anyotp", "cancel_timer", "docs/timers.md"),
    ("anyotp.sync", "loop_thread", "docs/sync.md"),
    ("anyotp.sync", "LoopThread", "docs/sync.md"),
]


class TestDocumentedNames:
    @pytest.mark.parametrize(("module", "name", "page"), DOCUMENTED_NAMES)
    def test_every_added_name_is_exported_and_on_its_docs_page(
        self, module: str, name: str, page: str
    ) -> None:
        import importlib
        import pathlib

        mod = importlib.import_module(module)
        assert name in mod.__all__
        assert getattr(mod, name).__doc__
        root = pathlib.Path(anyotp.__file__).resolve().parents[2]
        assert f"`{name}" in (root / page).read_text(encoding="utf-8")
