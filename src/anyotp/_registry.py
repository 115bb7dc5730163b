"""Registry: a process-owned table of processes by key, like Elixir's ``Registry``.

What it is
    A :class:`Registry` is a process that owns a key/value table.  A process
    *registers itself* under a key with a value; its entries vanish when it exits,
    for whatever reason (a crash, a normal exit, a kill).  With ``keys="unique"`` a
    key names at most one process (process naming); with ``keys="duplicate"`` many
    processes share a key (pub/sub, dispatch to a group).

Example::

    class Worker(GenServer):
        async def init(self, registry):
            Registry.register(registry, "worker1", {"role": "parser"})

    async with anyio.create_task_group() as tg:
        await Registry.start(keys="unique", task_group=tg, name="MyRegistry")
        pid = await Worker.start("MyRegistry", task_group=tg)
        assert Registry.lookup("MyRegistry", "worker1") == [(pid, {"role": "parser"})]

Reads and writes
    Lookups (``lookup``, ``match``, ``count``, ``keys``, ``dispatch``) read the table
    directly, without a message to the registry process, like Elixir's ETS-backed
    reads.  Writes (``register``, ``unregister``) also run in the caller and act on the
    *calling* process; a lock keeps the table consistent across threads, and no user
    code (a pattern predicate, a dispatch function) ever runs while it is held.

Cleanup
    On its first registration the registry installs a monitor on the process; when
    the process dies the monitor removes its entries, in the same step that sends
    its ``DOWN`` messages (so a process on the event loop that handles such a
    ``DOWN`` already sees the entries gone).  When the registry itself exits, for
    any reason, its table is cleared and its monitors are removed from every
    registered process.

Via-names
    A unique registry names processes for ``send``, ``cast``, ``call`` and
    ``start(name=...)``: ``("via", registry, key)`` or ``Via(registry, key)``, with the
    registry given as a PID or a registered name (it implements
    :class:`~anyotp.ViaRegistry`).  A process started with such a name is registered
    with the value ``None``, atomically with its start.

When not to use it
    For a handful of global singletons, ``start(name="...")`` (``anyotp.register``) is
    simpler.  A registry is for many dynamic names (one per user, per room, per
    connection) and for groups of processes under a topic.

Differences from Elixir
    The registry monitors registered processes but does not link to them: a registry
    that dies clears its table but does not take its registrants down.  There are no
    partitions (one lock, reads are cheap).  ``select`` and ``count_select`` take an
    anyotp pattern over ``(key, pid, value)`` triples instead of a match spec, and
    return the matching triples.

Metadata
    ``Registry.start(keys=..., meta={...})``, :meth:`Registry.put_meta`,
    :meth:`Registry.meta` and :meth:`Registry.delete_meta` keep registry-wide
    key/value metadata (for example the number of partitions a caller should use),
    like Elixir's ``:meta`` option and ``Registry.meta/2``.
"""

from __future__ import annotations

import operator
import threading
from collections.abc import Callable
from typing import Any, Final

from ._core import DEAD, PID, Proc, compile_pattern, current_process, maybe_await, on_exit, route
from ._core import cancel_exit_hook as _cancel_hook
from ._exceptions import NoProcess, NotInProcess
from ._genserver import GenServer

__all__ = ["Registry"]

#: The two kinds of registry, as Elixir's ``keys:`` option.
KINDS: Final = ("unique", "duplicate")

#: ``Registry.meta``'s default when none is given: a missing key raises KeyError.
_NO_DEFAULT: Final[Any] = object()


def _check_keys(keys: Any) -> str:
    if type(keys) is str and keys in KINDS:
        return keys
    raise ValueError(
        f"Registry keys must be 'unique' or 'duplicate', got {keys!r}: start it with "
        "Registry.start(keys='unique', task_group=tg) (one process per key) or "
        "keys='duplicate' (many processes per key, e.g. pub/sub)"
    )


class _Watch:
    """Installed in a registered process's monitors: drops its entries when it dies.

    Called from the dying process's ``_die``, possibly on another thread.
    """

    __slots__ = ("registry",)

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def down(self, pid: PID, reason: Any) -> None:
        self.registry._otp_drop_pid(pid)


