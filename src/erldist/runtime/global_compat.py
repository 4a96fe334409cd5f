"""``global`` for a visible Python node: answer OTP's sync so the cluster keeps working.

OTP's ``global_name_server`` counts every visible peer as a cluster member. On
nodeup it starts a sync handshake with the peer's ``global_name_server``, and
``global:sync()`` waits until every visible node has finished it. Its locks
(``global:set_lock``/``trans`` and every ``global:register_name``) are taken on
every known node, the one with the greatest name first. A peer that ignored
``global`` would leave ``global:sync()`` blocked forever and, once known, every
registration waiting on it.

``GlobalCompat`` makes the node a member with an empty name table that never
starts a lock of its own, speaking protocol version 8 (OTP 25 to 28). With
each visible Erlang peer:

1. Nodeup: each side casts ``{init_connect, {8, Tag}, Node, {locker, _, _,
   Locker}}``; each answers the other's with ``{init_connect_ack, Node,
   HisTag, MyTag}``.
2. The peer's locker takes the ``global`` lock on both nodes (``set_lock``
   multi-calls, granted with OTP's rules) and casts ``{lock_set, Locker, true,
   Known, OurTag}``. We answer with our own ``lock_set`` and an empty
   ``{exchange, Node, [], [], ItsTag}``.
3. Its ``exchange`` (its names) gets ``{resolved, Node, [], [], unused, [],
   ItsTag}``.
4. Its ``resolved`` ends the handshake: the peer now has us as known and
   synced, and tells the nodes it knows about us (``new_nodes``). Those nodes
   count us as synced only when we cast ``{in_sync, Node, true}`` to them, so
   we do, for every node the peer knows and every node a later ``new_nodes``
   adds, connecting first if needed as OTP does.

A second ``init_connect``, a ``cancel_connect`` or an ``init_connect_ack``
with the wrong tags restarts our half with a new tag, as OTP 28 does.

Locks matter beyond the handshake: when our name sorts last we are the
"boss" whose lock serializes every registration in the cluster. So a
resource has one requester id at a time, each holder is monitored, and a
holder's lock goes when its node goes or when a ``{'DOWN', Ref, process,
Pid, Reason}`` for its monitor reaches our pid.

Peers' words are bounded. A name a peer mentions (``resolved``,
``new_nodes``) is dialed through a ``SuggestedDialer``: never charged to the
user's distribution-atom budget, a few dials at a time, and a bounded number
of failures ever; the known set holds at most ``MAX_KNOWN`` names. Lock state
is bounded too: a peer's processes hold at most ``MAX_LOCKS_PER_PEER``
(resource, holder) pairs and all peers ``MAX_LOCKS``; a ``set_lock`` past
either is answered ``false``, OTP's "busy, try again", never stored.

Left out on purpose: we keep no names and report no known nodes, so we never
relay one Erlang node's state to another, and we ignore ``lost_connection``
(a Python node never cuts links to prevent overlapping partitions). A peer's
``remove_connection``, which asks us to drop our link to it, is obeyed: its
``global`` has already forgotten us and would otherwise wait for us forever.
"""

from __future__ import annotations

import itertools
import logging
import secrets
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from erldist.events import ClusterEvent, NodeUp
from erldist.names import NodeName
from erldist.runtime import gen
from erldist.runtime.process import Down
from erldist.runtime.router import Router
from erldist.runtime.suggested_dials import DialFunction, SuggestedDialer
from erldist.term.types import Atom, ImproperList, Pid, Reference

if TYPE_CHECKING:
    from erldist.runtime.node import Node

__all__ = [
    "GLOBAL_NAME_SERVER",
    "MAX_KNOWN",
    "MAX_LOCKS",
    "MAX_LOCKS_PER_PEER",
    "PROTOCOL_VSN",
    "GlobalCompat",
]

log = logging.getLogger("erldist.global")

GLOBAL_NAME_SERVER = Atom("global_name_server")
#: The sync protocol version we speak; OTP 25 to 28 all speak 8, older ones are ignored.
PROTOCOL_VSN = 8
#: Node names other nodes told us about that we remember as synced with us.
MAX_KNOWN = 4096
#: (resource, holder) pairs one peer's processes may hold; OTP's own use is a
#: handful (the ``global`` lock while syncing, a few ``trans`` at a time).
MAX_LOCKS_PER_PEER = 1024
#: The same over all peers together.
MAX_LOCKS = 8192

_GEN_CAST = Atom("$gen_cast")
_INIT_CONNECT = Atom("init_connect")
_INIT_CONNECT_ACK = Atom("init_connect_ack")
_CANCEL_CONNECT = Atom("cancel_connect")
_LOCKER = Atom("locker")
_LOCK_SET = Atom("lock_set")
_EXCHANGE = Atom("exchange")
_RESOLVED = Atom("resolved")
_IN_SYNC = Atom("in_sync")


