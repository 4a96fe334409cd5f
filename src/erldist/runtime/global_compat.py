"""``global`` for a visible Python node: a full member, names included.

OTP's ``global_name_server`` counts every visible peer as a cluster member. On
nodeup it starts a sync handshake with the peer's ``global_name_server``, and
``global:sync()`` waits until every visible node has finished it. Its locks
(``global:set_lock``/``trans`` and every ``global:register_name``) are taken on
every known node, the one with the greatest name first. A peer that ignored
``global`` would leave ``global:sync()`` blocked forever and, once known, every
registration waiting on it.

``GlobalCompat`` makes the node a member that holds the replicated name
table (``services/global_names.py``) and takes locks for its own
registrations (``services/global_registrar.py``), speaking protocol version 8
(OTP 25 to 28). With each visible Erlang peer:

1. Nodeup: each side casts ``{init_connect, {8, Tag}, Node, {locker, _, _,
   Locker}}``; each answers the other's with ``{init_connect_ack, Node,
   HisTag, MyTag}``.
2. The peer's locker takes the ``global`` lock on both nodes (``set_lock``
   multi-calls, granted with OTP's rules) and casts ``{lock_set, Locker, true,
   Known, OurTag}``. We answer with our own ``lock_set`` and ``{exchange, Node,
   Names, [], ItsTag}`` with every name we hold. We also lock on our own after
   OTP's locker delay (200 ms when we know nobody, else 1 s plus 0.1 s per
   known node): boss, us and the peer, then our known nodes, under ``{global,
   lists:sort([OurLocker, ItsLocker])}``, the id its locker uses too, and cast
   our ``lock_set``; its answering ``lock_set`` then gets only our exchange.
   Without this a joining Python node waited for the Erlang locker alone.
3. Its ``exchange`` (its names) is compared with ours: names we lack are
   inserted, and a clash is settled by us when our name sorts first (its
   method runs on our holder's node), else by the peer. We send ``{resolved,
   Node, Decisions, [], unused, [], ItsTag}`` with what the peer must apply.
4. Its ``resolved`` ends the handshake: both sides' decisions are applied,
   the peer now has us as known and
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

Every member monitors every registered pid, so a name goes everywhere when
its process dies or its node goes down; a ``register`` call stands only while
its caller holds the ``global`` lock here, and a relayed ``new_nodes``'
decisions only while the lock they were made under is held, as in OTP.

Peers' words are bounded. A name a peer mentions (``resolved``,
``new_nodes``) is dialed through a ``SuggestedDialer``: never charged to the
user's distribution-atom budget, a few dials at a time, and a bounded number
of failures ever; the known set holds at most ``MAX_KNOWN`` names. Lock state
is bounded too: a peer's processes hold at most ``MAX_LOCKS_PER_PEER``
(resource, holder) pairs and all peers ``MAX_LOCKS``; a ``set_lock`` past
either is answered ``false``, OTP's "busy, try again", never stored; and a
lock is granted only to a process of the node the request came from.

Left out on purpose: we report no known nodes, so we never relay one Erlang
node's state to another (each Erlang node syncs with us directly), and we
ignore ``lost_connection`` (a Python node never cuts links to prevent
overlapping partitions). A peer's
``remove_connection``, which asks us to drop our link to it, is obeyed: its
``global`` has already forgotten us and would otherwise wait for us forever.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import secrets
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

from erldist import telemetry
from erldist.errors import CallError, ConnectError
from erldist.events import ClusterEvent, NodeUp
from erldist.names import NodeName, parse_node_name
from erldist.runtime import gen
from erldist.runtime.process import KILL, Down
from erldist.runtime.router import Router
from erldist.runtime.services.global_names import (
    GlobalName,
    NameTable,
    Resolution,
    resolve_locally,
    resolve_reply,
)
from erldist.runtime.services.global_registrar import GlobalRegistrar
from erldist.runtime.services.host import ServiceHost
from erldist.runtime.suggested_dials import DialFunction, SuggestedDialer
from erldist.runtime.termkey import term_key, term_text
from erldist.term.types import Atom, Pid, Reference, Term

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

_GEN_CAST = Atom("$gen_cast")
_INIT_CONNECT = Atom("init_connect")
_INIT_CONNECT_ACK = Atom("init_connect_ack")
_CANCEL_CONNECT = Atom("cancel_connect")
_LOCKER = Atom("locker")
_LOCK_SET = Atom("lock_set")
_EXCHANGE = Atom("exchange")
_RESOLVED = Atom("resolved")
_IN_SYNC = Atom("in_sync")
_INSERT = Atom("insert")
_DELETE = Atom("delete")
_GLOBAL = Atom("global")
_GLOBAL_KEY = term_key(_GLOBAL)
#: How long a clash's resolver may take on another node before the clash counts as badrpc.
RESOLVE_TIMEOUT = 10.0
#: Nodes dialed at once because names we learned are held there (a bound against a
#: peer that relays names on many made-up nodes).
MAX_HOLDER_DIALS = 32
#: Node names other nodes told us about that we remember as synced with us.
MAX_KNOWN = 4096
#: (resource, holder) pairs one peer's processes may hold; OTP's own use is a
#: handful (the ``global`` lock while syncing, a few ``trans`` at a time).
MAX_LOCKS_PER_PEER = 1024
#: The same over all peers together.
MAX_LOCKS = 8192


@dataclass
class _Session:
    """Our half of one sync handshake: OTP's ``sync_tag_my`` and ``sync_tag_his``."""

    my_tag: int
    adopted: bool = False
    his_tag: Any = None
    #: What our resolver decided we apply (OTP's ``save_ops``), once it is done.
    ops: list[Any] | None = None
    #: The peer's ``resolved`` (its decisions for us, and the nodes it knows), if in.
    his_resolved: tuple[list[Any], Any] | None = None
    #: The peer's locker (from its ``init_connect``), for our own locking attempt.
    his_locker: Pid | None = None
    #: Our ``exchange`` went out: the lock is set on both sides.
    exchanged: bool = False
    #: Our locking attempt is running, or holds these locks until the session ends.
    locking: bool = False
    our_lock: tuple[Any, list[str]] | None = None
    timer: asyncio.TimerHandle | None = None