class _Closer:
    """Installed in the registry's own monitors: clears the table when it dies."""

    __slots__ = ("registry",)

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def down(self, pid: PID, reason: Any) -> None:
        self.registry._otp_close()


def _registry(registry: Any, what: str) -> Registry:
    """The live :class:`Registry` named by ``registry`` (a PID, a name, the object)."""
    if isinstance(registry, Registry):
        reg = registry
    else:
        try:
            dest = route(registry, what)
        except (NoProcess, TypeError):
            dest = None
        proc = dest.body if type(dest) is Proc else None
        if proc is None:
            raise NoProcess(
                f"{what}: the registry {registry!r} is not alive (start it first with "
                "Registry.start(keys=..., task_group=tg, name=...))",
                registry,
            )
        if not isinstance(proc, Registry):
            raise TypeError(
                f"{what}: {registry!r} is a {type(proc).__name__}, not a Registry "
                "(pass the PID or name of a process started with Registry.start)"
            )
        reg = proc
    if reg._otp_kind is None or reg._otp_closed:
        state = "still starting" if reg._otp_kind is None else "not alive"
        raise NoProcess(f"{what}: the registry {registry!r} is {state}", registry)
    return reg


class Registry(GenServer[Any]):
    """A process-owned table of processes by key; see the module docs.

    Start it with ``await Registry.start(keys="unique" | "duplicate", task_group=tg,
    name=...)`` (or as a supervisor child: ``ChildSpec("reg", Registry,
    kwargs={"keys": "unique"})``).  Use it through the static functions below, which
    take the registry as a PID, a registered name, or the Registry object, and
    never message the registry process.
    """

    #: ``"unique"`` or ``"duplicate"`` once ``init`` ran; None before.
    _kind: str | None = None

    def __init__(self) -> None:
        super().__init__()
        self._otp_lock = threading.Lock()
        self._otp_closed = False
        # key -> {pid: [value, ...]}: one pid with one value for unique keys
        self._otp_entries: dict[Any, dict[PID, list[Any]]] = {}
        # pid -> its keys, in registration order (a dict used as an ordered set)
        self._otp_by_pid: dict[PID, dict[Any, None]] = {}
        # pid -> (its process, the monitor we installed in it)
        self._otp_watches: dict[PID, tuple[Proc, _Watch]] = {}
        self._otp_count = 0
        # registry-wide metadata (Registry.meta / put_meta), under _otp_lock
        self._otp_meta: dict[Any, Any] = {}

    # ------------------------------------------------------------------ starting

    @classmethod
    async def start(
        cls,
        *args: Any,
        keys: str | None = None,
        task_group: Any = None,
        name: Any = None,
        **kwargs: Any,
    ) -> PID:
        """Start a registry in ``task_group``; like ``Registry.start_link/1``.

        Args:
            keys: ``"unique"`` (a key names at most one process) or ``"duplicate"``
                (a key lists any number of processes).
            task_group: an anyio ``TaskGroup``, or ``self.children`` of an actor.
            name: register the registry under this name (a str, or a via-name).
            **kwargs: ``meta={...}`` sets the initial metadata (see :meth:`meta`),
                like Elixir's ``:meta`` option.

        Returns:
            The registry's PID.

        Raises:
            ValueError: ``keys`` is missing or not ``"unique"``/``"duplicate"``.
            StartError: ``name`` is already taken, or ``meta`` is not a dict.
        """
        _check_keys(keys)
        return await super().start(*args, keys=keys, task_group=task_group, name=name, **kwargs)

    @classmethod
    async def start_link(
        cls,
        *args: Any,
        keys: str | None = None,
        task_group: Any = None,
        name: Any = None,
        **kwargs: Any,
    ) -> PID:
        """Like :meth:`start`, and link the registry to the calling process.

        Raises:
            ValueError: ``keys`` is missing or not ``"unique"``/``"duplicate"``.
            NotInProcess: called outside a process.
            StartError: ``name`` is already taken.
        """
        _check_keys(keys)
        return await super().start_link(
            *args, keys=keys, task_group=task_group, name=name, **kwargs
        )

    async def init(self, keys: str | None = None, meta: dict[Any, Any] | None = None) -> None:
        """Set the kind of keys and the initial metadata; ``Registry.start`` passes them.

        Args:
            keys: ``"unique"`` or ``"duplicate"``.
            meta: initial metadata for :meth:`meta` (Elixir's ``:meta`` option), a
                dict of hashable keys to any values; None for none.

        Raises:
            ValueError: ``keys`` is not ``"unique"`` or ``"duplicate"`` (``start``
                then raises ``StartError`` chained from it).
            TypeError: ``meta`` is not a dict.
        """
        kind = _check_keys(keys)
        if meta is not None:
            if not isinstance(meta, dict):
                raise TypeError(
                    f"Registry meta must be a dict, got {type(meta).__name__} {meta!r}: "
                    "start it with Registry.start(keys=..., meta={'key': value}, ...)"
                )
            self._otp_meta.update(meta)
        on_exit(self._otp_proc(), _Closer(self))  # runs as it dies, on every exit (kill included)
        self._otp_kind = kind

    @property
    def kind(self) -> str | None:
        """``"unique"`` or ``"duplicate"``; None until the registry has started."""
        return self._otp_kind

    # ------------------------------------------------------------ the table

    def _otp_insert(self, proc: Proc, key: Any, value: Any, fn: str) -> bool:
        """Add ``(pid, value)`` under ``key``; ``fn`` names the API function in errors
        (formatted only on failure: this is the register path)."""
        pid = proc.pid
        try:
            hash(key)  # an unhashable key fails here, before the table is touched
        except TypeError:
            raise TypeError(
                f"{fn}(..., {key!r}, ...): the key must be hashable, got "
                f"{type(key).__name__} {key!r} (use a tuple instead of a list)"
            ) from None
        with self._otp_lock:
            if self._otp_closed:
                raise NoProcess(
                    f"{fn}(..., {key!r}, ...): the registry {self.pid!r} is not alive", self.pid
                )
            if proc.status is DEAD:
                raise NoProcess(f"{fn}(..., {key!r}, ...): the process {pid!r} is not alive", pid)
            by_key = self._otp_entries.get(key)
            if by_key is None:
                by_key = self._otp_entries[key] = {}
            elif self._otp_kind == "unique" and by_key:
                return False
            values = by_key.get(pid)
            if values is None:
                by_key[pid] = [value]
            else:
                values.append(value)
            keys = self._otp_by_pid.get(pid)
            if keys is None:
                keys = self._otp_by_pid[pid] = {}
            keys[key] = None
            self._otp_count += 1
            if pid not in self._otp_watches:
                watch = _Watch(self)
                self._otp_watches[pid] = (proc, watch)
                # installed directly (not on_exit): the lock is held, and the death
                # race is handled below
                proc.monitors[watch] = watch
        if proc.status is DEAD:  # died while we installed the monitor: undo
            self._otp_drop_pid(pid)
        return True

    def _otp_remove(self, pid: PID, key: Any, matcher: Callable[[Any], Any] | None = None) -> int:
        """Remove ``pid``'s entries under ``key`` (only those whose value ``matcher``
        matches, if given); returns how many were removed."""
        while True:
            drop: list[bool] | None = None
            snap: list[Any] = []
            if matcher is not None:
                # Match outside the lock (a pattern may call user predicates).
                with self._otp_lock:
                    by_key = self._otp_entries.get(key)
                    values = None if by_key is None else by_key.get(pid)
                    if values is None:
                        return 0
                    snap = list(values)
                drop = [matcher(v) is not None for v in snap]
                if not any(drop):
                    return 0
            unwatch: tuple[Proc, _Watch] | None = None
            with self._otp_lock:
                by_key = self._otp_entries.get(key)
                values = None if by_key is None else by_key.get(pid)
                if by_key is None or values is None:
                    return 0
                if drop is None:
                    kept = []
                elif len(values) == len(snap) and all(map(operator.is_, values, snap)):
                    kept = [v for v, d in zip(snap, drop, strict=True) if not d]
                else:  # changed while we matched (only by a death or a close): again
                    continue
                removed = len(values) - len(kept)
                if kept:
                    by_key[pid] = kept
                else:
                    del by_key[pid]
                    if not by_key:
                        del self._otp_entries[key]
                    keys = self._otp_by_pid[pid]
                    del keys[key]
                    if not keys:
                        del self._otp_by_pid[pid]
                        unwatch = self._otp_watches.pop(pid, None)
                self._otp_count -= removed
            if unwatch is not None:
                _cancel_hook(unwatch[0], unwatch[1])
            return removed

    def _otp_drop_pid(self, pid: PID) -> None:
        """Remove every entry of ``pid`` (it died).  Any thread."""
        with self._otp_lock:
            keys = self._otp_by_pid.pop(pid, None)
            unwatch = self._otp_watches.pop(pid, None)
            if keys is not None:
                entries = self._otp_entries
                for key in keys:
                    by_key = entries[key]
                    self._otp_count -= len(by_key.pop(pid))
                    if not by_key:
                        del entries[key]
        if unwatch is not None:
            _cancel_hook(unwatch[0], unwatch[1])

    def _otp_close(self) -> None:
        """The registry died: clear the table and remove our monitors.  Any thread."""
        with self._otp_lock:
            self._otp_closed = True
            watches = list(self._otp_watches.values())
            self._otp_watches.clear()
            self._otp_entries.clear()
            self._otp_by_pid.clear()
            self._otp_count = 0
            self._otp_meta.clear()
        for proc, watch in watches:
            _cancel_hook(proc, watch)

    def _otp_snapshot(self, key: Any) -> list[tuple[PID, Any]]:
        with self._otp_lock:
            by_key = self._otp_entries.get(key)
            if by_key is None:
                return []
            return [(pid, v) for pid, values in by_key.items() for v in values]

    def _otp_triples(self) -> list[tuple[Any, PID, Any]]:
        """Every entry as ``(key, pid, value)``: a snapshot taken under the lock."""
        with self._otp_lock:
            return [
                (key, pid, v)
                for key, by_key in self._otp_entries.items()
                for pid, values in by_key.items()
                for v in values
            ]

    # ------------------------------------------------------------ ViaRegistry

    def _otp_not_unique(self, what: str) -> ValueError:
        return ValueError(
            f"{what}: via-names need a unique registry, but {self.pid!r} has "
            f"{self._otp_kind!r} keys (start one with Registry.start(keys='unique', ...))"
        )

    def whereis_name(self, key: Any) -> PID | None:
        """The PID registered under ``key``, or None; like ``Registry.whereis_name/1``.

        Raises:
            ValueError: this is a duplicate registry (via-names need unique keys).
        """
        if self._otp_kind != "unique":  # checked first: send() to a via-name comes here
            raise self._otp_not_unique(f"whereis_name({key!r})")
        with self._otp_lock:
            by_key = self._otp_entries.get(key)
            if not by_key:
                return None
            return next(iter(by_key))

    def register_name(self, key: Any, pid: PID) -> bool:
        """Register ``pid`` (any process, not only the caller) under ``key`` with the
        value None; like ``Registry.register_name/2``.  ``start(name=via)`` uses it.

        Returns:
            True if registered, False if ``key`` is taken.

        Raises:
            ValueError: this is a duplicate registry.
            NoProcess: ``pid`` or the registry is not alive.
        """
        if self._otp_kind != "unique":
            raise self._otp_not_unique(f"register_name({key!r}, {pid!r})")
        dest = route(pid, "register_name()")
        proc = dest if type(dest) is Proc else None
        if proc is None:
            raise NoProcess(f"register_name({key!r}, {pid!r}): the process is not alive", pid)
        return self._otp_insert(proc, key, None, "register_name")

    def unregister_name(self, key: Any) -> None:
        """Remove ``key``, whichever process holds it; like ``Registry.unregister_name/1``.

        Raises:
            ValueError: this is a duplicate registry.
        """
        if self._otp_kind != "unique":
            raise self._otp_not_unique(f"unregister_name({key!r})")
        pid = self.whereis_name(key)
        if pid is not None:
            self._otp_remove(pid, key)

    # ------------------------------------------------------------ the API

    @staticmethod
    def register(registry: PID | str | Registry, key: Any, value: Any = None) -> bool:
        """Register the calling process under ``key`` with ``value``; like ``Registry.register/3``.

        The entry is removed when the calling process exits (or calls
        :meth:`unregister`).  In a duplicate registry a process may register the same
        key more than once; each registration is a separate entry.

        Args:
            registry: the registry's PID or registered name, or the Registry object.
            key: any hashable value.
            value: any value, returned by :meth:`lookup` with the PID.

        Returns:
            True if registered; False if the registry is unique and ``key`` is taken,
            by another process or by the caller itself (Elixir's
            ``{:error, {:already_registered, pid}}``; see who with :meth:`lookup`).

        Raises:
            NotInProcess: called outside a process.
            NoProcess: the registry is not alive.
            TypeError: ``key`` is unhashable, or ``registry`` is not a Registry.
        """
        me = current_process()
        if me is None:
            raise NotInProcess(
                f"Registry.register({registry!r}, {key!r}, ...) registers the calling "
                "process: call it from inside a process (init, a handler, run)"
            )
        reg = _registry(registry, "Registry.register()")
        return reg._otp_insert(me, key, value, "Registry.register")

    @staticmethod
    def unregister(registry: PID | str | Registry, key: Any) -> None:
        """Remove the calling process's entries under ``key``; like ``Registry.unregister/2``.

        Does nothing if the caller has none.

        Raises:
            NotInProcess: called outside a process.
            NoProcess: the registry is not alive.
        """
        me = current_process()
        if me is None:
            raise NotInProcess(
                f"Registry.unregister({registry!r}, {key!r}) acts on the calling process: "
                "call it from inside a process"
            )
        _registry(registry, "Registry.unregister()")._otp_remove(me.pid, key)

    @staticmethod
    def unregister_match(registry: PID | str | Registry, key: Any, pattern: Any) -> int:
        """Remove the calling process's entries under ``key`` whose value matches
        ``pattern`` (an anyotp pattern); like ``Registry.unregister_match/3``.

        Returns:
            How many entries were removed.

        Raises:
            NotInProcess: called outside a process.
            NoProcess: the registry is not alive.
            InvalidPattern: ``pattern`` contains a dict or set literal.
        """
        me = current_process()
        if me is None:
            raise NotInProcess(
                f"Registry.unregister_match({registry!r}, {key!r}, ...) acts on the calling "
                "process: call it from inside a process"
            )
        reg = _registry(registry, "Registry.unregister_match()")
        return reg._otp_remove(me.pid, key, compile_pattern(pattern))

    @staticmethod
    def lookup(registry: PID | str | Registry, key: Any) -> list[tuple[PID, Any]]:
        """The ``(pid, value)`` entries under ``key``; like ``Registry.lookup/2``.

        Reads the table directly (no message to the registry).  A unique registry
        returns at most one entry.

        Returns:
            A new list (empty if nobody is registered under ``key``).

        Raises:
            NoProcess: the registry is not alive.
        """
        return _registry(registry, "Registry.lookup()")._otp_snapshot(key)

    @staticmethod
    def match(registry: PID | str | Registry, key: Any, pattern: Any) -> list[tuple[PID, Any]]:
        """The entries under ``key`` whose value matches ``pattern``; like ``Registry.match/3``.

        ``pattern`` is an anyotp pattern (see :func:`~anyotp.match`): a literal, a
        type, a tuple of patterns, ``ANY``/``_``, or a predicate.

        Raises:
            NoProcess: the registry is not alive.
            InvalidPattern: ``pattern`` contains a dict or set literal.
        """
        matcher = compile_pattern(pattern)
        entries = _registry(registry, "Registry.match()")._otp_snapshot(key)
        return [e for e in entries if matcher(e[1]) is not None]

    @staticmethod
    def count(registry: PID | str | Registry) -> int:
        """How many entries the registry holds, all keys together; like ``Registry.count/1``.

        Raises:
            NoProcess: the registry is not alive.
        """
        return _registry(registry, "Registry.count()")._otp_count

    @staticmethod
    def count_match(registry: PID | str | Registry, key: Any, pattern: Any) -> int:
        """How many entries under ``key`` have a value matching ``pattern``; like
        ``Registry.count_match/3``.

        Raises:
            NoProcess: the registry is not alive.
            InvalidPattern: ``pattern`` contains a dict or set literal.
        """
        matcher = compile_pattern(pattern)
        entries = _registry(registry, "Registry.count_match()")._otp_snapshot(key)
        return sum(1 for e in entries if matcher(e[1]) is not None)

    @staticmethod
    def keys(registry: PID | str | Registry, pid: PID) -> list[Any]:
        """The keys ``pid`` is registered under, in registration order; like
        ``Registry.keys/2``.  A key registered twice (duplicate registry) appears twice.

        Raises:
            NoProcess: the registry is not alive.
        """
        reg = _registry(registry, "Registry.keys()")
        with reg._otp_lock:
            keys = reg._otp_by_pid.get(pid)
            if keys is None:
                return []
            entries = reg._otp_entries
            return [k for k in keys for _ in entries[k][pid]]

    @staticmethod
    def values(registry: PID | str | Registry, key: Any, pid: PID) -> list[Any]:
        """The values ``pid`` registered under ``key``; like ``Registry.values/3``.

        Raises:
            NoProcess: the registry is not alive.
        """
        return [v for p, v in Registry.lookup(registry, key) if p == pid]

    @staticmethod
    def update_value(
        registry: PID | str | Registry, key: Any, fn: Callable[[Any], Any]
    ) -> tuple[Any, Any] | None:
        """Replace the calling process's value under ``key`` (unique registries) with
        ``fn(old)``; like ``Registry.update_value/3``.

        ``fn`` runs in the caller, outside the table lock.

        Returns:
            ``(new, old)``, or None if the caller is not registered under ``key``
            (Elixir's ``:error``).

        Raises:
            NotInProcess: called outside a process.
            NoProcess: the registry is not alive.
            ValueError: the registry has duplicate keys.
        """
        me = current_process()
        if me is None:
            raise NotInProcess(
                f"Registry.update_value({registry!r}, {key!r}, ...) acts on the calling "
                "process: call it from inside a process"
            )
        reg = _registry(registry, "Registry.update_value()")
        if reg._otp_kind != "unique":
            raise ValueError(
                f"Registry.update_value({registry!r}, {key!r}, ...) needs a unique registry"
            )
        pid = me.pid
        with reg._otp_lock:
            by_key = reg._otp_entries.get(key)
            values = None if by_key is None else by_key.get(pid)
            if values is None:
                return None
            old = values[0]
        new = fn(old)
        with reg._otp_lock:  # only the caller can change its own entry; it may be gone
            by_key = reg._otp_entries.get(key)
            values = None if by_key is None else by_key.get(pid)
            if values is None:
                return None
            values[0] = new
        return new, old

    @staticmethod
    def select(registry: PID | str | Registry, pattern: Any) -> list[tuple[Any, PID, Any]]:
        """Every ``(key, pid, value)`` entry that matches ``pattern``, across all keys;
        like ``Registry.select/2``.

        Where Elixir takes a match spec, this takes an anyotp pattern (see
        :func:`~anyotp.match`) that is matched against the triple, e.g.
        ``(("room", ANY), ANY, lambda v: v["admin"])``; to pick fields, unpack the
        triples.  The table is read directly (no message to the registry); the
        pattern runs outside the table lock.  Entries come key by key, in the order
        the keys were first registered.

        Args:
            registry: the registry's PID or registered name, or the Registry object.
            pattern: an anyotp pattern, usually a 3-tuple ``(key, pid, value)``.

        Returns:
            A new list of the matching ``(key, pid, value)`` triples.

        Raises:
            NoProcess: the registry is not alive.
            InvalidPattern: ``pattern`` contains a dict or set literal.
        """
        matcher = compile_pattern(pattern)
        entries = _registry(registry, "Registry.select()")._otp_triples()
        return [e for e in entries if matcher(e) is not None]

    @staticmethod
    def count_select(registry: PID | str | Registry, pattern: Any) -> int:
        """How many ``(key, pid, value)`` entries match ``pattern``; like
        ``Registry.count_select/2`` (see :meth:`select` for the pattern).

        Raises:
            NoProcess: the registry is not alive.
            InvalidPattern: ``pattern`` contains a dict or set literal.
        """
        matcher = compile_pattern(pattern)
        entries = _registry(registry, "Registry.count_select()")._otp_triples()
        return sum(1 for e in entries if matcher(e) is not None)

    @staticmethod
    def meta(registry: PID | str | Registry, key: Any, default: Any = _NO_DEFAULT) -> Any:
        """The registry's metadata under ``key``; like ``Registry.meta/2``.

        Metadata is set with ``Registry.start(keys=..., meta={...})`` or
        :meth:`put_meta`; it lives as long as the registry.  Any thread may read it.

        Args:
            registry: the registry's PID or registered name, or the Registry object.
            key: a hashable metadata key.
            default: returned when ``key`` has no metadata (Elixir's ``:error``);
                without it, a missing key raises KeyError.

        Raises:
            KeyError: ``key`` has no metadata and no ``default`` was given.
            NoProcess: the registry is not alive.
        """
        reg = _registry(registry, "Registry.meta()")
        with reg._otp_lock:
            if key in reg._otp_meta:
                return reg._otp_meta[key]
        if default is _NO_DEFAULT:
            raise KeyError(
                f"Registry.meta({registry!r}, {key!r}): no metadata under {key!r} (set it "
                "with Registry.put_meta() or start(meta=...), or pass a default)"
            )
        return default

    @staticmethod
    def put_meta(registry: PID | str | Registry, key: Any, value: Any) -> None:
        """Store ``value`` as the registry's metadata under ``key``, replacing any
        value there; like ``Registry.put_meta/3``.  Any process or thread may call it.

        Raises:
            NoProcess: the registry is not alive.
            TypeError: ``key`` is unhashable.
        """
        reg = _registry(registry, "Registry.put_meta()")
        try:
            hash(key)
        except TypeError:
            raise TypeError(
                f"Registry.put_meta({registry!r}, {key!r}, ...): the key must be hashable, "
                f"got {type(key).__name__} {key!r} (use a tuple instead of a list)"
            ) from None
        with reg._otp_lock:
            reg._otp_meta[key] = value

    @staticmethod
    def delete_meta(registry: PID | str | Registry, key: Any) -> None:
        """Remove the registry's metadata under ``key`` (nothing if there is none);
        like ``Registry.delete_meta/2``.

        Raises:
            NoProcess: the registry is not alive.
        """
        reg = _registry(registry, "Registry.delete_meta()")
        with reg._otp_lock:
            reg._otp_meta.pop(key, None)

    @staticmethod
    async def dispatch(
        registry: PID | str | Registry, key: Any, fn: Callable[[list[tuple[PID, Any]]], Any]
    ) -> None:
        """Call ``fn(entries)`` with the ``(pid, value)`` entries under ``key``; like
        ``Registry.dispatch/3``.

        ``fn`` may be sync or async; it runs in the caller, once, and is not called
        when there are no entries.  An exception from ``fn`` propagates to the caller.
        Typical use, publishing to a topic of a duplicate registry::

            await Registry.dispatch(reg, "news", lambda entries: [
                send(pid, ("news", item)) for pid, _ in entries
            ])

        Raises:
            NoProcess: the registry is not alive.
        """
        entries = _registry(registry, "Registry.dispatch()")._otp_snapshot(key)
        if entries:
            await maybe_await(fn(entries))

    def __repr__(self) -> str:
        pcb = self._otp_pcb
        status = "not started" if pcb is None else pcb.status.name.lower()
        return f"<Registry {pcb.pid if pcb else None!r} {self._otp_kind} {status}>"
