"""The observer end to end in a real headless Chromium (Debian's ``chromium``, driven
by Playwright), on asyncio and on trio: the demo application runs with an observer
in a background thread; the tests open its pages, expand the tree, watch a mailbox
fill and drain, kill a worker from the page, see its supervisor restart it and the
crash in the crash log.

Skipped when ``/usr/bin/chromium`` is missing (``.ci/run`` installs it).  With
``ANYOTP_SCREENSHOTS=1`` the asyncio run saves a screenshot of each page to
``docs/observer/`` (the pictures in ``docs/observer.md``).
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import anyio
import anyio.from_thread
import pytest

from anyotp import PID, Supervisor, cast, replace_state
from anyotp.observer import Observer

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SHOTS = ROOT / "docs" / "observer"
#: how long a page condition may take to appear (the page refreshes every second)
WAIT_MS = 15_000

MISSING = not os.path.exists(CHROMIUM) or importlib.util.find_spec("playwright") is None
if MISSING and os.environ.get("ANYOTP_REQUIRE_BROWSER") == "1":  # CI: never skip silently
    raise RuntimeError(f"ANYOTP_REQUIRE_BROWSER=1 but {CHROMIUM} or playwright is missing")
pytestmark = pytest.mark.skipif(
    MISSING,
    reason=f"needs Debian's chromium at {CHROMIUM} (apt-get install chromium) and playwright",
)


def _load_demo() -> ModuleType:
    name = "anyotp_demo"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "examples" / "demo.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@dataclass
class Demo:
    """The demo application and its observer, running in a background thread."""

    portal: anyio.from_thread.BlockingPortal
    app: PID
    url: str
    backend: str

    def child(self, child_id: str) -> PID:
        rows = self.portal.call(Supervisor.which_children, self.app)
        pid = {row.id: row.pid for row in rows}[child_id]
        assert pid is not None
        return pid


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(params=["asyncio", "trio"])
def demo(request: pytest.FixtureRequest) -> Iterator[Demo]:
    backend: str = request.param
    module = _load_demo()
    paths = module.find_sources(str(ROOT / "src" / "anyotp"), 20)
    with ExitStack() as stack:
        portal = stack.enter_context(anyio.from_thread.start_blocking_portal(backend))
        stop = portal.call(anyio.Event)

        async def run(*, task_status: Any) -> None:
            async with anyio.create_task_group() as tg:
                app = await module.App.start(paths, 2, task_group=tg)
                observer = await Observer.start(port=0, task_group=tg)
                host, port = await Observer.address(observer)
                task_status.started((app, f"http://{host}:{port}/"))
                await stop.wait()
                tg.cancel_scope.cancel()

        future, (app, url) = portal.start_task(run)
        yield Demo(portal, app, url, backend)
        portal.call(stop.set)
        future.result(timeout=10)


def shot(page: Any, demo: Demo, name: str) -> None:
    if os.environ.get("ANYOTP_SCREENSHOTS") == "1" and demo.backend == "asyncio":
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def key(pid: PID) -> str:
    return repr(pid)[5:-1]


def test_the_observer_shows_the_live_system_and_restarts_a_killed_worker(
    browser: Any, demo: Demo
) -> None:
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1200, "height": 760})
    page.set_default_timeout(WAIT_MS)
    try:
        # ---- system: the live stream fills in the numbers
        page.goto(demo.url + "#/system")
        expect(page.locator("#live")).to_have_text("live")
        expect(page.locator("#sys-backend")).to_have_text(demo.backend)
        expect(page.locator("#sys-processes")).to_have_text(re.compile(r"^\d+$"))
        expect(page.locator("canvas.chart")).to_have_count(4)

        # ---- supervision tree: collapse and expand the application's root
        page.click("nav a[data-view=tree]")
        aggregator = page.locator("li[data-child-id=aggregator]")
        expect(aggregator).to_be_visible()
        old = demo.child("aggregator")
        expect(aggregator.locator("a.pid").first).to_have_text(repr(old))
        toggle = page.locator(f"button.toggle[data-tree-key='{key(demo.app)}']")
        toggle.click()
        expect(aggregator).to_have_count(0)
        toggle.click()
        expect(aggregator).to_be_visible()
        expect(page.locator("li[data-child-id=tasks]")).to_be_visible()

        # ---- processes: filter and sort the table, open a process
        page.click("nav a[data-view=processes]")
        table = page.locator("#processes tbody tr")
        expect(table.first).to_be_visible()
        page.fill("#filter", "Aggregator")
        expect(table).to_have_count(1)
        page.fill("#filter", "")
        page.click("th[data-sort=message_queue_len]")
        expect(page.locator("th[data-sort=message_queue_len]")).to_have_class(re.compile("sorted"))
        shot(page, demo, "processes")
        page.click(f"#processes tr[data-pid='{key(old)}']")
        expect(page.locator("#detail-pid")).to_have_text(repr(old))
        mailbox = page.locator("#detail-mailbox")
        expect(mailbox).to_have_text("0")

        # ---- the mailbox fills while the Aggregator is held busy, then drains
        entered, release = demo.portal.call(anyio.Event), demo.portal.call(anyio.Event)

        async def hold(state: Any) -> Any:
            entered.set()
            await release.wait()
            return state

        held = demo.portal.start_task_soon(replace_state, old, hold)
        demo.portal.call(entered.wait)
        for i in range(3):
            demo.portal.call(cast, old, ("observer-test", i))
        expect(mailbox).to_have_text("3")
        expect(page.locator("#messages li")).to_have_count(3)
        shot(page, demo, "process")
        demo.portal.call(release.set)
        held.result(timeout=5)
        expect(mailbox).to_have_text("0")

        # ---- kill it from the page with a chosen reason
        page.select_option("#kill-reason", "custom…")
        page.fill("#kill-custom", "killed-from-the-observer")
        page.click("#kill")
        expect(page.locator("#gone")).to_be_visible()
        expect(page.locator("#kill-note")).to_contain_text("killed-from-the-observer")

        # ---- its supervisor restarted it: a new PID in the tree, with a restart count
        page.click("nav a[data-view=tree]")
        new_pid = aggregator.locator("a.pid").first
        expect(new_pid).not_to_have_text(repr(old))
        expect(aggregator.locator(".badge.restarts").first).to_have_text("↻ 1")
        assert demo.child("aggregator") != old
        shot(page, demo, "tree")

        # ---- a real crash: a report the Aggregator cannot handle raises in handle_cast
        crashing = demo.child("aggregator")
        demo.portal.call(cast, crashing, ("ok", "no-such-file.py", "not a FileStats"))

        # ---- the crash log has it, linked to the process and its supervisor
        page.click("nav a[data-view=crashes]")
        crash = page.locator(f"li.crash[data-pid='{key(old)}']")
        expect(crash).to_be_visible()
        expect(crash.locator(".reason")).to_have_text("'killed-from-the-observer'")
        expect(crash.locator(f"a[href='#/process/{key(demo.app)}']")).to_be_visible()
        raised = page.locator(f"li.crash[data-pid='{key(crashing)}']")
        expect(raised.locator(".reason")).to_contain_text("TypeError")
        raised.locator("summary").click()
        expect(raised.locator("pre")).to_contain_text("Traceback (most recent call last)")
        shot(page, demo, "crashes")

        # ---- back to the system page: the restarts and crashes are counted.  The
        # page counts those of every process of this OS process, and one left by an
        # earlier test may end meanwhile: the demo's own restarts are checked exactly
        # on the tree above, its crashes here from the crash log.
        crashes = page.request.get(demo.url + "api/crashes").json()
        seen = [(c["class"], c["reason"], c["supervisor"]) for c in crashes]
        ours = [c for c in crashes if c["supervisor_key"] == key(demo.app)]
        assert len(ours) == 2, seen
        page.click("nav a[data-view=system]")
        expect(page.locator("#sys-restarts")).to_have_text(re.compile(r"^([2-9]|\d\d+)$"))
        expect(page.locator("#sys-crashes")).to_have_text(re.compile(r"^([2-9]|\d\d+)$"))
        if len(crashes) != 2:
            print("crashes beside the demo's:", seen)  # shown with -rP
        if os.environ.get("ANYOTP_SCREENSHOTS") == "1":  # a few points on the charts
            ticks = re.compile(r"^([89]|\d\d+)$")  # no wait_for_function: the CSP forbids eval
            expect(page.locator("body")).to_have_attribute("data-ticks", ticks)
        shot(page, demo, "system")
    finally:
        page.close()
