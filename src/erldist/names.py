"""Node-name and cookie validation, and the distribution-atom budget.

Validation is byte-wise on the UTF-8 encoding, as the seed's FFI does it: a
multi-byte character counts as all its bytes and is refused by the charset,
so nothing that passes here can surprise a peer that thinks in bytes.

The atom budget is the seed's guardrail against a caller who loops over
millions of valid-looking names: a BEAM peer would intern each one as an
atom, and atoms are never collected. Every node name or cookie this process
has not seen before costs one unit of ``config.max_distribution_atoms``,
checked before anything is interned.
"""

from __future__ import annotations

import hashlib
import re
import threading
from dataclasses import dataclass
from enum import Enum

from erldist import config, telemetry
from erldist.errors import ErldistError

__all__ = [
    "MAX_BYTES",
    "MAX_LEARNED",
    "AtomBudget",
    "BudgetSite",
    "CookieFormatError",
    "InputKind",
    "NameFormatError",
    "NodeName",
    "atom_budget",
    "parse_node_name",
    "validate_cookie",
]

#: Longest node name or cookie, in UTF-8 bytes.
MAX_BYTES = 255
#: Most names of peers that connected in that are remembered as known.
MAX_LEARNED = 16_384

# Complements of the seed's charsets, on bytes so that str-only notions of
# "digit" or "word" (Arabic-Indic digits, accented letters) never slip in.
_NOT_ALIVE = re.compile(rb"[^a-zA-Z0-9_-]")
_NOT_HOST = re.compile(rb"[^a-zA-Z0-9._-]")
_NOT_COOKIE = _NOT_ALIVE


class NameFormatError(ErldistError, ValueError):
    """A node name is not ``<name>@<host>`` in the allowed charset and length."""


class CookieFormatError(ErldistError, ValueError):
    """A cookie is not ``[a-zA-Z0-9_-]+`` of 1..255 bytes; the message never shows it."""


@dataclass(frozen=True, slots=True)
class NodeName:
    """A validated node name; build it with ``parse_node_name``."""

    alive: str
    host: str

    @property
    def long(self) -> bool:
        """Long names (``erl -name``) have a dotted host; OTP never mixes the two kinds."""
        return "." in self.host

    def __str__(self) -> str:
        return f"{self.alive}@{self.host}"


def _utf8(value: object, what: str, error: type[ValueError]) -> bytes:
    """``value``'s UTF-8 bytes once its type and length are right."""
    if not isinstance(value, str):
        raise error(f"{what} must be a str, not {type(value).__name__}")
    if not value:
        raise error(f"{what} is empty; it needs 1..{MAX_BYTES} bytes")
    if len(value) > MAX_BYTES:  # every character is at least one byte: no need to encode
        raise error(f"{what} is too long: at least {len(value)} bytes, the limit is {MAX_BYTES}")
    # surrogatepass: a lone surrogate becomes bytes the charset refuses, not a crash.
    data = value.encode("utf-8", "surrogatepass")
    if len(data) > MAX_BYTES:
        raise error(f"{what} is too long: {len(data)} bytes in UTF-8, the limit is {MAX_BYTES}")
    return data


def parse_node_name(name: str) -> NodeName:
    """Split and validate ``<name>@<host>``; ``NameFormatError`` says which rule failed."""
    data = _utf8(name, "node name", NameFormatError)
    at_signs = data.count(b"@")
    if at_signs == 0:
        raise NameFormatError("must be <name>@<host>: there is no '@'")
    if at_signs > 1:
        raise NameFormatError(f"must be <name>@<host> with exactly one '@', found {at_signs}")
    alive, host = data.split(b"@")
    if not alive:
        raise NameFormatError("the name before '@' is empty")
    if not host:
        raise NameFormatError("the host after '@' is empty")
    for part, pattern, charset, start, end in (
        ("name before '@'", _NOT_ALIVE, "[a-zA-Z0-9_-]", 0, len(alive)),
        ("host after '@'", _NOT_HOST, "[a-zA-Z0-9._-]", len(alive) + 1, len(data)),
    ):
        bad = pattern.search(data, start, end)
        if bad is not None:
            # Every byte before the bad one is ASCII, so its byte offset is its str index.
            char = name[bad.start()]
            kind = " (not ASCII)" if ord(char) > 0x7F else ""
            raise NameFormatError(
                f"the {part} may only use {charset}: {char!r}{kind} at byte {bad.start() + 1}"
            )
    return NodeName(alive.decode("ascii"), host.decode("ascii"))


def validate_cookie(cookie: str) -> None:
    """Check the cookie's charset and length; ``CookieFormatError`` never quotes it."""
    data = _utf8(cookie, "cookie", CookieFormatError)
    bad = _NOT_COOKIE.search(data)
    if bad is not None:
        raise CookieFormatError(
            f"cookie may only use [a-zA-Z0-9_-]: byte {bad.start() + 1} of {len(data)} is not"
        )


class BudgetSite(Enum):
    """Which call asked for a fresh atom."""

    CONNECT = "connect"
    PING = "ping"
    START_NODE = "start_node"


class InputKind(Enum):
    """What the text charged against the budget is."""

    NODE_NAME = "node_name"
    COOKIE = "cookie"

    @property
    def secret(self) -> bool:
        """Inputs of this kind must never be printed or logged."""
        return self is InputKind.COOKIE


def _key(text: str) -> bytes:
    """How a text is remembered: its SHA-256, never the text.

    Required for cookies; names use the same key so that identical text is
    one entry whatever its role, just as it would be one atom in a BEAM.
    """
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


class AtomBudget:
    """The seed's distribution-atom budget: one per process, see ``atom_budget()``.

    ``charge`` holds a lock while it checks and records, so threads racing for
    the last units never over-admit; it never awaits, so asyncio tasks cannot
    interleave inside it either. The known set never grows past the budget,
    and the names learned from peers that connected in never past ``MAX_LEARNED``.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._known: set[bytes] = set()
        self._learned: set[bytes] = set()

    def charge(self, text: str, *, where: BudgetSite, kind: InputKind) -> bool:
        """Admit ``text``: free if already known, else one unit of the budget.

        When the budget is spent, records nothing, emits ``AtomBudgetExhausted``
        and returns False.
        """
        key = _key(text)
        with self._lock:
            if key in self._known or key in self._learned:
                return True
            if len(self._known) < config.get().max_distribution_atoms:
                self._known.add(key)
                return True
        # Outside the lock: a handler may itself charge (or block) without deadlocking us.
        telemetry.emit(telemetry.AtomBudgetExhausted(text, where, kind))
        return False

    def learn(self, name: str) -> None:
        """Remember the name of a peer that connected in, without charging it.

        In a BEAM the incoming connection has interned that node's atom, so
        the seed's ``connect``/``ping`` of it create nothing and cost nothing,
        even with the budget spent. Only authenticated peers get here; past
        ``MAX_LEARNED`` names a new one is not remembered (it is charged like
        any fresh name if it is later pinged).
        """
        key = _key(name)
        with self._lock:
            if key not in self._known and len(self._learned) < MAX_LEARNED:
                self._learned.add(key)

    def known(self, text: str) -> bool:
        """Whether ``text`` was admitted or learned before (and so costs nothing now)."""
        key = _key(text)
        with self._lock:
            return key in self._known or key in self._learned

    @property
    def used(self) -> int:
        """Units spent so far; ``configure`` never resets this."""
        with self._lock:
            return len(self._known)


_BUDGET = AtomBudget()


def atom_budget() -> AtomBudget:
    """The process's budget, shared by ``connect``, ``ping`` and ``start_node`` of every node."""
    return _BUDGET
