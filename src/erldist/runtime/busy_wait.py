"""Busy waiting: the loop keeps polling for a moment after traffic, as the BEAM's schedulers do.

A loop with nothing to do blocks in ``epoll_wait``, and a thread woken from
there answers tens of microseconds late on a virtual machine (measured here:
about 45 µs of a 120 µs ping on a 2-core KVM guest). The BEAM avoids that
cost: a scheduler that runs out of work spins for a while before it sleeps
(``erl +sbwt``, on by default). ``BusyWait`` does the same for a node: for
``Config.busy_wait`` seconds after an established connection last read or
wrote, a callback reschedules itself every loop turn, so the loop polls
without blocking and a reply is read as soon as it lands. Between bursts, and
on an idle node, nothing spins; ``busy_wait=0`` turns it off. Handshakes do
not start it: on two cores, spinning through a cold connect took the core the
peer and EPMD needed to answer, and made the connect slower.

It costs CPU, bounded by the window: at most ``busy_wait`` seconds of one
core after each burst of traffic, and a core for as long as round trips
follow each other more closely than that (the BEAM's trade, too).
"""

from __future__ import annotations

import asyncio

__all__ = ["BusyWait"]


class BusyWait:
    """One node's spinner: ``touch`` on traffic, and the loop stays awake a while."""

    def __init__(self, loop: asyncio.AbstractEventLoop, window: float) -> None:
        self._loop = loop
        #: Seconds to keep polling after the last traffic; 0 is off. The node
        #: sets it afresh from its config as each connection comes up, so a
        #: touch (twice per round trip) reads no setting.
        self.window = window
        #: Traffic since the spinner last looked: it pushes the window's end on.
        self._fresh = False
        self._spinning = False
        self._until = 0.0
        self._closed = False
        #: Times traffic woke the spinner (an idle loop began polling).
        self.spins = 0

    def touch(self) -> None:
        """Note traffic: keep the loop polling until ``window`` after now."""
        self._fresh = True
        if not self._spinning and self.window > 0 and not self._closed:
            self._spinning = True
            self.spins += 1
            self._loop.call_soon(self._spin)

    def _spin(self) -> None:
        # A ready callback makes the loop's next poll a non-blocking one.
        now = self._loop.time()
        if self._fresh:
            self._fresh = False
            self._until = now + self.window
        if now < self._until and not self._closed:
            self._loop.call_soon(self._spin)
        else:
            self._spinning = False

    @property
    def spinning(self) -> bool:
        """Whether the loop is being kept awake now."""
        return self._spinning

    def close(self) -> None:
        """Stop for good (the node is stopping): the spinner ends at its next turn."""
        self._closed = True
