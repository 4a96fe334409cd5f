"""Subjects, calls and actors of ``erldist.gleam`` without sockets, on a bare router.

The interop tests (``tests/interop/test_gleam_interop.py``) run the same
protocol against a Gleam stand-in on real OTP 25 and 28 nodes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from erldist import config, gleam, telemetry
from erldist.codec import BOOL, INT, STRING, DecodeSite, PayloadSite, WireSubject
from erldist.errors import (
    ActorInitFailed,
    CallDecodeFailed,
    CallEncodeFailed,
    CallPayloadTooLarge,
    CallTargetDown,
    CallTimeout,
    CodecDecodeError,
    DecodeTimeout,
    InvalidArgument,
    InvalidBinary,
    PayloadTooLarge,
    RegistryInvalidArgument,
    SendEncodeFailed,
    ValueTooLarge,
)
from erldist.gleam import Subject
from erldist.protocol.signals import MessageSignal
from erldist.registry import NAME_RULE
from erldist.runtime.router import Router
from erldist.term import Atom, Pid, Reference, encode
from tests.support.aio import wait_for
from tests.support.gleam_service import (
    SERVICE,
    Counter,
    Crash,
    GetCount,
    Hold,
    Increment,
    Release,
    counter,
)
from tests.support.gleam_vectors import PID, REF
from tests.unit.test_router import PEER, make

NOPROC = Atom("noproc")


@pytest.fixture
def events() -> Iterator[list[Any]]:
    """Telemetry events emitted during the test (read after ``telemetry.flush()``)."""
    seen: list[Any] = []
    telemetry.attach(seen.append)
    try:
        yield seen
    finally:
        telemetry.detach(seen.append)
        config.reset()


def flushed(seen: list[Any], kind: type) -> list[Any]:
    assert telemetry.flush()
    return [e for e in seen if isinstance(e, kind)]


# --- subjects ----------------------------------------------------------------------------


def test_the_messages_are_the_cards_terms_byte_for_byte() -> None:
    # §6.2: the whole-term ETF of each message, made from the subject kinds of §6.1.
    assert encode(gleam.from_name(PID, "counter", INT).message(42)) == bytes.fromhex(
        "8368026d00000007636f756e7465726d00000008000000000000002a")
    assert encode(gleam.from_name(PID, "worker_3", STRING).message("hi")) == bytes.fromhex(
        "8368026d00000008776f726b65725f336d00000006000000026869")
    assert encode(gleam.from_pid(PID, BOOL).message(True)) == bytes.fromhex(
        "83680277036e696c6d0000000101")
    assert encode(Subject(PID, REF, INT).message(8)) == bytes.fromhex(
        "8368025a0003770f676c65616d403132372e302e302e310000000300001a2b00003c4d00005e6f"
        "6d000000080000000000000008")


def test_a_subject_selects_exactly_the_two_tuples_with_its_tag() -> None:
    named = gleam.from_name(PID, "counter", INT)
    assert named.tag == b"counter" and Subject(PID, "counter", INT) == named
    assert named.wire == WireSubject(PID, b"counter")
    assert named.matches((b"counter", b"x"))
    for other in [(b"counter", b"x", b"y"), (b"counter",), [b"counter", b"x"], b"counter",
                  ("counter", b"x"), (Atom("counter"), b"x"), (b"other", b"x")]:
        assert not named.matches(other), other
    one = Subject(PID, 1, INT)
    assert one.matches((1, b"")) and not one.matches((True, b"")) and not one.matches((1.0, b""))
    nil = gleam.from_pid(PID, INT)
    assert nil.matches((Atom("nil"), b"")) and not nil.matches((None, b""))
    with pytest.raises(InvalidArgument):
        Subject("not a pid", b"t", INT)  # type: ignore[arg-type]


async def test_send_checks_the_cap_and_the_codec_before_anything_leaves(
    events: list[Any],
) -> None:
    router, _ = make()
    inbox = router.new_process()
    sender = router.new_process()
    subject = gleam.new_subject(router, inbox.pid, STRING)
    assert type(subject.tag) is Reference
    config.configure(max_payload_size_bytes=9)
    await gleam.send(sender, subject, "hello")  # 9 bytes: exactly the cap is accepted
    with pytest.raises(PayloadTooLarge) as too_large:
        await gleam.send(sender, subject, "hello!")
    assert too_large.value.size == 10
    with pytest.raises(SendEncodeFailed) as refused:
        await gleam.send(sender, gleam.from_pid(inbox.pid, INT), 2**63)
    assert isinstance(refused.value.error, ValueTooLarge)
    await asyncio.sleep(0)
    assert len(inbox.mailbox) == 1
    rejected = flushed(events, telemetry.PayloadRejected)
    assert rejected == [telemetry.PayloadRejected(10, 9, PayloadSite.SEND)]


async def test_receive_takes_only_its_tag_and_leaves_the_rest(events: list[Any]) -> None:
    router, _ = make()
    inbox = router.new_process()
    subject = gleam.new_subject(router, inbox.pid, INT)
    other = gleam.new_subject(router, inbox.pid, INT)
    for message in [(subject.tag, 1, 2), "garbage", other.message(7), subject.message(42)]:
        await router.send(inbox.pid, inbox.pid, message)
    assert await gleam.receive(inbox, subject, 1.0) == 42
    assert await gleam.receive(inbox, other, 1.0) == 7
    assert len(inbox.mailbox) == 2  # the 3-tuple and the atom stay
    with pytest.raises(DecodeTimeout):
        await gleam.receive(inbox, subject, 0.05)
    with pytest.raises(TimeoutError):
        await gleam.receive(inbox, subject, -1)
    # A bad payload is consumed, reported and raised.
    await router.send(inbox.pid, inbox.pid, (subject.tag, b"\x00\x01"))
    await router.send(inbox.pid, inbox.pid, (subject.tag, 42))
    config.configure(max_payload_size_bytes=8)
    await router.send(inbox.pid, inbox.pid, (subject.tag, bytes(9)))
    with pytest.raises(InvalidBinary, match="int64"):
        await gleam.receive(inbox, subject, 1.0)
    with pytest.raises(InvalidBinary, match="not a binary"):
        await gleam.receive(inbox, subject, 1.0)
    with pytest.raises(PayloadTooLarge):
        await gleam.receive(inbox, subject, 1.0)
    assert len(inbox.mailbox) == 2
    with pytest.raises(InvalidArgument):
        await gleam.receive(router.new_process(), subject, 0)
    assert [e.where for e in flushed(events, telemetry.DecodeFailed)] == [DecodeSite.RECEIVE] * 2
    assert flushed(events, telemetry.PayloadRejected) == [
        telemetry.PayloadRejected(9, 8, PayloadSite.RECEIVE)]


# --- actors and calls --------------------------------------------------------------------


async def start_counter(router: Router, **kwargs: Any) -> gleam.Actor[Any, Counter]:
    return await gleam.start_actor(router, SERVICE, counter, Counter(), **kwargs)


async def test_an_actor_serves_sends_and_calls_and_shrugs_off_garbage(
    events: list[Any],
) -> None:
    router, _ = make()
    errors: list[CodecDecodeError] = []
    actor = await start_counter(router, on_decode_error=errors.append)
    assert type(actor.subject.tag) is Reference  # unnamed: a local receiver
    await gleam.send(router.new_process(), actor.subject, Increment(5))
    tag = actor.subject.tag
    for junk in ["atom", (tag,), (tag, 1, 2), (b"other", b""), (Atom("nil"), b"\x00"),
                 (tag, 42), (tag, b"\x09"), (tag, SERVICE.encode(Increment(1)) + b"\x00")]:
        await router.send(actor.pid, actor.pid, junk)
    assert await gleam.call(router, actor.subject, GetCount, INT, timeout=5) == 5
    assert actor.garbage == 5
    assert actor.decode_errors == 3 and len(errors) == 3
    assert isinstance(errors[0], InvalidBinary) and "not a binary" in str(errors[0])
    assert actor.alive
    failed = flushed(events, telemetry.DecodeFailed)
    assert [e.where for e in failed] == [DecodeSite.ACTOR_INBOUND] * 3
    assert [e.message for e in failed] == [
        "Invalid binary: payload is not a binary: got int",
        "Tag mismatch: expected 'one of Increment, GetCount, Hold, Release, Crash', got '9'",
        "Invalid binary: trailing bytes (1) at top level",
    ]
    await actor.stop()
    assert not actor.alive


async def test_a_failing_hook_is_logged_and_the_actor_keeps_running() -> None:
    router, _ = make()

    def hook(_: CodecDecodeError) -> None:
        raise RuntimeError("hook bug")

    actor = await start_counter(router, on_decode_error=hook)
    await router.send(actor.pid, actor.pid, (actor.subject.tag, b""))
    assert await gleam.call(router, actor.subject, GetCount, INT, timeout=5) == 0
    assert actor.decode_errors == 1


async def test_a_call_to_a_dead_or_dying_target_is_target_down(events: list[Any]) -> None:
    router, _ = make()
    actor = await start_counter(router)
    before = len(router.processes())
    with pytest.raises(CallTargetDown) as crashed:
        await gleam.call(router, actor.subject, Crash, INT, timeout=5)
    reason = crashed.value.reason
    assert isinstance(reason, tuple)
    assert reason[:2] == (Atom("python"), Atom("tests.support.gleam_service.Crashed"))
    with pytest.raises(CallTargetDown) as gone:
        await gleam.call(router, actor.subject, GetCount, INT, timeout=5)
    assert gone.value.reason == NOPROC
    assert len(router.processes()) == before - 1  # the actor went, no caller stayed
    downs = flushed(events, telemetry.CallTargetDown)
    assert [d.reason for d in downs][1:] == [repr(NOPROC)]


async def test_a_call_with_no_reply_times_out_and_leaves_nothing(events: list[Any]) -> None:
    router, _ = make()
    actor = await start_counter(router)
    before = {p.pid for p in router.processes()}
    with pytest.raises(CallTimeout) as timed_out:
        await gleam.call(router, actor.subject, Hold, INT, timeout=0.1)
    assert timed_out.value.timeout == 0.1
    # The caller is gone with its monitor; the late reply goes nowhere.
    assert {p.pid for p in router.processes()} == before
    assert not actor.process.state.watchers
    await gleam.send(router.new_process(), actor.subject, Release.RELEASE)
    await asyncio.sleep(0.05)
    assert not actor.state.held
    assert all(len(p.mailbox) == 0 for p in router.processes())
    assert flushed(events, telemetry.CallTimedOut) == [
        telemetry.CallTimedOut(0.1, repr(actor.pid))]
    with pytest.raises(CallTimeout):
        await gleam.call(router, actor.subject, Hold, INT, timeout=-3)


async def test_call_errors_on_either_side_of_the_wire(events: list[Any]) -> None:
    router, _ = make()
    actor = await start_counter(router)
    with pytest.raises(CallDecodeFailed) as bad_reply:
        await gleam.call(router, actor.subject, GetCount, STRING, timeout=5)
    assert isinstance(bad_reply.value.error, CodecDecodeError)
    with pytest.raises(CallEncodeFailed):
        await gleam.call(router, actor.subject, lambda _: Increment(2**64), INT, timeout=5)
    config.configure(max_payload_size_bytes=8)
    with pytest.raises(CallPayloadTooLarge):
        await gleam.call(router, actor.subject, GetCount, INT, timeout=5)
    assert [e.where for e in flushed(events, telemetry.PayloadRejected)] == [
        PayloadSite.CALL_REQUEST]
    assert [e.where for e in flushed(events, telemetry.DecodeFailed)] == [DecodeSite.CALL_REPLY]


async def test_a_reply_goes_to_the_subject_as_it_came() -> None:
    router, _ = make()
    inbox = router.new_process()
    tag = Reference(Atom("gleam@127.0.0.1"), 7, (1, 2, 3, 4, 5))
    await gleam.reply(router.new_process(), WireSubject(inbox.pid, tag), 8, INT)
    assert await inbox.receive(1.0) == (tag, bytes.fromhex("0000000000000008"))
    with pytest.raises(SendEncodeFailed):
        await gleam.reply(inbox, WireSubject(inbox.pid, tag), 2**63, INT)


async def test_an_actor_survives_answering_a_caller_it_cannot_reach() -> None:
    router, net = make()
    actor = await start_counter(router)
    gone = WireSubject(Pid(Atom("gone@127.0.0.1"), 1, 0, 1), REF)
    await gleam.send(router.new_process(), actor.subject, GetCount(gone))
    far = WireSubject(Pid(Atom(PEER), 5, 0, 1), REF)
    await gleam.send(router.new_process(), actor.subject, GetCount(far))
    await wait_for(lambda: bool(net.links[PEER].sent), 5.0, "the reply on the wire")
    (signal,) = net.links[PEER].sent
    assert isinstance(signal, MessageSignal)
    assert (signal.sender, signal.to, signal.message) == (
        actor.pid, far.owner, (REF, bytes(8)))
    assert actor.alive


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.binary(max_size=48), st.integers(), st.text(max_size=8),
                          st.none(), st.tuples(st.integers())), max_size=20))
def test_no_payload_under_its_tag_ends_an_actor(payloads: list[object]) -> None:
    # 04 is Crash, the one request meant to end it.
    assume(not any(isinstance(p, bytes) and p[:1] == b"\x04" for p in payloads))

    async def scenario() -> None:
        router, _ = make()
        actor = await start_counter(router)
        for payload in payloads:
            await router.send(actor.pid, actor.pid, (actor.subject.tag, payload))
        count = await gleam.call(router, actor.subject, GetCount, INT, timeout=5)
        assert isinstance(count, int)
        assert actor.alive
        assert actor.garbage == 0

    asyncio.run(scenario())


async def test_actor_names_follow_the_registry_rule(events: list[Any]) -> None:
    router, _ = make()
    with pytest.raises(RegistryInvalidArgument):
        await start_counter(router, name="has space")
    assert flushed(events, telemetry.ActorRegistrationFailed) == [
        telemetry.ActorRegistrationFailed("has space", NAME_RULE)]
    with pytest.raises(InvalidArgument, match="needs a Node"):
        await start_counter(router, name="counter")
    unregistered = await start_counter(router, name="counter", register=False)
    assert unregistered.subject.tag == b"counter" and unregistered.name is None
    assert await gleam.call(router, unregistered.subject, GetCount, INT, timeout=5) == 0


async def test_a_pool_needs_a_member() -> None:
    with pytest.raises(ActorInitFailed, match="pool size must be >= 1, got 0"):
        await gleam.start_pool(None, "base", 0, SERVICE, counter,  # type: ignore[arg-type]
                               state=lambda _: Counter())