@dataclass
class _Lock:
    """One locked resource: its requester id and each holder with our monitor on it."""

    requester: Hashable
    holders: dict[Pid, Reference] = field(default_factory=dict)


class GlobalCompat:
    """Registers ``global_name_server`` (and a locker pid) on ``node`` and runs the sync."""

    def __init__(
        self, node: ServiceHost, router: Router, *, dial: DialFunction | None = None
    ) -> None:
        """``dial`` connects to a name a peer mentioned without charging the atom
        budget; by default the node's peer table (see ``_uncharged``)."""
        self._node = node
        self._router = router
        self._closed = False
        self._dial_uncharged = dial or _uncharged(node)
        self._dialer = SuggestedDialer(node.node_name, self._dial_uncharged,
                                       on_failure=self._forget_unreachable)
        # A random start keeps a restarted node's tags apart from its previous life's.
        self._tags = itertools.count(secrets.randbits(31) + 1)
        self._sessions: dict[str, _Session] = {}
        self._known: set[str] = set()
        self._known_full = False
        self._locks: dict[Hashable, _Lock] = {}
        self._held_by_peer: dict[str, int] = {}
        self._refusing_locks: set[str] = set()
        self._global_lock_down = False
        self._process = router.add_service(str(GLOBAL_NAME_SERVER), self._receive)
        self.pid = self._process.pid
        self.names = NameTable(self._monitor_holder,
                               lambda ref: router.demonitor(self._process, ref),
                               self._name_removed)
        # Holders on nodes we are not connected to yet: their monitors wait for nodeup.
        self._awaiting: dict[str, list[tuple[Pid, Reference]]] = {}
        self._holder_dials: dict[str, asyncio.Task[None]] = {}
        self._resolving: set[asyncio.Task[None]] = set()
        # Calls this node makes to other members (locks, registrations, resolvers).
        self.calls = gen.CallClient(router)
        self.registrar = GlobalRegistrar(self)
        # Peers put our locker in their lock ids; a locker that does not (yet) know
        # our attempt refuses it with a bare ``{lock_set, Locker, false, Known}`` here.
        self.locker = router.add_service(None, self._locker_message).pid
        node.add_listener(self._on_event)
        for peer in node.nodes():
            self._node_up(peer)

    def close(self) -> None:
        """Stop taking part: no more answers or dials (the node is going away)."""
        self._closed = True
        self._node.remove_listener(self._on_event)
        self._dialer.close()
        for task in (*self._resolving, *self._holder_dials.values()):
            task.cancel()
        self._holder_dials.clear()
        self._awaiting.clear()
        self._resolving.clear()
        self.names.clear()
        self._sessions.clear()
        self._known.clear()
        self._locks.clear()

    @property
    def node_name(self) -> str:
        return self._node.name

    def local_call(self, caller: Pid, request: Any) -> Any:
        """A call from a process of this node, answered without a message."""
        return self._call(self._node.name, caller, request)

    def can_set_lock(self, lock_id: Any) -> bool:
        """OTP's ``can_set_lock``: the resource is free here or held for this requester."""
        match lock_id:
            case (resource, requester):
                lock = self._locks.get(term_key(resource))
                return lock is None or lock.requester == term_key(requester)
        return False

    def known(self) -> list[str]:
        """The members we have synced with (OTP's ``get_known``), sorted."""
        return sorted(self._known)

    def members(self) -> list[str]:
        """The known members we are connected to, sorted: the ones whose lock counts.

        A node a peer mentioned is known before we reach it (as in OTP); locking
        it would dial it from a lock attempt, and a peer's words must neither
        open connections beyond the suggested-dial bounds nor spend the atom budget.
        """
        return sorted(n for n in self._known if self._node.connection(n) is not None)

    # --- node events -----------------------------------------------------------------

    def _on_event(self, event: ClusterEvent) -> None:
        if self._closed:
            return
        if isinstance(event, NodeUp):
            self._holders_reached(event.node)
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

    def _end_session(self, peer: str) -> _Session | None:
        """The session with ``peer`` is over: stop its timer, give back our locks."""
        session = self._sessions.pop(peer, None)
        if session is not None:
            if session.timer is not None:
                session.timer.cancel()
            if session.our_lock is not None:
                lock_id, nodes = session.our_lock
                session.our_lock = None
                self._spawn(self.registrar.release(lock_id, nodes))
        return session

    def _spawn(self, coro: Any) -> None:
        task = self._node.loop.create_task(coro)
        self._resolving.add(task)
        task.add_done_callback(self._resolving.discard)

    def _node_down(self, peer: str) -> None:
        self._end_session(peer)
        self._known.discard(peer)
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
        session = self._end_session(peer)
        if session is not None and session.adopted:
            self._send(peer, (_CANCEL_CONNECT, self._node.atom, session.his_tag))
        self._start(peer)

    def _session(self, peer: str, tag: Any) -> _Session | None:
        """The session a message carrying our ``tag`` belongs to; stale tags get None."""
        session = self._sessions.get(peer)
        if session is None or not session.adopted or session.my_tag != tag:
            return None
        return session

    def _init_connect(self, peer: str, vsn: int, his_tag: Any, hello: Any = None) -> None:
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
        match hello:
            case (Atom("locker"), _, _, Pid() as his_locker) if str(his_locker.node) == peer:
                session.his_locker = his_locker
                self._schedule_lock(peer, session)

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
        if session is None or locker.node != peer or session.exchanged:
            return
        session.exchanged = True
        if session.our_lock is None:
            # Its locker holds the global lock on both of us: agree.
            self._cast(peer, (_LOCK_SET, self.locker, True, [], session.his_tag))
        # Else this answers our own lock_set: the lock is set on both sides.
        self._cast(peer, (_EXCHANGE, self._node.atom, self.names.listing(), [],
                          session.his_tag))

    def _locker_message(self, message: Any, peer: str | None) -> None:
        match message:
            case (Atom("lock_set"), Pid() as locker, False, _) if peer is not None:
                session = self._sessions.get(peer)
                if session is not None and session.adopted:
                    self._lock_refused(peer, locker, session.my_tag)

    def _lock_refused(self, peer: str, locker: Pid, tag: Any) -> None:
        """Its locker could not lock its side for our attempt: give ours back, retry."""
        session = self._session(peer, tag)
        if (session is None or str(locker.node) != peer or session.our_lock is None
                or session.exchanged):
            return
        lock_id, nodes = session.our_lock
        session.our_lock = None
        self._spawn(self.registrar.release(lock_id, nodes))
        self._schedule_lock(peer, session)

    # --- our own locker ----------------------------------------------------------------

    def _schedule_lock(self, peer: str, session: _Session) -> None:
        """Try to lock both sides ourselves after OTP's locker delay, so the sync does
        not wait for the peer's locker alone (which waits 1 s and more when it
        knows other nodes, while a node that knows none tries after 200 ms)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # driven without a loop (unit tests of the protocol): the peer locks
        known = len(self._known)
        delay = 0.2 if known == 0 else min(1.0 + 0.1 * known, 3.0)
        session.timer = loop.call_later(delay, self._try_lock, peer, session)

    def _try_lock(self, peer: str, session: _Session) -> None:
        session.timer = None
        if (self._closed or self._sessions.get(peer) is not session or session.exchanged
                or session.locking or session.our_lock is not None
                or session.his_locker is None):
            return
        if _GLOBAL_KEY in self._locks:  # someone holds global here: another round
            self._schedule_lock(peer, session)
            return
        session.locking = True
        self._spawn(self._lock_for(peer, session, session.his_locker))

    async def _lock_for(self, peer: str, session: _Session, his_locker: Pid) -> None:
        lockers = sorted([self.locker, his_locker], key=_pid_order)
        lock_id = (_GLOBAL, lockers)
        nodes = await self.registrar.lock_nodes_safely(lock_id, peer)
        session.locking = False
        if self._sessions.get(peer) is not session or session.exchanged or self._closed:
            if nodes is not None:
                await self.registrar.release(lock_id, nodes)
            return
        if nodes is None:
            self._schedule_lock(peer, session)
            return
        session.our_lock = (lock_id, nodes)
        self._cast(peer, (_LOCK_SET, self.locker, True, [], session.his_tag))

    def _exchange(self, peer: str, name_list: Any, tag: Any) -> None:
        """OTP's resolver: compare the peer's names with ours.

        ``ops`` are what we apply, ``res`` what the peer applies. A clash is
        settled here only when our node name sorts first (else the peer does
        it), by its method on the node of our holder, which may take a call:
        only then does the rest wait for a task.
        """
        session = self._session(peer, tag)
        if session is None or session.ops is not None:
            return
        ops: list[Any] = []
        clashes: list[tuple[Term, Pid, Term, GlobalName]] = []
        for entry in name_list if isinstance(name_list, list) else []:
            if not (isinstance(entry, tuple) and len(entry) == 3
                    and isinstance(entry[1], Pid)):
                continue
            name, pid, method = entry
            row = self.names.get(name)
            if row is None:
                ops.append((_INSERT, (name, pid, method)))
            elif row.pid != pid and self._node.name < peer:
                clashes.append((name, pid, method, row))
        if not clashes:
            self._resolved_ours(peer, session, ops, [])
            return
        task = self._node.loop.create_task(self._settle(peer, session, ops, clashes))
        self._resolving.add(task)
        task.add_done_callback(self._resolving.discard)

    async def _settle(self, peer: str, session: _Session, ops: list[Any],
                      clashes: list[tuple[Term, Pid, Term, GlobalName]]) -> None:
        res: list[Any] = []
        for name, pid, method, row in clashes:
            verdict = await self._resolve_it(row.method, name, pid, row.pid)
            if verdict in (pid, "badrpc"):
                ops.append((_INSERT, (name, pid, method)))
            elif verdict == row.pid:
                res.append((_INSERT, (name, row.pid, row.method)))
            else:
                ops.append((_DELETE, name))
                res.append((_DELETE, name))
            kept = repr(verdict) if isinstance(verdict, Pid) else "none"
            telemetry.emit(telemetry.GlobalNameConflict(term_text(name), kept))
        if self._sessions.get(peer) is session and not self._closed:
            self._resolved_ours(peer, session, ops, res)

    def _resolved_ours(self, peer: str, session: _Session, ops: list[Any], res: list[Any]
                       ) -> None:
        session.ops = ops
        me = self._node.atom
        self._cast(peer, (_RESOLVED, me, res, [], Atom("unused"), [], session.his_tag))
        if session.his_resolved is not None:
            self._complete(peer, session)

    async def resolve_it(self, method: Term, name: Term, pid1: Pid, pid2: Pid) -> Term:
        """``global:resolve_it/4`` run here: what an Erlang node settling a clash
        asks of the node of the holder it knows (through ``rpc:call``). The
        answer is the pid that keeps the name, ``none``, or ``{'EXIT', Why}`` for
        a method only Erlang can run.
        """
        verdict = resolve_locally(method, name, pid1, pid2)
        if verdict is None:
            log.info("global: cannot run resolver %r for %r in Python", method, name)
            return (Atom("EXIT"), (Atom("undef"), method))
        # Erlang's exit/2 and ! return at once, connecting in the background;
        # answering only once a loser's node is reached would let that node
        # meet us before it hears the verdict, and OTP 28 then drops our names
        # there (a stale init_connect_ack makes it restart_connect with us).
        self._spawn(self._carry_out(verdict))
        log.info("global: name conflict on %r resolved for %r", name, verdict.winner)
        return verdict.winner if verdict.winner is not None else Atom("none")

    async def _carry_out(self, verdict: Resolution) -> None:
        """Send a resolver's exits, then its notices, in that order."""
        for victim in verdict.kill:
            await self._router.send_exit(self.pid, victim, KILL)
        for to, message in verdict.notify:
            await self._router.send(self.pid, to, message)

    async def _resolve_it(self, method: Term, name: Term, pid1: Pid, pid2: Pid) -> Any:
        """``global:resolve_it`` run on ``pid2``'s node: ours in Python, else via rex."""
        if self._router.is_local(pid2):
            return resolve_reply(await self.resolve_it(method, name, pid1, pid2))
        request = (Atom("call"), _GLOBAL, Atom("resolve_it"), [method, name, pid1, pid2],
                   self.pid)
        try:
            reply = await self.calls.call(("rex", str(pid2.node)), request, RESOLVE_TIMEOUT)
        except CallError as exc:
            log.info("global: resolver for %r on %s failed: %s", name, pid2.node, exc)
            return "badrpc"
        return resolve_reply(reply)

    def _resolved(self, peer: str, his_res: Any, his_known: Any, tag: Any) -> None:
        session = self._session(peer, tag)
        if session is None:
            return
        session.his_resolved = (his_res if isinstance(his_res, list) else [], his_known)
        if session.ops is not None:
            self._complete(peer, session)

    def _complete(self, peer: str, session: _Session) -> None:
        """Both halves are in: apply the decisions, and sync with the nodes it knows."""
        assert session.ops is not None and session.his_resolved is not None
        his_res, his_known = session.his_resolved
        self._end_session(peer)
        self._remember(peer)
        self._do_ops([*session.ops, *his_res], None)
        self._learn(his_known, known_too=True)

    def _do_ops(self, ops: Any, lock_id: Any) -> None:
        """Apply ``insert``/``delete`` decisions (OTP's ``do_ops``).

        ``lock_id`` is the lock a relayed ``new_nodes`` was made under; its
        inserts stand only while that lock is still held here, as in OTP.
        A sync's own decisions (``lock_id`` None) belong to the lock its
        session holds.
        """
        for op in ops if isinstance(ops, list) else []:
            match op:
                case (Atom("insert"), (name, Pid() as pid, method)):
                    self.names.insert(name, pid, method)
                    if lock_id is not None and not self._lock_held_by(lock_id):
                        log.debug("global: %r from new_nodes dropped: lock %r not held here "
                                  "(locks: %r)", name, lock_id, list(self._locks.items()))
                        self.names.delete(name)
                case (Atom("delete"), name):
                    self.names.delete(name)

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
        key = term_key(resource)
        lock = self._locks.get(key)
        if lock is not None and lock.requester != term_key(requester):
            return False
        if lock is not None and holder in lock.holders:
            return True
        held = self._held_by_peer.get(peer, 0)
        total = sum(self._held_by_peer.values())
        if held >= MAX_LOCKS_PER_PEER or total >= MAX_LOCKS:
            # "Busy": the requester retries or gives up, as with a contended lock.
            if peer not in self._refusing_locks:  # one line per episode, not per request
                self._refusing_locks.add(peer)
                log.warning("global: refusing locks for %s: %d held by its node, %d in all",
                            peer, held, total)
            return False
        self._refusing_locks.discard(peer)
        if lock is None:
            lock = self._locks[key] = _Lock(term_key(requester))
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
        key = term_key(resource)
        lock = self._locks.get(key)
        if lock is None or lock.requester != term_key(requester):
            return
        ref = lock.holders.pop(holder, None)
        if ref is not None:
            self._release(holder)
            self._router.demonitor(self._process, ref)
        if not lock.holders:
            del self._locks[key]
            if key == _GLOBAL_KEY:
                self._global_lock_down = False

    def _holder_down(self, ref: Reference) -> None:
        """A monitored holder died: its locks go, as with OTP's monitors."""
        for key, lock in list(self._locks.items()):
            for holder, held in list(lock.holders.items()):
                if held == ref:
                    del lock.holders[holder]
                    self._release(holder)
            if not lock.holders:
                del self._locks[key]
                if key == _GLOBAL_KEY:
                    self._global_lock_down = True

    def _lock_held_by(self, who: Pid | Any) -> bool:
        """OTP's ``lock_still_set``: the ``global`` lock is held by ``who`` (a holder pid,
        or ``{global, LockRequesterId}`` from a relayed sync), or no lock went down."""
        lock = self._locks.get(_GLOBAL_KEY)
        if lock is None:
            return not self._global_lock_down
        if isinstance(who, Pid):
            return who in lock.holders
        match who:
            case (Atom("global"), requester):
                return lock.requester == term_key(requester)
        return False

    # --- names -----------------------------------------------------------------------

    def _insert_name(self, name: Term, pid: Pid, method: Term, caller: Pid) -> None:
        """A registrar's ``register`` call: it stands only while the caller holds the lock."""
        self.names.insert(name, pid, method)
        if not self._lock_held_by(caller):
            self.names.delete(name)

    def _monitor_holder(self, pid: Pid) -> Reference:
        """Monitor a name's holder. One on a node we are not connected to (a name
        learned through a third node) is watched once we connect, as OTP's
        ``monitor`` connects first; a node we cannot reach takes its names away.
        """
        node = str(pid.node)
        if self._router.is_local(pid) or self._node.connection(node) is not None:
            return self._router.monitor_nowait(self._process, pid)
        ref = self._router.make_ref()
        self._awaiting.setdefault(node, []).append((pid, ref))
        if node not in self._holder_dials:
            if len(self._holder_dials) >= MAX_HOLDER_DIALS:
                log.warning("global: too many unreached nodes hold names; dropping %s's", node)
                self._node.loop.call_soon(self._holders_unreachable, node)
            else:
                task = self._node.loop.create_task(self._reach_holders(node))
                self._holder_dials[node] = task
        return ref

    async def _reach_holders(self, node: str) -> None:
        try:
            await self._dial_uncharged(parse_node_name(node))
        except (TimeoutError, ConnectError) as exc:
            log.info("global: cannot reach %s, which holds names: %s", node, exc)
            self._holders_unreachable(node)
        finally:
            self._holder_dials.pop(node, None)

    def _holders_unreachable(self, node: str) -> None:
        for _pid, ref in self._awaiting.pop(node, []):
            self.names.down(ref)

    def _holders_reached(self, node: str) -> None:
        """Nodeup: make the monitors that waited for it (for names still held)."""
        for pid, ref in self._awaiting.pop(node, []):
            if self.names.has_ref(ref):
                self._router.monitor_nowait(self._process, pid, ref)

    def _name_removed(self, row: GlobalName) -> None:
        log.debug("global name %r of %r removed", row.name, row.pid)

    def where(self, name: Term) -> Pid | None:
        """OTP's ``where/1``: the table's pid, None for a local pid that is gone."""
        row = self.names.get(name)
        if row is None:
            return None
        if self._router.is_local(row.pid) and self._router.lookup(row.pid) is None:
            return None
        return row.pid

    # --- messages --------------------------------------------------------------------

    def _receive(self, message: Any, peer: str | None) -> None:
        if self._closed:
            return
        if isinstance(message, Down):
            if self.names.down(message.ref) is None and isinstance(message.object, Pid):
                self.names.down_pid(message.object)
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
            case (Atom("whereis"), name, from_):
                gen.reply(self._router, self.pid, from_, self.where(name) or Atom("undefined"))
            case (Atom("remove_connection"), _):
                if peer in self._known or peer in self._sessions:
                    log.warning("global at %s asked us to disconnect from it", peer)
                    self._node.peers.disconnect(peer, "global_remove_connection")
            case _:
                log.debug("global_name_server ignored %r from %s", message, peer)

    def _call(self, peer: str, caller: Pid, request: Any) -> Any:
        """The reply to a ``gen_server`` call from ``peer``, or None to leave it
        unanswered as OTP does."""
        match request:
            case (Atom("set_lock"), (resource, requester)):
                return self._set_lock(peer, resource, requester, caller)
            case (Atom("del_lock"), (resource, requester)):
                self._del_lock(resource, requester, caller)
                return True
            case (Atom("register"), name, Pid() as pid, method):
                self._insert_name(name, pid, method, caller)
                return Atom("yes")
            case (Atom("register_ext"), name, Pid() as pid, method, _):
                self._insert_name(name, pid, method, caller)
                return Atom("yes")
            case (Atom("unregister"), name):
                self.names.delete(name)
                return Atom("ok")
            case Atom("get_known"):
                return [(Atom(n), PROTOCOL_VSN) for n in self.known()]
            case Atom("get_protocol_version"):
                return PROTOCOL_VSN
        log.info("global_name_server call from %r not handled: %r", caller, request)
        return None

    def _handle_cast(self, peer: str, request: Any) -> None:
        match request:
            case (Atom("init_connect"), (int() as vsn, his_tag, *_), _, hello):
                self._init_connect(peer, vsn, his_tag, hello)
            case (Atom("lock_set"), Pid() as locker, True, _, tag):
                self._lock_set(peer, locker, tag)
            case (Atom("lock_set"), Pid() as locker, False, _, tag):
                self._lock_refused(peer, locker, tag)
            case (Atom("exchange"), _, name_list, _, tag):
                self._exchange(peer, name_list, tag)
            case (Atom("resolved"), _, his_res, his_known, _, _, tag):
                self._resolved(peer, his_res, his_known, tag)
            case (Atom("new_nodes"), _, ops, _, nodes, extra):
                self._new_nodes(nodes)
                self._do_ops(ops, _extra_info(extra, Atom("lock")))
            case (Atom("in_sync"), _, _):
                # It has us as synced and dropped its attempt; drop ours. (It joins
                # our known nodes through the new_nodes or resolved that told it of
                # us, which also makes us answer with our own in_sync.)
                self._end_session(peer)
            case _:
                log.debug("global_name_server ignored cast %r from %s", request, peer)

    def _send(self, peer: str, message: Any) -> None:
        self._router.send_nowait(self.pid, (str(GLOBAL_NAME_SERVER), peer), message)

    def _cast(self, peer: str, request: Any) -> None:
        self._send(peer, (_GEN_CAST, request))


def _uncharged(node: ServiceHost) -> DialFunction:
    """The default dial for names a peer mentioned: the node's peer table, minus the
    budget (``Node.connect`` charges the user's atom budget; ``Peers.ensure`` is the
    same path without that charge)."""
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


def _pid_order(pid: Pid) -> tuple[int, int, str, int]:
    """Erlang's term order of pids (serial, number, node, creation), so our lock id
    ``{global, lists:sort([Locker1, Locker2])}`` equals the one the peer makes."""
    return (pid.serial, pid.id, str(pid.node), pid.creation)


def _extra_info(extra: Any, tag: Atom) -> Any:
    """A value from ``new_nodes``' ExtraInfo list (``[{vsn, V}, {lock, L}]``), or None."""
    for item in extra if isinstance(extra, list) else []:
        if isinstance(item, tuple) and len(item) == 2 and item[0] == tag:
            return item[1]
    return None
