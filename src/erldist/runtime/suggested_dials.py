"""Dialing node names a peer mentioned, within fixed bounds.

OTP's ``global`` (``new_nodes``, ``resolved``) and similar gossip make a node
connect to names another node told it about. Those names are the peer's
words, not the user's: they must not spend the user's distribution-atom
budget (``names.atom_budget``), and one message listing thousands of names
must not open thousands of sockets or tasks. A ``SuggestedDialer`` therefore

* dials through an injected ``dial`` callable that does not charge the budget;
* keeps at most ``max_in_flight`` dials running and ``max_waiting`` queued,
  dropping (and logging once) what does not fit;
* tries a name at most once at a time, never tries again a name that failed,
  and stops taking suggestions once ``max_failed`` distinct names have failed:
  a peer that lists unreachable names can waste that many attempts, no more.

Names that connect are not remembered here (the node's connection table
already holds them), so a long-lived cluster keeps working as nodes come and go.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Final

from erldist.errors import InvalidArgument
from erldist.names import NameFormatError, NodeName, parse_node_name

__all__ = [
    "DEFAULT_MAX_FAILED",
    "DEFAULT_MAX_IN_FLIGHT",
    "DEFAULT_MAX_WAITING",
    "DialFunction",
    "SuggestedDialer",
]

log = logging.getLogger("erldist.suggested_dials")

DEFAULT_MAX_IN_FLIGHT: Final = 8
DEFAULT_MAX_WAITING: Final = 256
DEFAULT_MAX_FAILED: Final = 1024

#: Connects to a validated peer name without charging the atom budget;
#: raises (any ``Exception``) when the peer cannot be reached.
DialFunction = Callable[[NodeName], Awaitable[object]]


class SuggestedDialer:
    """Runs the dials peers suggest for one local node, never more than the bounds allow."""

    def __init__(
        self,
        local: NodeName,
        dial: DialFunction,
        *,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        max_waiting: int = DEFAULT_MAX_WAITING,
        max_failed: int = DEFAULT_MAX_FAILED,
        on_failure: Callable[[NodeName, Exception], object] | None = None,
    ) -> None:
        if min(max_in_flight, max_waiting, max_failed) < 1:
            raise InvalidArgument("every SuggestedDialer bound must be at least 1")
        self._local = local
        self._dial = dial
        self._on_failure = on_failure
        self.max_in_flight = max_in_flight
        self.max_waiting = max_waiting
        self.max_failed = max_failed
        self._waiting: deque[NodeName] = deque()
        self._busy: set[str] = set()  # waiting or in flight
        self._failed: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._warned: set[str] = set()
        self._closed = False
        #: Dials started over this dialer's life (for tests and diagnostics).
        self.started = 0

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    @property
    def failed(self) -> int:
        return len(self._failed)

    def suggest(self, name: str) -> bool:
        """Queue a dial to ``name``: True when one is queued or running now, False
        when the name is invalid, our own, of the other name kind, failed before,
        or over a bound."""
        if self._closed:
            return False
        try:
            peer = parse_node_name(name)
        except NameFormatError:
            return False
        key = str(peer)
        if key in self._busy:
            return True
        if peer == self._local or peer.long != self._local.long or key in self._failed:
            return False
        if len(self._failed) >= self.max_failed:
            self._warn_once("failed", f"{self.max_failed} suggested names failed to connect; "
                                      "ignoring further suggestions")
            return False
        if len(self._waiting) >= self.max_waiting:
            self._warn_once("waiting", f"{self.max_waiting} suggested dials already wait; "
                                       "dropping the rest")
            return False
        self._busy.add(key)
        self._waiting.append(peer)
        self._pump()
        return True

    def _warn_once(self, which: str, text: str) -> None:
        if which not in self._warned:
            self._warned.add(which)
            log.warning("peer-suggested connections: %s", text)

    def _pump(self) -> None:
        loop = asyncio.get_running_loop()
        while self._waiting and len(self._tasks) < self.max_in_flight:
            task = loop.create_task(self._run(self._waiting.popleft()))
            self.started += 1
            self._tasks.add(task)
            task.add_done_callback(self._finished)

    async def _run(self, peer: NodeName) -> None:
        key = str(peer)
        try:
            await self._dial(peer)
        except Exception as exc:
            if len(self._failed) < self.max_failed:
                self._failed.add(key)
            log.debug("suggested dial to %s failed: %s", key, exc)
            if self._on_failure is not None:
                self._on_failure(peer, exc)
        finally:
            self._busy.discard(key)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not self._closed:
            self._pump()

    def close(self) -> None:
        """Cancel every queued and running dial; later suggestions are refused."""
        self._closed = True
        self._waiting.clear()
        self._busy.clear()
        for task in list(self._tasks):
            task.cancel()
