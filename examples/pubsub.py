"""Pub/sub on a duplicate-keys Registry: topics are keys, subscribers are processes.

Each subscriber registers itself under the topics it wants; a publisher sends a
message to everyone under a topic with ``Registry.dispatch``.  Nobody unsubscribes
by hand: when a subscriber exits -- here one crashes on a message it cannot handle
-- the registry drops its entries, so it vanishes from the topic.

Run::

    python examples/pubsub.py
"""

from __future__ import annotations

import logging
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectSendStream

from anyotp import ANY, PID, Actor, GenServer, Registry, monitor, send, send_nowait

TOPIC = "news"


class Subscriber(GenServer[dict[str, Any]]):
    """Subscribes to ``topic`` in ``init``; reports what it gets; crashes on "boom"."""

    async def init(
        self, registry: str, topic: str, name: str, report: MemoryObjectSendStream[str]
    ) -> dict[str, Any]:
        Registry.register(registry, topic, name)  # the value: a label for lookups
        return {"name": name, "report": report}

    async def handle_info(self, message: Any, state: dict[str, Any]) -> dict[str, Any]:
        match message:
            case ("publish", topic, "boom"):
                raise RuntimeError(f"{state['name']} cannot handle 'boom' on {topic!r}")
            case ("publish", topic, text):
                state["report"].send_nowait(f"{state['name']} got {text!r} on {topic!r}")
        return state


class DownWaiter(Actor):
    """Monitors ``pid`` and sets ``done`` when it is gone."""

    async def init(self, pid: PID, done: anyio.Event) -> None:
        self.ref = monitor(pid)
        self.done = done

    async def run(self, state: Any) -> Any:
        await self.receive((("DOWN", self.ref, "process", ANY, ANY), lambda _pid, _r: None))
        self.done.set()
        self.stop()


async def publish(registry: str, topic: str, text: str) -> None:
    """Send ``("publish", topic, text)`` to every subscriber of ``topic``."""
    message = ("publish", topic, text)

    def to_all(entries: list[tuple[PID, Any]]) -> None:
        for pid, _ in entries:
            send_nowait(pid, message)

    await Registry.dispatch(registry, topic, to_all)


def subscribers(registry: str, topic: str) -> list[str]:
    """The labels of ``topic``'s subscribers, sorted."""
    return sorted(value for _pid, value in Registry.lookup(registry, topic))


async def main() -> None:
    report, reports = anyio.create_memory_object_stream[str](100)
    with report, reports:
        async with anyio.create_task_group() as tg:
            await Registry.start(keys="duplicate", task_group=tg, name="pubsub")
            pids = {
                name: await Subscriber.start("pubsub", TOPIC, name, report, task_group=tg)
                for name in ("alice", "bob", "carol")
            }
            print(f"subscribers of {TOPIC!r}: {subscribers('pubsub', TOPIC)}")

            await publish("pubsub", TOPIC, "hello")
            print(sorted([await reports.receive() for _ in range(3)]))

            print("bob gets 'boom' and crashes (the crash is logged)")
            gone = anyio.Event()
            await DownWaiter.start(pids["bob"], gone, task_group=tg)
            await send(pids["bob"], ("publish", TOPIC, "boom"))
            await gone.wait()
            print(f"subscribers of {TOPIC!r}: {subscribers('pubsub', TOPIC)}")

            await publish("pubsub", TOPIC, "still there?")
            print(sorted([await reports.receive() for _ in range(2)]))
            tg.cancel_scope.cancel()


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="[log] %(message)s")
    anyio.run(main)
