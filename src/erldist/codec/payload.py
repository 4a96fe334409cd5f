"""The payload-size cap and the telemetry of distribute's send and receive paths.

distribute checks ``max_payload_size_bytes`` on both sides of every message
(the sender after encoding, the receiver before decoding) and reports a
refused or undecodable payload to telemetry, naming where it happened.
``encode_payload`` and ``decode_payload`` are those checks in one place, for
every send, call, reply and receive path to share.
"""

from __future__ import annotations

from enum import Enum
from typing import TypeVar

from erldist import config, telemetry
from erldist.codec.core import Codec, as_bytes
from erldist.errors import CodecDecodeError, PayloadTooLarge

__all__ = ["DecodeSite", "PayloadSite", "decode_payload", "encode_payload"]

T = TypeVar("T")


class PayloadSite(Enum):
    """Where a payload was refused for its size (distribute's ``payload_on_*``)."""

    SEND = "payload_on_send"
    CALL_REQUEST = "payload_on_call_request"
    CALL_RESPONSE = "payload_on_call_response"
    REPLY = "payload_on_reply"
    RECEIVE = "payload_on_receive"
    ACTOR_INBOUND = "payload_on_actor_inbound"


class DecodeSite(Enum):
    """Where a payload failed to decode (distribute's ``decode_on_*``)."""

    RECEIVE = "decode_on_receive"
    CALL_REPLY = "decode_on_call_reply"
    ACTOR_INBOUND = "decode_on_actor_inbound"

    @property
    def payload_site(self) -> PayloadSite:
        """The size check that runs at the same place, before decoding."""
        return _INBOUND_SIZE_SITE[self]


_INBOUND_SIZE_SITE = {
    DecodeSite.RECEIVE: PayloadSite.RECEIVE,
    DecodeSite.CALL_REPLY: PayloadSite.CALL_RESPONSE,
    DecodeSite.ACTOR_INBOUND: PayloadSite.ACTOR_INBOUND,
}


def _check_size(size: int, where: PayloadSite) -> None:
    cap = config.get().max_payload_size_bytes
    if size > cap:
        telemetry.emit(telemetry.PayloadRejected(size, cap, where))
        raise PayloadTooLarge(size)


def encode_payload(codec: Codec[T], value: T, *, where: PayloadSite) -> bytes:
    """``codec.encode(value)``, refused when larger than ``max_payload_size_bytes``.

    A payload of exactly the cap is accepted. A refusal emits
    ``PayloadRejected(size, cap, where)`` and raises ``PayloadTooLarge``;
    an encode error is raised as it is, with no telemetry (as distribute does).
    """
    data = codec.encode(value)
    _check_size(len(data), where)
    return data


def decode_payload(codec: Codec[T], payload: object, *, where: DecodeSite) -> T:
    """Decode a received payload strictly, after checking its size.

    ``payload`` is the second element of the ``{Tag, Payload}`` message as it
    arrived; anything but a binary raises ``InvalidBinary``. Too large: emits
    ``PayloadRejected`` (at ``where.payload_site``) and raises ``PayloadTooLarge``
    without decoding. Any decode error emits ``DecodeFailed(str(error), where)``
    and is raised.
    """
    try:
        data = as_bytes(payload)
    except CodecDecodeError as exc:
        telemetry.emit(telemetry.DecodeFailed(exc.to_string(), where))
        raise
    _check_size(len(data), where.payload_site)
    try:
        return codec.decode(data)
    except CodecDecodeError as exc:
        telemetry.emit(telemetry.DecodeFailed(exc.to_string(), where))
        raise
