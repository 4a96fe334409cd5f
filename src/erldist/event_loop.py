"""The event loop erldist makes for itself: uvloop's when it is installed.

``pip install erldist[uvloop]`` adds uvloop (libuv's loop, written in C),
which takes the loop's own share of every round trip (a turn, a timer, a
socket read) off the Python interpreter. The sync facade (``erldist.cluster``)
and the ``erldist`` command run their loop through here; asyncio programs
choose their own loop (``uvloop.run(main())`` or ``asyncio.run(main())``).
``ERLDIST_LOOP=asyncio`` forces asyncio's own loop even when uvloop is there.
"""

from __future__ import annotations

import asyncio
import importlib
import os
from collections.abc import Coroutine
from typing import Any, Final, TypeVar

__all__ = ["LOOP_ENV", "loop_name", "new_event_loop", "run"]

LOOP_ENV: Final = "ERLDIST_LOOP"
T = TypeVar("T")


def _uvloop() -> Any:
    if os.environ.get(LOOP_ENV, "").strip().lower() == "asyncio":
        return None
    try:
        return importlib.import_module("uvloop")
    except ImportError:
        return None


def loop_name() -> str:
    """``"uvloop"`` or ``"asyncio"``: the loop ``new_event_loop`` makes."""
    return "asyncio" if _uvloop() is None else "uvloop"


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A new loop: uvloop's when installed (and not turned off), else asyncio's."""
    uvloop = _uvloop()
    loop: asyncio.AbstractEventLoop = (
        asyncio.new_event_loop() if uvloop is None else uvloop.new_event_loop()
    )
    return loop


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)`` on the loop ``new_event_loop`` makes."""
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        return runner.run(main)
