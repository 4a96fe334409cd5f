"""Talk to Gleam services built on ``distribute`` 4.0.0: subjects, calls, actors.

``erldist.codec`` is the bytes of a payload; this package is what travels
around them on the BEAM, on top of erldist's processes and ``global``:

- ``Subject``: a pid, a tag and a codec; ``send`` puts ``{Tag, Payload}`` in
  the owner's mailbox, ``receive`` selects exactly those 2-tuples;
- ``call`` / ``reply``: distribute's request/response, with the reply subject
  inside the request, ``CallTargetDown`` and ``CallTimeout``;
- ``start_actor`` / ``start_pool``: Python processes registered under binary
  global names, which Gleam's ``registry.lookup`` finds and calls.

::

    from erldist import codec, gleam

    counter = gleam.lookup(node, "counter", COUNTER)        # registered by Gleam
    await gleam.send(node, counter, Increment(5))
    n = await gleam.call(node, counter, GetCount, codec.INT, timeout=5.0)
"""

from erldist.gleam.actor import Actor, DecodeErrorHook, Handler, Pool, start_actor, start_pool
from erldist.gleam.call import call, reply
from erldist.gleam.subject import (
    NIL_TAG,
    Subject,
    from_name,
    from_pid,
    lookup,
    lookup_with_timeout,
    new_subject,
    receive,
    send,
)

__all__ = [
    "NIL_TAG",
    "Actor",
    "DecodeErrorHook",
    "Handler",
    "Pool",
    "Subject",
    "call",
    "from_name",
    "from_pid",
    "lookup",
    "lookup_with_timeout",
    "new_subject",
    "receive",
    "reply",
    "send",
    "start_actor",
    "start_pool",
]
