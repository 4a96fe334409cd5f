"""How a node gets (and keeps) an EPMD registration.

A node should start without anyone having run ``epmd`` first, and should stay
findable when the EPMD it registered with goes away. So:

1. register with the EPMD on the configured port (explicit, ``ERL_EPMD_PORT``,
   4369) if one answers;
2. if none does, start the embedded ``EpmdServer`` on that port (loopback
   only) and register with it; if another process binds the port first,
   register with that one instead;
3. watch the registration: when its connection drops (say, the process that
   owned the embedded EPMD exited), re-register with whatever EPMD answers
   then, starting an embedded one if none does, retrying with capped
   exponential backoff until it works or the node closes.

The node keeps the creation of its first registration for its whole life: its
pids and refs carry it, and a new EPMD's creation would orphan them.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from typing import Final

from erldist.errors import EpmdError
from erldist.runtime.epmd_client import DEFAULT_TIMEOUT, Registration, register, resolve_epmd_port
from erldist.runtime.epmd_server import EpmdServer

__all__ = ["NodeRegistration", "register_node"]

log = logging.getLogger("erldist.epmd_policy")

_LOOPBACK: Final = "127.0.0.1"
_FIRST_BACKOFF: Final = 0.05

EventCallback = Callable[[str], object]


class NodeRegistration:
    """A node's EPMD registration, kept alive and re-established for the node's lifetime.

    ``on_event`` is called with a one-line description whenever the policy
    starts an embedded EPMD, loses the registration, or restores it; the node
    turns these into log lines and telemetry. ``registered`` and
    ``restorations`` tell the current state without waiting for a callback.
    """

    def __init__(
        self,
        alive: str,
        port: int,
        *,
        epmd_port: int,
        embedded: bool,
        hidden: bool,
        timeout: float,
        max_backoff: float,
        on_event: EventCallback | None,
    ) -> None:
        self.alive = alive
        self.port = port
        self.epmd_port = epmd_port
        self.creation = 0
        self.restorations = 0
        self._embedded = embedded
        self._hidden = hidden
        self._timeout = timeout
        self._max_backoff = max_backoff
        self._on_event = on_event
        self._registration: Registration | None = None
        self._server: EpmdServer | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._closing = False

    # --- state ------------------------------------------------------------------------

    @property
    def registered(self) -> bool:
        """True while an EPMD holds our name."""
        reg = self._registration
        return reg is not None and not reg.closed.is_set()

    @property
    def epmd_creation(self) -> int:
        """The creation the current EPMD gave (``creation`` stays the first one)."""
        return self._registration.creation if self._registration is not None else 0

    @property
    def server(self) -> EpmdServer | None:
        """The embedded EPMD this registration started and owns, if any."""
        return self._server

    # --- acquiring --------------------------------------------------------------------

    async def _establish(self) -> None:
        """First registration: errors propagate to ``register_node``'s caller."""
        self._registration = await self._acquire()
        self.creation = self._registration.creation
        self._watcher = asyncio.get_running_loop().create_task(self._watch())

    async def _acquire(self) -> Registration:
        """Register with the EPMD on our port, starting the embedded one if none answers."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout
        pause = 0.01
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise EpmdError("timeout", f"no EPMD to register with on port {self.epmd_port} "
                                           f"within {self._timeout:g} s")
            try:
                return await register(self.alive, self.port, host=_LOOPBACK,
                                      epmd_port=self.epmd_port, hidden=self._hidden,
                                      timeout=remaining)
            except EpmdError as exc:
                if exc.kind != "unavailable" or not self._embedded:
                    raise
            try:
                server = await EpmdServer.start(_LOOPBACK, self.epmd_port)
            except EpmdError as exc:
                if exc.kind != "address_in_use":
                    raise
                # Someone bound the port between our attempt and now: use theirs
                # (the pause covers a listener that has bound but not yet listens).
                log.debug("port %d was taken meanwhile; registering with its owner",
                          self.epmd_port)
                await asyncio.sleep(pause)
                pause = min(pause * 2, 0.5)
                continue
            self._emit(logging.INFO, f"no EPMD answered on port {self.epmd_port}; "
                                     f"started the embedded EPMD on {_LOOPBACK}:{server.port}")
            try:
                registration = await register(
                    self.alive, self.port, host=_LOOPBACK, epmd_port=server.port,
                    hidden=self._hidden, timeout=max(0.1, deadline - loop.time()),
                )
            except BaseException:
                await server.close()
                raise
            # We cannot already own one: a serving server of ours holds the port.
            self._server = server
            return registration

    # --- watching ---------------------------------------------------------------------

    async def _watch(self) -> None:
        """Wait for the registration to drop, then re-register until it holds again."""
        while True:
            registration = self._registration
            assert registration is not None
            await registration.closed.wait()
            if self._closing:
                return
            self._emit(logging.WARNING, f"EPMD on port {self.epmd_port} dropped the "
                                        f"registration of {self.alive!r}; re-registering")
            backoff = _FIRST_BACKOFF
            while True:
                try:
                    self._registration = await self._acquire()
                    break
                except EpmdError as exc:
                    delay = backoff * random.uniform(0.5, 1.0)
                    log.warning("re-registering %r failed (%s); retrying in %.2f s",
                                self.alive, exc, delay)
                    await asyncio.sleep(delay)
                    backoff = min(backoff * 2, self._max_backoff)
            self.restorations += 1
            where = "the embedded EPMD" if self._server is not None else "EPMD"
            self._emit(logging.INFO, f"{self.alive!r} registered again with {where} on port "
                                     f"{self.epmd_port} (keeping creation {self.creation})")

    def _emit(self, level: int, detail: str) -> None:
        log.log(level, "%s", detail)
        if self._on_event is None:
            return
        try:
            self._on_event(detail)
        except Exception:
            log.exception("EPMD event callback failed")

    # --- closing ----------------------------------------------------------------------

    async def close(self) -> None:
        """Unregister, stop watching, and stop the embedded EPMD if we own it."""
        self._closing = True
        if self._watcher is not None:
            self._watcher.cancel()
            await asyncio.wait({self._watcher})
        if self._registration is not None:
            await self._registration.close()
        if self._server is not None:
            await self._server.close()
            self._server = None

    def __repr__(self) -> str:
        state = "registered" if self.registered else "closed" if self._closing else "lost"
        own = " (owns embedded EPMD)" if self._server is not None else ""
        return (f"<NodeRegistration {self.alive} port={self.port} epmd={self.epmd_port} "
                f"creation={self.creation} {state}{own}>")


async def register_node(
    alive: str,
    port: int,
    *,
    epmd_port: int | None = None,
    embedded: bool = True,
    hidden: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
    max_backoff: float = 5.0,
    on_event: EventCallback | None = None,
) -> NodeRegistration:
    """Register ``alive`` (listening on ``port``) and keep it registered.

    With ``embedded`` false, no EPMD is ever started: an absent one is an
    ``EpmdError("unavailable")`` at start, and a lost one is retried until
    one comes back. ``timeout`` bounds the first registration and each later
    attempt; ``max_backoff`` caps the pause between failed attempts.
    """
    registration = NodeRegistration(
        alive, port, epmd_port=resolve_epmd_port(epmd_port), embedded=embedded, hidden=hidden,
        timeout=timeout, max_backoff=max_backoff, on_event=on_event,
    )
    try:
        await registration._establish()
    except BaseException:
        await registration.close()
        raise
    return registration
