"""Registrations made from Python, with ``global``'s locking.

OTP runs every ``register_name``, ``re_register_name`` and
``unregister_name`` of a node one at a time in its registrar, as
``trans_all_known``: take the lock ``{global, Registrar}`` on the greatest
known node (the "boss") first, then on every known node; if the set of
known nodes changed meanwhile, give the locks back and try again after a
random, growing sleep. Holding the lock everywhere, check the replicated
table, then call ``register``/``unregister`` on every member (each member
keeps a name only while the caller holds its lock), then release the others'
locks and the boss's last. Two nodes racing for one name thus queue at the
boss, and exactly one of them finds the name free.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from erldist.errors import CallError
from erldist.term.types import Atom, Pid, Term

if TYPE_CHECKING:
    from erldist.runtime.global_compat import GlobalCompat

__all__ = ["CALL_TIMEOUT", "GlobalRegistrar"]

T = TypeVar("T")

#: How long one member may take to answer a lock or registration call before it
#: counts as gone (OTP waits forever; a Python caller deserves a deadline).
CALL_TIMEOUT = 30.0
_SERVER = "global_name_server"


class GlobalRegistrar:
    """The Python side of ``global:register_name`` and friends, on one node."""

    def __init__(self, server: GlobalCompat) -> None:
        self._server = server
        self._turn = asyncio.Lock()
        self._rand = random.Random()

    @property
    def _me(self) -> Pid:
        return self._server.calls.process.pid

    async def register(self, name: Term, pid: Pid, method: Term) -> bool:
        """``global:register_name/3``: True (yes) or False (no: taken, or pid has a name)."""
        async def fun(nodes: list[str]) -> bool:
            if self._server.where(name) is not None or self._server.names.names_of(pid):
                return False
            await self._multi_call(nodes, (Atom("register"), name, pid, method))
            return True
        return await self._trans_all_known(fun)

    async def re_register(self, name: Term, pid: Pid, method: Term) -> None:
        """``global:re_register_name/3``: the name is ``pid``'s, whoever held it."""
        async def fun(nodes: list[str]) -> None:
            await self._multi_call(nodes, (Atom("register"), name, pid, method))
        await self._trans_all_known(fun)

    async def unregister(self, name: Term) -> None:
        """``global:unregister_name/1``."""
        if self._server.where(name) is None:
            return
        async def fun(nodes: list[str]) -> None:
            await self._multi_call(nodes, (Atom("unregister"), name))
        await self._trans_all_known(fun)

    # --- the sync's lock (OTP's locker) ------------------------------------------------

    async def lock_nodes_safely(self, lock_id: Any, peer: str) -> list[str] | None:
        """OTP's ``lock_nodes_safely``: lock the boss of our side, then us and
        ``peer``, then every node we know; the nodes locked, or None (nothing held)."""
        me = self._server.node_name
        first = [max([me, *self._server.members()])]
        if first != [me] and not self._server.can_set_lock(lock_id):
            return None
        if not await self._set_lock_on(lock_id, first):
            return None
        second = [n for n in (me, peer) if n not in first]
        if not await self._set_lock_on(lock_id, second):
            await self._multi_call(first, (Atom("del_lock"), lock_id))
            return None
        rest = [n for n in self._server.members() if n not in first and n != peer]
        if not await self._set_lock_on(lock_id, rest):
            await self._multi_call([*first, *second], (Atom("del_lock"), lock_id))
            return None
        return [*first, *second, *rest]

    async def release(self, lock_id: Any, nodes: list[str]) -> None:
        """Give back a lock taken with ``lock_nodes_safely``."""
        await self._multi_call(nodes, (Atom("del_lock"), lock_id))

    # --- trans_all_known -----------------------------------------------------------------

    async def _trans_all_known(self, fun: Callable[[list[str]], Awaitable[T]]) -> T:
        async with self._turn:
            lock_id = (Atom("global"), self._me)
            nodes = await self._set_lock_known(lock_id)
            try:
                return await fun(nodes)
            finally:
                boss = max(nodes)
                await self._multi_call([n for n in nodes if n != boss],
                                       (Atom("del_lock"), lock_id))
                await self._multi_call([boss], (Atom("del_lock"), lock_id))

    async def _set_lock_known(self, lock_id: Any) -> list[str]:
        times = 0
        while True:
            known = self._server.members()
            nodes = [self._server.node_name, *known]
            boss = max(nodes)
            if await self._set_lock_on(lock_id, [boss]):
                if await self._set_lock_on(lock_id, nodes) and not (
                        set(self._server.members()) - set(known)):
                    return nodes
                await self._multi_call([boss], (Atom("del_lock"), lock_id))
            await self._random_sleep(times)
            times += 1

    async def _set_lock_on(self, lock_id: Any, nodes: list[str]) -> bool:
        if (len(nodes) > 1 and self._server.node_name in nodes
                and not self._server.can_set_lock(lock_id)):
            return False
        replies = await self._multi_call(nodes, (Atom("set_lock"), lock_id))
        if all(r is True for r in replies.values()):
            return True
        if len(replies) > 1:
            granted = [n for n, r in replies.items() if r is True]
            await self._multi_call(granted, (Atom("del_lock"), lock_id))
        return False

    async def _random_sleep(self, times: int) -> None:
        """OTP's ``random_sleep``: up to 2^times/8 s, capped at 8 s."""
        top_ms = 8000 if times > 5 else (1 << times) * 1000 // 8
        await asyncio.sleep(self._rand.randint(1, max(1, top_ms)) / 1000)

    async def _multi_call(self, nodes: list[str], request: Term) -> dict[str, Any]:
        """``gen_server:multi_call`` to ``global_name_server`` on ``nodes``: the
        replies of those that answered (the others count as bad nodes)."""
        async def one(node: str) -> tuple[str, Any]:
            if node == self._server.node_name:
                return node, self._server.local_call(self._me, request)
            try:
                return node, await self._server.calls.call((_SERVER, node), request,
                                                           CALL_TIMEOUT)
            except CallError:
                return node, _BAD
        results = await asyncio.gather(*(one(n) for n in nodes))
        return {node: reply for node, reply in results if reply is not _BAD}


_BAD = object()