@dataclass
class _Session:
    """Our half of one sync handshake: OTP's ``sync_tag_my`` and ``sync_tag_his``."""

    my_tag: int
    adopted: bool = False
    his_tag: Any = None


@dataclass
class _Lock:
    """One locked resource: its requester id and each holder with our monitor on it."""

    requester: Hashable
    holders: dict[Pid, Reference] = field(default_factory=dict)


class GlobalCompat:
    """Registers ``global_name_server`` (and a locker pid) on ``node`` and runs the sync."""

    def __init__(self, node: Node, router: Router, *, dial: DialFunction | None = None) -> None:
        """``dial`` connects to a name a peer suggested without charging the atom
        budget; by default the node's internal connect path (see ``_uncharged``)."""
        self._node = node
        self._router = router
        self._closed = False
        self._dialer = SuggestedDialer(node.node_name, dial or _uncharged(node),
                                       on_failure=self._forget_unreachable)
        # A random start keeps a restarted node's tags apart from its previous life's.
        self._tags = itertools.count(secrets.randbits(31) + 1)
        self._sessions: dict[str, _Session] = {}
        self._known: set[str] = set()
        self._known_full = False
        self._locks: dict[Hashable, _Lock] = {}
        self._held_by_peer: dict[str, int] = {}
        self._lock_refused: set[str] = set()
        self._process = router.add_service(str(GLOBAL_NAME_SERVER), self._receive)
        self.pid = self._process.pid
        # Peers put our locker in their lock ids and may send it refusals; nothing to do.
        self.locker = router.add_service(None, lambda _msg, _peer: None).pid
        node.add_listener(self._on_event)
        for peer in node.nodes():
            self._node_up(peer)

    def close(self) -> None:
        """Stop taking part: no more answers or dials (the node is going away)."""
        self._closed = True
        self._node.remove_listener(self._on_event)
        self._dialer.close()
        self._sessions.clear()
        self._known.clear()
        self._locks.clear()

    # --- node events -----------------------------------------------------------------

    def _on_event(self, event: ClusterEvent) -> None:
        if self._closed:
            return
        if isinstance(event, NodeUp):
            self._node_up(event.node)
        else:
            self._node_down(event.node)

    def _node_up(self, peer: str) -> None:
        if peer not in self._node.nodes():
            return  # hidden links take no part in global
        if peer in self._known:
            # Learned of through another node, which told it about us too.
            self._cast(peer, (_IN_SYNC, self._node.atom, True))
        else:
            self._start(peer)

    def _node_down(self, peer: str) -> None:
        self._sessions.pop(peer, None)
        self._known.discard(peer)
        self._lock_refused.discard(peer)
        if self._held_by_peer.pop(peer, 0):
            for resource, lock in list(self._locks.items()):
                for holder in [p for p in lock.holders if p.node == peer]:
                    del lock.holders[holder]
                if not lock.holders:
                    del self._locks[resource]

    # --- the handshake ---------------------------------------------------------------

    def _start(self, peer: str) -> None:
        if peer in self._known or peer in self._sessions:
            return
        tag = next(self._tags)
        self._sessions[peer] = _Session(tag)
        hello: tuple[Any, ...] = (_LOCKER, Atom("no_longer_a_pid"), [], self.locker)
        self._cast(peer, (_INIT_CONNECT, (PROTOCOL_VSN, tag), self._node.atom, hello))

    def _restart(self, peer: str) -> None:
        """OTP's ``restart_connect``: tell the peer its attempt is void, start ours over."""
        session = self._sessions.pop(peer, None)
        if session is not None and session.adopted:
            self._send(peer, (_CANCEL_CONNECT, self._node.atom, session.his_tag))
        self._start(peer)

    def _session(self, peer: str, tag: Any) -> _Session | None:
        """The session a message carrying our ``tag`` belongs to; stale tags get None."""
        session = self._sessions.get(peer)
        if session is None or not session.adopted or session.my_tag != tag:
            return None
        return session

    def _init_connect(self, peer: str, vsn: int, his_tag: Any) -> None:
        if vsn < PROTOCOL_VSN:
            log.info("ignoring global protocol %d from %s (we speak %d)", vsn, peer, PROTOCOL_VSN)
            return
        session = self._sessions.get(peer)
        if session is None:
            return  # known already (in_sync went out at nodeup) or not visible
        if session.adopted:
            # The peer started over while we held its previous attempt.
            self._send(peer, (_CANCEL_CONNECT, self._node.atom, his_tag))
            self._restart(peer)
            return
        session.adopted = True
        session.his_tag = his_tag
        self._send(peer, (_INIT_CONNECT_ACK, self._node.atom, his_tag, session.my_tag))

    def _init_connect_ack(self, peer: str, my_tag: Any, his_tag: Any) -> None:
        session = self._session(peer, my_tag)
        if session is not None and session.his_tag == his_tag:
            return
        self._send(peer, (_CANCEL_CONNECT, self._node.atom, his_tag))
        if peer in self._sessions:
            self._restart(peer)

    def _cancel_connect(self, peer: str, tag: Any) -> None:
        session = self._sessions.get(peer)
        if session is not None and session.my_tag == tag:
            self._restart(peer)

    def _lock_set(self, peer: str, locker: Pid, tag: Any) -> None:
        session = self._session(peer, tag)
        if session is None or locker.node != peer:
            return
        # Its locker holds the global lock on both of us: agree, and send our (no) names.
        self._cast(peer, (_LOCK_SET, self.locker, True, [], session.his_tag))
        self._cast(peer, (_EXCHANGE, self._node.atom, [], [], session.his_tag))

    def _exchange(self, peer: str, tag: Any) -> None:
        session = self._session(peer, tag)
        if session is not None:
            me = self._node.atom
            self._cast(peer, (_RESOLVED, me, [], [], Atom("unused"), [], session.his_tag))

    def _resolved(self, peer: str, his_known: Any, tag: Any) -> None:
        if self._session(peer, tag) is None:
            return
        del self._sessions[peer]
        self._remember(peer)
        self._learn(his_known, known_too=True)

    def _new_nodes(self, nodes: Any) -> None:
        self._learn(nodes, known_too=False)

    def _remember(self, name: str) -> bool:
        """Add ``name`` to the known set if there is room; whether it is known now."""
        if name in self._known:
            return True
        if len(self._known) >= MAX_KNOWN:
            if not self._known_full:  # once per episode, not once per name
                self._known_full = True
                log.warning("global: %d known nodes is the limit; not remembering %s "
                            "or more", MAX_KNOWN, name)
            return False
        self._known_full = False
        self._known.add(name)
        return True

    def _learn(self, entries: Any, *, known_too: bool) -> None:
        """Nodes a peer says it knows: remember each and tell it we are in sync
        (``known_too``: also those we knew already, as a sync's end does)."""
        for name in _node_names(entries):
            if name == self._node.name or (name in self._known and not known_too):
                continue
            if self._remember(name):
                self._sync_other(name)

    def _sync_other(self, name: str) -> None:
        """Cast ``in_sync`` to ``name``, connecting first (nodeup then sends it) if needed."""
        if self._node.connection(name) is not None:
            self._cast(name, (_IN_SYNC, self._node.atom, True))
        elif not self._dialer.suggest(name):
            self._known.discard(name)  # it gets a full handshake if it ever connects

    def _forget_unreachable(self, peer: NodeName, exc: Exception) -> None:
        log.info("global: cannot reach %s to tell it we are in sync: %s", peer, exc)
        self._known.discard(str(peer))

    # --- locks -----------------------------------------------------------------------

    def _set_lock(self, peer: str, resource: Any, requester: Any, holder: Pid) -> bool:
        if holder.node != peer:
            return False  # a call over this link comes from a process on its node
        key = _key(resource)
        lock = self._locks.get(key)
        if lock is not None and lock.requester != _key(requester):
            return False
        if lock is not None and holder in lock.holders:
            return True
        peer = holder.node
        held = self._held_by_peer.get(peer, 0)
        total = sum(self._held_by_peer.values())
        if held >= MAX_LOCKS_PER_PEER or total >= MAX_LOCKS:
            # "Busy": the requester retries or gives up, as with a contended lock.
            if peer not in self._lock_refused:  # one line per episode, not per request
                self._lock_refused.add(peer)
                log.warning("global: refusing locks for %s: %d held by its node, %d in all",
                            peer, held, total)
            return False
        self._lock_refused.discard(peer)
        if lock is None:
            lock = self._locks[key] = _Lock(_key(requester))
        # OTP drops a lock when its holder dies; so must we.
        lock.holders[holder] = self._router.monitor_nowait(self._process, holder)
        self._held_by_peer[peer] = held + 1
        return True

    def _release(self, holder: Pid) -> None:
        """One (resource, holder) pair of ``holder``'s node is gone."""
        left = self._held_by_peer.get(holder.node, 0) - 1
        if left > 0:
            self._held_by_peer[holder.node] = left
        else:
            self._held_by_peer.pop(holder.node, None)

    def _del_lock(self, resource: Any, requester: Any, holder: Pid) -> None:
        key = _key(resource)
        lock = self._locks.get(key)
        if lock is None or lock.requester != _key(requester):
            return
        ref = lock.holders.pop(holder, None)
        if ref is not None:
            self._release(holder)
            self._router.demonitor(self._process, ref)
        if not lock.holders:
            del self._locks[key]

    def _holder_down(self, ref: Reference) -> None:
        """A monitored holder died: its locks go, as with OTP's monitors (the router
        takes a DOWN only from the holder's own node)."""
        for key, lock in list(self._locks.items()):
            for holder, held in list(lock.holders.items()):
                if held == ref:
                    del lock.holders[holder]
                    self._release(holder)
            if not lock.holders:
                del self._locks[key]

    # --- messages --------------------------------------------------------------------

    def _receive(self, message: Any, peer: str | None) -> None:
        if self._closed:
            return
        if isinstance(message, Down):
            self._holder_down(message.ref)
            return
        if peer is None:
            return
        match message:
            case (Atom("$gen_call"), (Pid() as caller, _) as from_, request):
                reply = self._call(peer, caller, request)
                if reply is not None:
                    gen.reply(self._router, self.pid, from_, reply)
            case (Atom("$gen_cast"), request):
                self._handle_cast(peer, request)
            case (Atom("init_connect_ack"), _, my_tag, his_tag):
                self._init_connect_ack(peer, my_tag, his_tag)
            case (Atom("cancel_connect"), _, tag):
                self._cancel_connect(peer, tag)
            case (Atom("remove_connection"), _):
                if peer in self._known or peer in self._sessions:
                    log.warning("global at %s asked us to disconnect from it", peer)
                    self._node.peers.disconnect(peer, "global_remove_connection")
            case _:
                log.debug("global_name_server ignored %r from %s", message, peer)

    def _call(self, peer: str, caller: Pid, request: Any) -> Any:
        """The reply to a ``gen_server`` call, or None to leave it unanswered as OTP does."""
        match request:
            case (Atom("set_lock"), (resource, requester)):
                return self._set_lock(peer, resource, requester, caller)
            case (Atom("del_lock"), (resource, requester)):
                self._del_lock(resource, requester, caller)
                return True
            case (Atom("register"), _, _, _) | (Atom("register_ext"), _, _, _, _):
                return Atom("yes")  # we keep no names: the Erlang nodes hold them all
            case (Atom("unregister"), _):
                return Atom("ok")
        log.info("global_name_server call from %r not handled: %r", caller, request)
        return None

    def _handle_cast(self, peer: str, request: Any) -> None:
        match request:
            case (Atom("init_connect"), (int() as vsn, his_tag, *_), _, _):
                self._init_connect(peer, vsn, his_tag)
            case (Atom("lock_set"), Pid() as locker, True, _, tag):
                self._lock_set(peer, locker, tag)
            case (Atom("exchange"), _, _, _, tag):
                self._exchange(peer, tag)
            case (Atom("resolved"), _, _, his_known, _, _, tag):
                self._resolved(peer, his_known, tag)
            case (Atom("new_nodes"), _, _, _, nodes, _):
                self._new_nodes(nodes)
            case (Atom("in_sync"), _, _):
                # It has us as synced and dropped its attempt; drop ours.
                self._sessions.pop(peer, None)
            case _:
                log.debug("global_name_server ignored cast %r from %s", request, peer)

    def _send(self, peer: str, message: Any) -> None:
        self._router.send_nowait(self.pid, (str(GLOBAL_NAME_SERVER), peer), message)

    def _cast(self, peer: str, request: Any) -> None:
        self._send(peer, (_GEN_CAST, request))


