"""OTP ``pg`` process groups, one scope per service, speaking ``pg.erl``'s protocol.

A scope is a process registered under the scope's name (``pg`` is the
default one) on every node that takes part. Scopes find each other by name:
on nodeup each sends ``{discover, Self}`` to ``{Scope, Node}``; a scope that
hears a discover answers with ``{'$gen_cast', {sync, Self, Groups}}`` (all
its local members), monitors the peer and sends its own discover if the peer
was new. After that a peer's ``{join, Peer, Group, PidOrPids}`` and ``{leave,
Peer, PidOrPids, Groups}`` keep the view current, and a peer scope's DOWN
(its process or its node gone) drops all of its members. OTP 25 sends
``{discover, Pid}``, OTP 28 also accepts ``{discover, Pid, Vsn}``: both are
understood, and we send the first, which both read.

Members are kept in OTP's order (newest first), each group with all its
members and the local ones. Monitors (OTP 25.1+ ``monitor_scope`` and
``monitor``) get ``{Ref, join | leave, Group, Pids}`` for every change.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

from erldist import telemetry
from erldist.events import ClusterEvent, NodeUp
from erldist.runtime.process import Down
from erldist.runtime.router import Router
from erldist.runtime.services.host import ServiceHost
from erldist.runtime.termkey import term_key, term_text
from erldist.term.types import Atom, Pid, Reference, Term

__all__ = ["DEFAULT_SCOPE", "PgScope"]

log = logging.getLogger("erldist.pg")

DEFAULT_SCOPE = "pg"
_DISCOVER = Atom("discover")
_JOIN = Atom("join")
_LEAVE = Atom("leave")
_SYNC = Atom("sync")
_GEN_CAST = Atom("$gen_cast")
#: Scope processes one node may have here at once (a restarted scope overlaps its
#: predecessor until the DOWN comes).
MAX_SCOPES_PER_NODE = 4


@dataclass
class _Group:
    """One group as every node sees it: its term, all members, and ours."""

    group: Term
    members: list[Pid] = field(default_factory=list)
    local: list[Pid] = field(default_factory=list)


@dataclass
class _Peer:
    """A remote scope process: our monitor on it, and its members by group."""

    ref: Reference
    groups: dict[Hashable, tuple[Term, list[Pid]]] = field(default_factory=dict)


class PgScope:
    """One ``pg`` scope on this node."""

    def __init__(self, node: ServiceHost, router: Router, scope: str) -> None:
        self.scope = scope
        self._node = node
        self._router = router
        self._closed = False
        self._proc = router.add_service(scope, self._receive)
        self.pid = self._proc.pid
        self._groups: dict[Hashable, _Group] = {}
        self._local: dict[Pid, tuple[Reference, list[Term]]] = {}
        self._remote: dict[Pid, _Peer] = {}
        self._scope_monitors: dict[Reference, Pid] = {}
        self._group_monitors: dict[Reference, tuple[Pid, Hashable]] = {}
        self._owner_refs: dict[Reference, Reference] = {}  # our monitor on an owner -> its ref
        node.add_listener(self._on_event)
        for peer in node.nodes():
            self._discover(peer)

    def close(self) -> None:
        self._closed = True
        self._node.remove_listener(self._on_event)

    # --- reading -----------------------------------------------------------------------

    def get_members(self, group: Term) -> list[Pid]:
        """``pg:get_members/2``: every member on every node, newest first."""
        entry = self._groups.get(term_key(group))
        return list(entry.members) if entry is not None else []

    def get_local_members(self, group: Term) -> list[Pid]:
        """``pg:get_local_members/2``."""
        entry = self._groups.get(term_key(group))
        return list(entry.local) if entry is not None else []

    def which_groups(self) -> list[Term]:
        """``pg:which_groups/1``."""
        return [entry.group for entry in self._groups.values()]

    def which_local_groups(self) -> list[Term]:
        """``pg:which_local_groups/1``."""
        return [entry.group for entry in self._groups.values() if entry.local]

    # --- joining and leaving -------------------------------------------------------------

    def join(self, group: Term, pids: Pid | list[Pid]) -> None:
        """``pg:join/3`` for processes of this node (a pid may join a group twice)."""
        batch = [pids] if isinstance(pids, Pid) else list(pids)
        for pid in batch:
            if not self._router.is_local(pid):
                raise ValueError(f"pg members join from their own node: {pid!r} is not local")
        for pid in batch:
            known = self._local.get(pid)
            if known is None:
                self._local[pid] = (self._router.monitor_nowait(self._proc, pid), [group])
            else:
                known[1].insert(0, group)
        entry = self._groups.setdefault(term_key(group), _Group(group))
        entry.members[:0] = batch
        entry.local[:0] = batch
        self._notify(_JOIN, group, batch)
        self._broadcast((_JOIN, self.pid, group, pids))

    def leave(self, group: Term, pids: Pid | list[Pid]) -> bool:
        """``pg:leave/3``: False (``not_joined``) when none of ``pids`` was in ``group``."""
        batch = [pids] if isinstance(pids, Pid) else list(pids)
        key = term_key(group)
        left = []
        for pid in batch:
            known = self._local.get(pid)
            if known is None:
                continue
            ref, groups = known
            at = next((i for i, g in enumerate(groups) if term_key(g) == key), None)
            if at is None:
                continue
            del groups[at]
            left.append(pid)
            if not groups:
                del self._local[pid]
                self._router.demonitor(self._proc, ref)
        if not left:
            return False
        self._drop(group, batch, local=True)
        self._broadcast((_LEAVE, self.pid, pids, [group]))
        return True

    # --- monitors ----------------------------------------------------------------------

    def monitor_scope(self, owner: Pid) -> tuple[Reference, dict[Any, list[Pid]]]:
        """``pg:monitor_scope/1``: the groups now, and every later change sent to
        ``owner`` as ``{Ref, join | leave, Group, Pids}``."""
        ref = self._router.make_ref()
        self._scope_monitors[ref] = owner
        self._watch_owner(owner, ref)
        return ref, {e.group: list(e.members) for e in self._groups.values()}

    def monitor(self, owner: Pid, group: Term) -> tuple[Reference, list[Pid]]:
        """``pg:monitor/2``: the group's members now, and its later changes."""
        ref = self._router.make_ref()
        self._group_monitors[ref] = (owner, term_key(group))
        self._watch_owner(owner, ref)
        return ref, self.get_members(group)

    def demonitor(self, ref: Reference) -> bool:
        """``pg:demonitor/2``: False if ``ref`` was not a monitor of this scope."""
        found = (self._scope_monitors.pop(ref, None) is not None
                 or self._group_monitors.pop(ref, None) is not None)
        for ours, theirs in list(self._owner_refs.items()):
            if theirs == ref:
                del self._owner_refs[ours]
                self._router.demonitor(self._proc, ours)
        return found

    def _watch_owner(self, owner: Pid, ref: Reference) -> None:
        ours = self._router.monitor_nowait(self._proc, owner)
        if ref in self._scope_monitors or ref in self._group_monitors:
            self._owner_refs[ours] = ref

    def _notify(self, action: Atom, group: Term, pids: list[Pid]) -> None:
        key = term_key(group)
        targets = [(ref, pid) for ref, pid in self._scope_monitors.items()]
        targets += [(ref, pid) for ref, (pid, g) in self._group_monitors.items() if g == key]
        for ref, pid in targets:
            self._router.send_nowait(self.pid, pid, (ref, action, group, list(pids)))
        telemetry.emit(telemetry.GroupChanged(self.scope, term_text(group), str(action),
                                              tuple(repr(p) for p in pids)))

    # --- the protocol ------------------------------------------------------------------

    def _on_event(self, event: ClusterEvent) -> None:
        if not self._closed and isinstance(event, NodeUp) and event.node in self._node.nodes():
            self._discover(event.node)

    def _discover(self, peer: str) -> None:
        self._router.send_nowait(self.pid, (self.scope, peer), (_DISCOVER, self.pid))

    def _broadcast(self, message: Term) -> None:
        for peer in list(self._remote):
            self._router.send_nowait(self.pid, peer, message)

    def _receive(self, message: Any, origin: str | None) -> None:
        if self._closed:
            return
        if isinstance(message, Down):
            self._down(message)
            return
        if origin is None or not _from_own_scope(message, origin):
            log.debug("pg scope %s ignored %r from %s", self.scope, message, origin)
            return
        match message:
            case (Atom("discover"), Pid() as peer) | (Atom("discover"), Pid() as peer, _):
                self._on_discover(peer)
            case (Atom("$gen_cast"), (Atom("sync"), Pid() as peer, list() as groups)):
                self._on_sync(peer, groups)
            case (Atom("join"), Pid() as peer, group, members):
                self._on_join(peer, group, members)
            case (Atom("leave"), Pid() as peer, members, list() as groups):
                self._on_leave(peer, members, groups)
            case _:
                log.debug("pg scope %s ignored %r from %s", self.scope, message, origin)

    def _local_groups(self) -> list[tuple[Term, list[Pid]]]:
        return [(e.group, list(e.local)) for e in self._groups.values() if e.local]

    def _on_discover(self, peer: Pid) -> None:
        if peer.node == self._router.atom:
            return
        self._router.send_nowait(self.pid, peer, (_GEN_CAST, (_SYNC, self.pid,
                                                              self._local_groups())))
        if peer not in self._remote and self._room_for(peer):
            self._remote[peer] = _Peer(self._router.monitor_nowait(self._proc, peer))
            self._router.send_nowait(self.pid, peer, (_DISCOVER, self.pid))

    def _room_for(self, peer: Pid) -> bool:
        """A node runs one scope process (a restarted one briefly two): a peer that
        claims many is refused beyond ``MAX_SCOPES_PER_NODE``."""
        same = sum(1 for p in self._remote if p.node == peer.node)
        if same >= MAX_SCOPES_PER_NODE:
            log.warning("pg scope %s: %s claims too many scope processes", self.scope, peer.node)
            return False
        return True

    def _on_sync(self, peer: Pid, groups: list[Any]) -> None:
        state = self._remote.get(peer)
        if state is None:
            if not self._room_for(peer):
                return
            state = self._remote[peer] = _Peer(self._router.monitor_nowait(self._proc, peer))
        old = state.groups
        new: dict[Hashable, tuple[Term, list[Pid]]] = {}
        for item in groups:
            if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], list):
                new[term_key(item[0])] = (item[0], [p for p in item[1] if isinstance(p, Pid)])
        for key, (group, pids) in new.items():
            before = old.get(key)
            if before is None:
                self._add(group, pids)
            elif before[1] != pids:
                entry = self._groups.get(key)
                if entry is not None:
                    rest = list(entry.members)
                    for p in before[1]:
                        if p in rest:
                            rest.remove(p)
                    entry.members = pids + rest
        for key, (group, pids) in old.items():
            if key not in new:
                self._drop(group, pids, local=False)
        state.groups = new

    def _on_join(self, peer: Pid, group: Term, members: Any) -> None:
        state = self._remote.get(peer)
        if state is None:
            return
        pids = _pids(members)
        self._add(group, pids)
        key = term_key(group)
        _, have = state.groups.get(key, (group, []))
        state.groups[key] = (group, pids + have)

    def _on_leave(self, peer: Pid, members: Any, groups: list[Any]) -> None:
        state = self._remote.get(peer)
        if state is None:
            return
        pids = _pids(members)
        for group in groups:
            self._drop(group, pids, local=False)
            key = term_key(group)
            if key in state.groups:
                rest = [p for p in state.groups[key][1] if p not in pids]
                if rest:
                    state.groups[key] = (group, rest)
                else:
                    del state.groups[key]

    def _add(self, group: Term, pids: list[Pid]) -> None:
        entry = self._groups.setdefault(term_key(group), _Group(group))
        entry.members[:0] = pids
        self._notify(_JOIN, group, pids)

    def _drop(self, group: Term, pids: list[Pid], *, local: bool) -> None:
        """Remove one occurrence of each pid (OTP's ``--``); notify if the group existed."""
        key = term_key(group)
        entry = self._groups.get(key)
        if entry is None:
            return
        for pid in pids:
            if pid in entry.members:
                entry.members.remove(pid)
            if local and pid in entry.local:
                entry.local.remove(pid)
        if not entry.members and not entry.local:
            del self._groups[key]
        self._notify(_LEAVE, entry.group, pids)

    def _down(self, message: Down) -> None:
        ref, pid = message.ref, message.object
        theirs = self._owner_refs.pop(ref, None)
        if theirs is not None:
            self._scope_monitors.pop(theirs, None)
            self._group_monitors.pop(theirs, None)
            return
        if not isinstance(pid, Pid):
            return
        known = self._local.get(pid)
        if known is not None and known[0] == ref:
            del self._local[pid]
            groups = known[1]
            for group in groups:
                self._drop(group, [pid], local=True)
            self._broadcast((_LEAVE, self.pid, pid, groups))
            return
        peer = self._remote.get(pid)
        if peer is not None and peer.ref == ref:
            del self._remote[pid]
            for group, pids in peer.groups.values():
                self._drop(group, pids, local=False)


def _from_own_scope(message: Any, origin: str) -> bool:
    """Every pg message names its sender's scope process: it must be of the node it
    came from, so one peer cannot speak for another node's scope."""
    if isinstance(message, tuple) and len(message) >= 2:
        peer = message[1]
        if isinstance(peer, tuple) and len(peer) >= 2:  # {'$gen_cast', {sync, Peer, _}}
            peer = peer[1]
        return isinstance(peer, Pid) and str(peer.node) == origin
    return False


def _pids(members: Any) -> list[Pid]:
    if isinstance(members, Pid):
        return [members]
    if isinstance(members, list):
        return [p for p in members if isinstance(p, Pid)]
    return []
