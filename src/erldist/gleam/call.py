"""distribute's ``global.call`` and ``global.reply``: request/response over subjects.

distribute adds no envelope: the request is whatever the target's codec makes
of ``make_request(reply_subject)``, and the protocol carries the reply subject
inside it (``codec.SUBJECT``). The answer is an ordinary subject send,
``ReplyPid ! {ReplyRef, Response}``.

A call from Python follows the card's sequence (§6.4): monitor the target,
make ``{subject, Caller, Ref}``, send ``{TargetTag, Request}``, then wait
for ``{Ref, Response}`` or the monitor's DOWN, whichever comes first. The
caller is a process made for this one call, as Gleam's ``call_isolated``
does with its proxy: when the call returns, its monitor is dropped (with any
DOWN already queued) and the process exits, so a reply that comes late goes
to a pid that no longer exists and is dropped, instead of piling up in a
mailbox as it does in distribute.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from erldist import config, telemetry
from erldist.codec.core import Codec
from erldist.codec.payload import DecodeSite, PayloadSite, decode_payload, encode_payload
from erldist.codec.subject import WireSubject
from erldist.errors import (
    CallDecodeFailed,
    CallEncodeFailed,
    CallPayloadTooLarge,
    CallTargetDown,
    CallTimeout,
    CodecDecodeError,
    CodecEncodeError,
    ConnectError,
    PayloadTooLarge,
)
from erldist.gleam.subject import Host, Sender, Subject, encode_for, router_of
from erldist.runtime.process import NOCONNECTION, Down
from erldist.term.types import Reference

__all__ = ["call", "reply"]

log = logging.getLogger("erldist.gleam")

Req = TypeVar("Req")
Resp = TypeVar("Resp")


async def call(
    host: Host,
    target: Subject[Req],
    make_request: Callable[[WireSubject], Req],
    response: Codec[Resp],
    timeout: float | None = None,
) -> Resp:
    """Send ``make_request(reply_to)`` to ``target`` and return the decoded response.

    ``timeout`` (seconds, default ``config.default_call_timeout``, negative
    is 0) is one deadline for the whole call. Raises ``CallTimeout`` when no
    answer comes in time; ``CallTargetDown`` when the target's monitor fires
    first, whatever the reason (``noproc`` for a pid already dead,
    ``noconnection`` for a node gone); ``CallEncodeFailed`` or
    ``CallPayloadTooLarge`` before anything is sent; ``CallPayloadTooLarge``
    or ``CallDecodeFailed`` for a bad response. Each emits distribute's
    telemetry. Nothing is left behind in any case.
    """
    budget = config.get().default_call_timeout if timeout is None else max(timeout, 0.0)
    router = router_of(host)
    caller = router.new_process()
    reply_tag = router.make_ref()
    mref: Reference | None = None
    try:
        async with asyncio.timeout(budget):
            mref = await caller.monitor(target.owner)
            request = make_request(WireSubject(caller.pid, reply_tag))
            try:
                bits = encode_payload(target.codec, request, where=PayloadSite.CALL_REQUEST)
            except PayloadTooLarge as exc:
                raise CallPayloadTooLarge(exc.size) from exc
            except CodecEncodeError as exc:
                raise CallEncodeFailed(exc) from exc
            try:
                await caller.send(target.owner, (target.tag, bits))
            except ConnectError:
                raise CallTargetDown(target.owner, NOCONNECTION) from None

            def answer(message: Any) -> bool:
                if type(message) is Down:
                    return message.ref == mref
                return (type(message) is tuple and len(message) == 2
                        and type(message[0]) is Reference and message[0] == reply_tag)

            got = await caller.receive(match=answer)
        if type(got) is Down:
            raise CallTargetDown(target.owner, got.reason)
    except TimeoutError:
        telemetry.emit(telemetry.CallTimedOut(budget, repr(target.owner)))
        raise CallTimeout(target.owner, budget) from None
    except CallTargetDown as exc:
        telemetry.emit(telemetry.CallTargetDown(repr(target.owner), repr(exc.reason)))
        raise
    finally:
        if mref is not None:
            caller.demonitor(mref, flush=True)
        caller.exit()
    try:
        return decode_payload(response, got[1], where=DecodeSite.CALL_REPLY)
    except PayloadTooLarge as exc:
        raise CallPayloadTooLarge(exc.size) from exc
    except CodecDecodeError as exc:
        raise CallDecodeFailed(exc) from exc


async def reply(sender: Sender, to: WireSubject, value: Resp, codec: Codec[Resp]) -> None:
    """distribute's ``global.reply``: ``to.owner ! {to.tag, codec.encode(value)}``.

    ``to`` is the reply subject as the request carried it (its owner may be a
    ``call_isolated`` proxy; the tag is kept exactly as received). Raises
    ``SendEncodeFailed`` or ``PayloadTooLarge`` (telemetry at ``payload_on_reply``)
    before anything is sent. A caller whose node cannot be reached is not an
    error: the reply is dropped, as Erlang's send drops it, and the caller,
    which monitors the target, sees ``TargetDown`` or its timeout. So an actor
    never dies of answering a caller that went away.
    """
    message = (to.tag, encode_for(codec, value, PayloadSite.REPLY))
    try:
        await sender.send(to.owner, message)
    except ConnectError as exc:
        log.debug("reply to %r dropped: %s", to.owner, exc)
