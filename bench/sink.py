"""The receiving side of the one-way message scenarios, in Python.

It speaks the protocol of ``dist_bench:sink/0``: ``{start, From, N}``, then
``N`` messages ``{seq, I, <<"hello">>}``, then ``From ! {done, N}``.
"""

from __future__ import annotations

from erldist import Atom, Node, Process, ProcessExited

SEQ = Atom("seq")
START = Atom("start")
DONE = Atom("done")
HELLO = b"hello"


async def serve(node: Node, box: Process) -> None:
    """Answer every run until the process exits."""
    try:
        while True:
            tag, sender, count = await box.receive()
            assert tag == START
            for _ in range(count):
                await box.receive()
            await node.send(sender, (DONE, count))
    except ProcessExited:
        return
