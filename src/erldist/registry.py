"""The seed's ``distribute/registry`` on top of OTP ``global``, for Python code.

Names are UTF-8 binaries in ``global`` (what Gleam registers and looks up),
so a name registered here is the same entry Gleam's ``registry.lookup``
finds. ``register`` checks the seed's rule (1..255 bytes, each in
``[A-Za-z0-9._-]``, checked byte by byte); lookups and ``unregister`` do
not, as in the seed. Lookups read the replicated table: no round trip.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from erldist.errors import (
    LookupInvalidPollInterval,
    LookupInvalidTimeout,
    LookupNodeDown,
    LookupNotFound,
    RegistryAlreadyExists,
    RegistryInvalidArgument,
    RegistryNotFound,
    RegistryNotOwned,
)
from erldist.events import ClusterEvent, NodeDown
from erldist.runtime.node import Node
from erldist.term.types import Pid

__all__ = [
    "NAME_RULE",
    "is_registered",
    "lookup",
    "lookup_async",
    "lookup_with_timeout",
    "pool_member",
    "register",
    "unregister",
    "validate_name",
    "whereis",
]

NAME_RULE = "Name must be 1..255 bytes from charset [a-zA-Z0-9._-]"
_ALLOWED = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


def validate_name(name: str) -> str:
    """The seed's ``validate_name``: ``name`` itself, or ``RegistryInvalidArgument``."""
    raw = name.encode("utf-8")
    if not 1 <= len(raw) <= 255 or any(b not in _ALLOWED for b in raw):
        raise RegistryInvalidArgument(NAME_RULE)
    return name


def pool_member(base: str, index: int) -> str:
    """The name of a pool's member: ``base_N`` (decimal, no padding)."""
    return f"{base}_{index}"


async def register(node: Node, name: str, pid: Pid) -> None:
    """Register ``pid`` as ``name`` cluster-wide; ``RegistryAlreadyExists`` if taken."""
    validate_name(name)
    if not await node.register_name(name, pid):
        raise RegistryAlreadyExists(name)


def whereis(node: Node, name: str) -> Pid | None:
    return node.whereis_name(name)


def is_registered(node: Node, name: str) -> bool:
    return node.whereis_name(name) is not None


def lookup(node: Node, name: str) -> Pid:
    """The holder of ``name``, or ``RegistryNotFound``."""
    pid = node.whereis_name(name)
    if pid is None:
        raise RegistryNotFound(name)
    return pid


async def unregister(node: Node, name: str) -> None:
    """Unregister a name held on this node: ``RegistryNotFound`` if nobody holds it,
    ``RegistryNotOwned`` if a process of another node does."""
    pid = node.whereis_name(name)
    if pid is None:
        raise RegistryNotFound(name)
    if str(pid.node) != node.name:
        raise RegistryNotOwned(name, str(pid.node))
    await node.unregister_name(name)


async def lookup_with_timeout(node: Node, name: str, timeout_ms: int, poll_ms: int) -> Pid:
    """Check every ``poll_ms`` until ``name`` is held (the last wait shortened to
    fit); ``LookupNotFound`` after ``timeout_ms``."""
    return await lookup_async(node, name, timeout_ms, poll_ms)


async def lookup_async(
    node: Node, name: str, timeout_ms: int, poll_ms: int, *, host: str | None = None
) -> Pid:
    """``lookup_with_timeout`` that also stops early, with ``LookupNodeDown``, when
    the node ``host`` (the one expected to register the name) goes down."""
    if timeout_ms <= 0:
        raise LookupInvalidTimeout(timeout_ms)
    if poll_ms <= 0:
        raise LookupInvalidPollInterval(poll_ms)
    gone = asyncio.Event()

    def watch(event: ClusterEvent) -> None:
        if isinstance(event, NodeDown) and event.node == host:
            gone.set()

    if host is not None:
        node.add_listener(watch)
    deadline = time.monotonic() + timeout_ms / 1000
    try:
        while True:
            pid = node.whereis_name(name)
            if pid is not None:
                return pid
            if gone.is_set():
                raise LookupNodeDown(name, str(host))
            left = deadline - time.monotonic()
            if left <= 0:
                raise LookupNotFound(name, timeout_ms)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(gone.wait(), min(poll_ms / 1000, left))
    finally:
        if host is not None:
            node.remove_listener(watch)
