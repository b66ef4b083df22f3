"""Screen data loaded off the UI thread and cached until the store changes.

A screen asks for a key and a function of a Store. If the store has not changed since
that key was computed, the answer comes from the cache at once; otherwise a thread
worker computes it on its own connection (a sqlite connection belongs to one thread)
and hands it back on the UI thread. The change counter costs microseconds: PRAGMA
data_version moves when any other connection commits, and the UI connection's
total_changes when it writes itself (a grade override).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any

from textual.dom import DOMNode

MISS = object()


def store_version(store) -> tuple[int, int]:
    conn = store.db.conn
    return conn.execute("PRAGMA data_version").fetchone()[0], conn.total_changes


class DataCache:
    """The last `size` answers, each with the store version it was computed at."""

    def __init__(self, size: int = 64):
        self.size = size
        self._items: OrderedDict[Hashable, tuple[Any, Any]] = OrderedDict()
        # key -> (version, callbacks) of a load under way: a second ask for the same answer
        # (a screen's mount and resume both reload) waits for it rather than computing it again
        self.pending: dict[Hashable, tuple[Any, list]] = {}
        self.latest: dict[tuple[int, Hashable], Hashable] = {}  # (node, group) -> the key it asked for last

    def get(self, key: Hashable, version) -> Any:
        hit = self._items.get(key)
        if hit is None or hit[0] != version:
            return MISS
        self._items.move_to_end(key)
        return hit[1]

    def put(self, key: Hashable, version, value) -> None:
        self._items[key] = (version, value)
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)


def load(
    app,
    node: DOMNode,
    key: Hashable,
    fn: Callable[[Any], Any],
    done: Callable[[Any], None],
    failed: Callable[[Exception], None] | None = None,
) -> bool:
    """Call done(fn(store)) on the UI thread: now (True) if the cache holds it for the
    store as it is, else (False) once a worker has computed it. Keys are tuples whose
    first item names a group: only the group's latest ask on `node` is answered, so a
    slow page never overwrites the page asked for after it."""
    from app.config import DB_NAME
    from app.store import Store

    cache = app.data_cache
    group = key[0] if isinstance(key, tuple) else key
    cache.latest[(id(node), group)] = key
    version = store_version(app.store)
    hit = cache.get(key, version)
    if hit is not MISS:
        done(hit)
        return True
    waiting = cache.pending.get(key)
    if waiting is not None and waiting[0] == version:
        waiting[1].append((node, done, failed))
        return False
    cache.pending[key] = (version, [(node, done, failed)])
    path = Path(app.project) / DB_NAME

    def finish(value, error: Exception | None) -> None:
        entry = cache.pending.get(key)
        if entry is None or entry[0] != version:
            return
        del cache.pending[key]
        if error is None:
            cache.put(key, version, value)
        for who, on_done, on_failed in entry[1]:
            if not who.is_attached or cache.latest.get((id(who), group)) != key:
                continue
            if error is None:
                on_done(value)
            elif on_failed is not None:
                on_failed(error)
            else:
                app.notify(f"could not load: {error}", severity="error")

    def work() -> None:
        try:
            with Store(path) as store:
                value, error = fn(store), None
        except Exception as e:  # noqa: BLE001 -- shown on the screen that asked, never a crash
            value, error = None, e
        try:
            app.call_from_thread(finish, value, error)
        except RuntimeError:  # the app closed while this was loading
            pass

    node.run_worker(work, thread=True, group=f"load {group}", exit_on_error=False)
    return False
