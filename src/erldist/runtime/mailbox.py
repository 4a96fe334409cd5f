"""Pid-addressed mailboxes: how Python code receives Erlang messages.

A ``Mailbox`` is the Python stand-in for a process: it has a ``Pid`` (and
optionally a registered name) that peers can send to, and an inbox read with
``await mailbox.receive()``. The inbox is bounded so a flooding peer cannot
exhaust memory: past ``maxsize`` new messages are dropped and counted.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import TYPE_CHECKING, Any

from erldist.term.types import Atom, Pid

if TYPE_CHECKING:
    from erldist.runtime.node import Node

log = logging.getLogger("erldist.mailbox")

DEFAULT_MAXSIZE = 100_000


class MailboxClosed(Exception):
    """The mailbox was closed (or its node stopped) while waiting."""


class Mailbox:
    """An inbox with a pid. Create with ``node.mailbox()``."""

    def __init__(self, node: Node, pid: Pid, name: Atom | None, maxsize: int) -> None:
        self.node = node
        self.pid = pid
        self.name = name
        self.maxsize = maxsize
        self.dropped = 0
        self._items: deque[Any] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False

    def deliver(self, message: Any) -> None:
        """Called by the node's loop for every message addressed here."""
        if self._closed:
            return
        if len(self._items) >= self.maxsize:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 10_000 == 0:
                log.warning("mailbox %r full: %d messages dropped", self.pid, self.dropped)
            return
        self._items.append(message)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def receive(self, timeout: float | None = None) -> Any:
        """The next message; ``TimeoutError`` after ``timeout`` seconds."""
        if not self._items:
            if self._closed:
                raise MailboxClosed(f"mailbox {self.pid!r} is closed")
            loop = asyncio.get_running_loop()
            self._waiter = loop.create_future()
            try:
                await asyncio.wait_for(self._waiter, timeout)
            finally:
                self._waiter = None
            if not self._items:
                raise MailboxClosed(f"mailbox {self.pid!r} is closed")
        return self._items.popleft()

    def receive_nowait(self) -> Any:
        """The next message, or ``LookupError`` when the inbox is empty."""
        if not self._items:
            raise LookupError("mailbox is empty")
        return self._items.popleft()

    def __len__(self) -> int:
        return len(self._items)

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Stop receiving; waiting receivers get ``MailboxClosed``."""
        if self._closed:
            return
        self._closed = True
        self.node.system.forget_mailbox(self)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def __repr__(self) -> str:
        label = f" {self.name}" if self.name else ""
        return f"<Mailbox {self.pid!r}{label} {len(self._items)} queued>"
