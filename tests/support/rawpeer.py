"""A hand-driven peer: completes a real handshake, then sends whatever frames a test wants.

Hostile-peer tests need an attacker that knows the cookie (so the handshake
succeeds) but then sends frames no well-behaved node would. This drives our
own sans-I/O ``Initiator`` over a plain socket and hands back the stream.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from erldist.protocol import flags
from erldist.protocol.framing import NO_PAYLOAD, DistEncoder
from erldist.protocol.handshake import Established, Initiator
from erldist.term.types import Atom, Pid


@dataclass
class RawPeer:
    name: str
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    encoder: DistEncoder
    creation: int = 1

    def pid(self, n: int = 1) -> Pid:
        return Pid(Atom(self.name), n, 0, self.creation)

    def frame(self, control: Any, payload: Any = NO_PAYLOAD) -> bytes:
        return self.encoder.frame(control, payload)

    async def send(self, *frames: bytes) -> None:
        self.writer.write(b"".join(frames))
        await self.writer.drain()

    def close(self) -> None:
        self.writer.close()


async def connect(name: str, cookie: str, host: str, port: int, peer: str) -> RawPeer:
    """Handshake as ``name`` with the node ``peer`` listening on ``port``."""
    reader, writer = await asyncio.open_connection(host, port)
    machine = Initiator(local_name=name, peer_name=peer, cookie=cookie.encode(),
                        flags=flags.OUR_FLAGS | flags.DFlag.PUBLISHED, creation=1, version=6)
    while True:
        out = machine.data_to_send()
        if out:
            writer.write(out)
            await writer.drain()
        event = machine.next_event()
        if isinstance(event, Established):
            writer.write(machine.data_to_send())
            return RawPeer(name, reader, writer, DistEncoder(event.result.flags))
        if event is not None:
            continue
        if machine.error is not None:
            writer.close()
            raise machine.error
        data = await asyncio.wait_for(reader.read(65536), 10)
        if not data:
            writer.close()
            raise ConnectionError("the node closed the connection during the handshake")
        machine.receive_data(data)
