"""Turn a fuzzer's bytes into structured choices, deterministically and without atheris.

The same input always makes the same choices, so a crashing input replays
exactly in a unit test; running out of bytes yields zeros, never an error.
"""

from __future__ import annotations

from typing import Any

from erldist.term.types import Atom, ImproperList, Pid, Port, Reference


class ByteSource:
    """Reads choices from the front of ``data``."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    @property
    def remaining(self) -> int:
        return len(self._data) - self._pos

    def byte(self) -> int:
        if self._pos >= len(self._data):
            return 0
        self._pos += 1
        return self._data[self._pos - 1]

    def below(self, n: int) -> int:
        """A number in ``0..n-1`` (n at most 65536)."""
        return (self.byte() << 8 | self.byte()) % n if n > 256 else self.byte() % n

    def take(self, n: int) -> bytes:
        chunk = self._data[self._pos:self._pos + n]
        self._pos += len(chunk)
        return chunk

    def rest(self) -> bytes:
        return self.take(self.remaining)

    def integer(self) -> int:
        """Small, boundary or big integers, either sign."""
        kind = self.below(6)
        if kind == 0:
            return self.byte()
        if kind == 1:
            return [0, -1, 255, 256, 2**27 - 1, -(2**27), 2**31, 2**32, 2**64, -(2**64)][
                self.below(10)]
        size = self.below(40) if kind < 5 else self.below(600)
        value = int.from_bytes(self.take(size), "big")
        return -value if self.byte() & 1 else value

    def text(self, limit: int) -> str:
        raw = self.take(self.below(limit + 1))
        return raw.decode("utf-8", "replace")[:limit]

    def atom(self) -> Atom:
        common = ["", "ok", "true_", "net_kernel", "rex", "global_name_server",
                  "$gen_call", "$gen_cast", "is_auth", "set_lock", "new_nodes", "init_connect"]
        choice = self.below(len(common) + 1)
        return Atom(self.text(255)) if choice == len(common) else Atom(common[choice])

    def node(self) -> Atom:
        nodes = ["a@127.0.0.1", "victim@127.0.0.1", "nonode@nohost", "x@y"]
        choice = self.below(len(nodes) + 1)
        return self.atom() if choice == len(nodes) else Atom(nodes[choice])

    def pid(self) -> Pid:
        return Pid(self.node(), self.integer() & 0xFFFFFFFF, self.integer() & 0xFFFFFFFF,
                   self.integer() & 0xFFFFFFFF)

    def term(self, depth: int = 0) -> Any:
        """Any term the encoder accepts, nested at most 6 deep."""
        kind = self.below(16 if depth < 6 else 10)
        match kind:
            case 0 | 1:
                return self.atom()
            case 2:
                return self.integer()
            case 3:
                return [0.0, -0.0, 1.5, 1e308, -2.5e-308][self.below(5)]
            case 4:
                return self.take(self.below(300))
            case 5:
                return self.text(300)
            case 6:
                return self.pid()
            case 7:
                words = tuple(self.integer() & 0xFFFFFFFF for _ in range(1 + self.below(5)))
                return Reference(self.node(), self.integer() & 0xFFFFFFFF, words)
            case 8:
                return Port(self.node(), self.integer() & 0xFFFFFFFFFFFFFFFF,
                            self.integer() & 0xFFFFFFFF)
            case 9:
                return bool(self.byte() & 1)
            case 10 | 11:
                return tuple(self.term(depth + 1) for _ in range(self.below(8)))
            case 12 | 13:
                return [self.term(depth + 1) for _ in range(self.below(8))]
            case 14:
                return {self.atom(): self.term(depth + 1) for _ in range(self.below(5))}
            case _:
                items = tuple(self.term(depth + 1) for _ in range(1 + self.below(4)))
                return ImproperList(items, self.atom())