def _uncharged(node: Node) -> DialFunction:
    """The default dial for suggested names: the node's peer table, minus the budget.

    ``Node.connect`` charges the user's atom budget, which a peer's words must
    never spend; ``Peers.ensure`` is the same path without that charge.
    """
    async def dial(peer: NodeName) -> None:
        await node.peers.ensure(peer, None)

    return dial


def _node_names(entries: Any) -> list[str]:
    """Node names from a known-nodes list (``Node`` or ``{Node, Vsn}``), in order, once."""
    if not isinstance(entries, list):
        return []
    names: dict[str, None] = {}
    for entry in entries:
        match entry:
            case Atom() as name:
                names[str(name)] = None
            case (Atom() as name, int()):
                names[str(name)] = None
    return list(names)


def _key(term: Any) -> Hashable:
    """A hashable stand-in for a term, equal exactly when the terms are (``=:=``).

    Lock ids are arbitrary terms (lists, maps) and ``1``, ``1.0`` and ``true``
    must stay different resources, so the type goes into the key.
    """
    if isinstance(term, list | tuple):
        return (type(term), tuple(_key(t) for t in term))
    if isinstance(term, dict):
        return (dict, frozenset((_key(k), _key(v)) for k, v in term.items()))
    if isinstance(term, ImproperList):
        return (ImproperList, tuple(_key(t) for t in term.items), _key(term.tail))
    return (type(term), term)
