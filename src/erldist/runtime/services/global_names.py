"""``global``'s replicated name table, and its resolvers for name clashes.

Every member of a ``global`` cluster holds the whole table (name -> pid and
the method that resolves a clash), and every member monitors every
registered pid, wherever it runs: when the process dies, or its node goes
away, each member drops the name on its own, so no message has to travel for
a name to disappear everywhere. This module is that table for the Python
node; ``GlobalCompat`` feeds it from the sync protocol and the registrar's
calls.

A clash found while two partitions sync is settled by the node whose name
sorts lower, which runs the method of the name it already holds on the node
of that name's pid. The three methods OTP ships are understood here and run
on Python pids; any other method is an Erlang fun only an Erlang node can
run.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from erldist.runtime.termkey import term_key
from erldist.term.types import Atom, Export, Pid, Reference, Term

__all__ = [
    "NOTIFY_ALL_NAME",
    "RANDOM_EXIT_NAME",
    "RANDOM_NOTIFY_NAME",
    "RESOLVERS",
    "GlobalName",
    "NameTable",
    "Resolution",
    "resolve_locally",
]

_GLOBAL = Atom("global")
#: ``fun global:random_exit_name/3``: the default; the pid on the greater node is killed.
RANDOM_EXIT_NAME = Export(_GLOBAL, Atom("random_exit_name"), 3)
#: ``fun global:random_notify_name/3``: the loser is told ``{global_name_conflict, Name}``.
RANDOM_NOTIFY_NAME = Export(_GLOBAL, Atom("random_notify_name"), 3)
#: ``fun global:notify_all_name/3``: both are told and the name goes.
NOTIFY_ALL_NAME = Export(_GLOBAL, Atom("notify_all_name"), 3)
#: The resolvers by the names Python code passes (``resolve="random_exit"``...).
RESOLVERS: dict[str, Export] = {
    "random_exit": RANDOM_EXIT_NAME,
    "random_notify": RANDOM_NOTIFY_NAME,
    "notify_all": NOTIFY_ALL_NAME,
}
_NONE = Atom("none")
_CONFLICT = Atom("global_name_conflict")


@dataclass(frozen=True, slots=True)
class GlobalName:
    """One row: the name as it travels, its pid, its resolve method, our monitor."""

    name: Term
    pid: Pid
    method: Term
    ref: Reference


class NameTable:
    """Names -> pids, with a monitor on every pid (dropped with its name)."""

    def __init__(
        self,
        monitor: Callable[[Pid], Reference],
        demonitor: Callable[[Reference], object],
        on_removed: Callable[[GlobalName], None],
    ) -> None:
        self._monitor = monitor
        self._demonitor = demonitor
        self._on_removed = on_removed
        self._rows: dict[Hashable, GlobalName] = {}
        self._by_ref: dict[Reference, Hashable] = {}

    def __len__(self) -> int:
        return len(self._rows)

    def has_ref(self, ref: Reference) -> bool:
        return ref in self._by_ref

    def get(self, name: Term) -> GlobalName | None:
        return self._rows.get(term_key(name))

    def names_of(self, pid: Pid) -> list[Term]:
        return [row.name for row in self._rows.values() if row.pid == pid]

    def rows(self) -> list[GlobalName]:
        return list(self._rows.values())

    def listing(self) -> list[tuple[Term, Pid, Term]]:
        """``global``'s ``get_names()``: ``{Name, Pid, Method}`` for every row."""
        return [(row.name, row.pid, row.method) for row in self._rows.values()]

    def insert(self, name: Term, pid: Pid, method: Term) -> None:
        """OTP's ``ins_name``: replace any row for ``name``, monitor the new pid.

        The monitor is made after the row is in, so a pid that is already
        gone (its DOWN comes at once) takes its fresh row away with it.
        """
        self.delete(name)
        key = term_key(name)
        placeholder = GlobalName(name, pid, method, Reference(Atom(""), 0, (0,)))
        self._rows[key] = placeholder
        ref = self._monitor(pid)
        if self._rows.get(key) is placeholder:
            self._rows[key] = GlobalName(name, pid, method, ref)
            self._by_ref[ref] = key

    def delete(self, name: Term) -> GlobalName | None:
        row = self._rows.pop(term_key(name), None)
        if row is None:
            return None
        if self._by_ref.pop(row.ref, None) is not None:
            self._demonitor(row.ref)
        self._on_removed(row)
        return row

    def down(self, ref: Reference) -> GlobalName | None:
        """A monitored pid is gone: drop its name (None if the ref was not ours)."""
        key = self._by_ref.pop(ref, None)
        if key is None:
            return None
        row = self._rows.pop(key)
        self._on_removed(row)
        return row

    def down_pid(self, pid: Pid) -> None:
        """A pid died before its monitor's reference was known (the DOWN came at once)."""
        for key, row in list(self._rows.items()):
            if row.pid == pid and row.ref not in self._by_ref:
                del self._rows[key]
                self._on_removed(row)

    def clear(self) -> None:
        self._rows.clear()
        self._by_ref.clear()


@dataclass(frozen=True, slots=True)
class Resolution:
    """What a resolver decided: the pid that keeps the name (None: nobody), and the
    exits and messages that decision sends."""

    winner: Pid | None
    kill: tuple[Pid, ...] = ()
    notify: tuple[tuple[Pid, Term], ...] = ()


def _minmax(p1: Pid, p2: Pid) -> tuple[Pid, Pid]:
    """OTP's ``minmax``: the pid on the node whose name sorts first, then the other."""
    return (p1, p2) if p1.node < p2.node else (p2, p1)


def resolve_locally(method: Term, name: Term, pid1: Pid, pid2: Pid) -> Resolution | None:
    """Run one of OTP's three methods; None for a method only Erlang can run."""
    if method == RANDOM_EXIT_NAME:
        low, high = _minmax(pid1, pid2)
        return Resolution(low, kill=(high,))
    if method == RANDOM_NOTIFY_NAME:
        low, high = _minmax(pid1, pid2)
        return Resolution(low, notify=((high, (_CONFLICT, name)),))
    if method == NOTIFY_ALL_NAME:
        return Resolution(None, notify=((pid1, (_CONFLICT, name, pid2)),
                                        (pid2, (_CONFLICT, name, pid1))))
    return None


def resolve_reply(reply: Any) -> Pid | str | None:
    """An Erlang ``resolve_it`` answer: a pid, None for ``none``, or "badrpc"/"other"."""
    if isinstance(reply, Pid):
        return reply
    if reply == _NONE:
        return None
    if isinstance(reply, tuple) and len(reply) == 2 and reply[0] == Atom("badrpc"):
        return "badrpc"
    return "other"
