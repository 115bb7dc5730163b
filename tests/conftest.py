"""Shared pytest configuration for anyotp.

* Every async test runs on both AnyIO backends (asyncio and trio). Mark tests
  with ``@pytest.mark.anyio`` or put ``pytestmark = pytest.mark.anyio`` at
  module level; anyio's pytest plugin (auto-registered by anyio) picks the
  backend from the ``anyio_backend`` fixture below.
* Hypothesis profiles: "ci" (loaded by default) and "dev". Select another with
  ``HYPOTHESIS_PROFILE=dev``.
* ``quiet_crash_logs``: for modules whose processes crash on purpose, e.g.
  ``pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("quiet_crash_logs")]``.
* Plain helpers shared by several test modules live in ``_helpers.py``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import settings

# ---------------------------------------------------------------------------
# Hypothesis
# ---------------------------------------------------------------------------

settings.register_profile(
    "ci",
    deadline=None,  # event-loop scheduling makes per-example timing noisy
    max_examples=100,
    derandomize=True,  # same examples on every CI run
    print_blob=True,  # failures print a @reproduce_failure blob
)
settings.register_profile(
    "dev",
    deadline=None,
    max_examples=50,
    print_blob=True,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


# ---------------------------------------------------------------------------
# AnyIO backends
# ---------------------------------------------------------------------------


@pytest.fixture(
    params=[
        pytest.param(("asyncio", {}), id="asyncio"),
        pytest.param(("trio", {}), id="trio"),
    ]
)
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    """Run each ``anyio``-marked test once per backend."""
    backend: tuple[str, dict[str, Any]] = request.param
    return backend


# ---------------------------------------------------------------------------
# Logs
# ---------------------------------------------------------------------------


@pytest.fixture
def quiet_crash_logs(caplog: pytest.LogCaptureFixture) -> None:
    """Processes crash on purpose in this test; keep their tracebacks out of the output."""
    caplog.set_level(logging.CRITICAL + 1, logger="anyotp")


# ---------------------------------------------------------------------------
# Hook point
# ---------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _no_leaked_processes() -> Iterator[None]:
    """Every test must stop every process it started: after the test, no process
    may be alive and no name registered.  Leftovers are cleared (so one leaky test
    does not fail the next) and reported as a failure of the leaky test."""
    from anyotp._core import names as name_table
    from anyotp._core import table

    yield
    leaked = list(table.values())
    names = sorted(name_table)
    table.clear()
    name_table.clear()
    if leaked or names:
        pytest.fail(f"test left processes alive: {leaked!r}; names registered: {names!r}")
