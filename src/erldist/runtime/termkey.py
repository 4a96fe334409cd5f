"""Hashable stand-ins for Erlang terms, for tables keyed by arbitrary terms.

``global`` names, lock ids and ``pg`` groups are any term: lists and maps
included, and ``1``, ``1.0`` and ``true`` must stay three different keys, so
a key carries each value's type along with it. A Python ``str`` is the UTF-8 binary it is sent as.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

from erldist.term.types import Atom, FrozenList, ImproperList

__all__ = ["term_key", "term_text"]


def term_key(term: Any) -> Hashable:
    """A hashable key, equal for two terms exactly when they are (``=:=``)."""
    if isinstance(term, list | FrozenList):
        return (list, tuple(term_key(t) for t in term))
    if isinstance(term, tuple):
        return (tuple, tuple(term_key(t) for t in term))
    if isinstance(term, str) and not isinstance(term, Atom):
        return (bytes, term.encode("utf-8"))  # a str travels as a UTF-8 binary
    if isinstance(term, Mapping):
        return (dict, frozenset((term_key(k), term_key(v)) for k, v in term.items()))
    if isinstance(term, ImproperList):
        return (ImproperList, tuple(term_key(t) for t in term.items), term_key(term.tail))
    return (type(term), term)


def term_text(term: Any) -> str:
    """A name or group as logs and telemetry show it: atoms and UTF-8 binaries as
    their text, anything else in its ``repr``."""
    if isinstance(term, str):
        return str(term)
    if isinstance(term, bytes):
        return term.decode("utf-8", "replace")
    return repr(term)
