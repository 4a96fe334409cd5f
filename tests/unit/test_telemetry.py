"""Telemetry: handlers in attach order, raising handlers contained, redacted cookies."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator

import pytest

from erldist import events, telemetry
from erldist.events import NodeUp
from erldist.names import BudgetSite, InputKind
from erldist.telemetry import (
    AtomBudgetExhausted,
    ConnectAttemptFailed,
    EpmdFallback,
    HandshakeRejected,
    TelemetryEvent,
)

Handler = Callable[[TelemetryEvent], object]


@pytest.fixture
def attached() -> Iterator[Callable[[Handler], Handler]]:
    """Attach handlers for one test; all are detached afterwards, even on failure."""
    mine: list[Handler] = []

    def attach(handler: Handler) -> Handler:
        mine.append(handler)
        telemetry.attach(handler)
        return handler

    yield attach
    for handler in mine:
        telemetry.detach(handler)


def test_handlers_run_in_attach_order(attached: Callable[[Handler], Handler]) -> None:
    calls: list[tuple[str, TelemetryEvent]] = []

    def tagged(tag: str) -> Handler:
        return lambda event: calls.append((tag, event))

    for tag in "abc":
        attached(tagged(tag))
    event = EpmdFallback("embedded EPMD started")
    telemetry.emit(event)
    assert telemetry.flush()
    assert calls == [("a", event), ("b", event), ("c", event)]


def test_a_raising_handler_is_logged_and_the_rest_still_run(
    attached: Callable[[Handler], Handler], caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[TelemetryEvent] = []

    def broken(event: TelemetryEvent) -> None:
        raise RuntimeError("handler bug")

    attached(broken)
    attached(seen.append)
    event = ConnectAttemptFailed("b@h", "refused")
    with caplog.at_level(logging.WARNING, logger="erldist.telemetry"):
        telemetry.emit(event)  # does not raise
        assert telemetry.flush()
    assert seen == [event]
    [record] = [r for r in caplog.records if r.name == "erldist.telemetry"]
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], RuntimeError)


def test_a_handler_raising_every_time_keeps_being_called(
    attached: Callable[[Handler], Handler],
) -> None:
    calls: list[TelemetryEvent] = []

    def broken(event: TelemetryEvent) -> None:
        calls.append(event)
        raise ValueError("always")

    attached(broken)
    telemetry.emit(EpmdFallback("one"))
    telemetry.emit(EpmdFallback("two"))
    assert telemetry.flush()
    assert [e for e in calls if isinstance(e, EpmdFallback)] == [
        EpmdFallback("one"),
        EpmdFallback("two"),
    ]


def test_detach_stops_calls(attached: Callable[[Handler], Handler]) -> None:
    seen: list[TelemetryEvent] = []
    handler = attached(seen.append)
    telemetry.emit(EpmdFallback("before"))
    telemetry.detach(handler)
    telemetry.emit(EpmdFallback("after"))
    assert telemetry.flush()
    assert seen == [EpmdFallback("before")]


def test_detaching_an_unknown_handler_is_a_no_op() -> None:
    telemetry.detach(lambda event: None)


def test_attaching_twice_calls_once(attached: Callable[[Handler], Handler]) -> None:
    seen: list[TelemetryEvent] = []
    attached(seen.append)
    attached(seen.append)  # an equal bound method: the same handler
    telemetry.emit(EpmdFallback("x"))
    assert telemetry.flush()
    assert seen == [EpmdFallback("x")]


def test_a_handler_attached_during_emit_sees_only_later_events(
    attached: Callable[[Handler], Handler],
) -> None:
    late: list[TelemetryEvent] = []

    def attach_another(event: TelemetryEvent) -> None:
        attached(late.append)

    attached(attach_another)
    telemetry.emit(EpmdFallback("first"))
    assert telemetry.flush()
    assert late == []
    telemetry.emit(EpmdFallback("second"))
    assert telemetry.flush()
    assert late == [EpmdFallback("second")]


def test_node_events_are_the_shared_ones() -> None:
    assert telemetry.NodeUp is events.NodeUp
    assert telemetry.NodeDown is events.NodeDown


def test_handshake_and_connect_events_carry_their_fields() -> None:
    rejected = HandshakeRejected("b@h", "BAD_COOKIE: digest mismatch")
    assert (rejected.node, rejected.reason) == ("b@h", "BAD_COOKIE: digest mismatch")
    failed = ConnectAttemptFailed("b@h", "timeout")
    assert failed == ConnectAttemptFailed("b@h", "timeout")


def test_atom_budget_event_shows_a_node_name() -> None:
    event = AtomBudgetExhausted("fresh@host", BudgetSite.CONNECT, InputKind.NODE_NAME)
    assert "'fresh@host'" in repr(event)
    assert "BudgetSite.CONNECT" in repr(event)


def test_atom_budget_event_never_shows_a_cookie() -> None:
    event = AtomBudgetExhausted("VerySecretCookie", BudgetSite.START_NODE, InputKind.COOKIE)
    assert event.attempted_input == "VerySecretCookie"  # handlers still get the input
    for text in (repr(event), str(event), f"{event}", f"{event!r}", repr([event]), repr((event,))):
        assert "VerySecretCookie" not in text
        assert "<redacted>" in text
    assert "InputKind.COOKIE" in repr(event)
    assert "BudgetSite.START_NODE" in repr(event)


def test_a_raising_handler_on_a_cookie_event_does_not_log_the_cookie(
    attached: Callable[[Handler], Handler], caplog: pytest.LogCaptureFixture
) -> None:
    def broken(event: TelemetryEvent) -> None:
        raise RuntimeError("boom")

    attached(broken)
    with caplog.at_level(logging.WARNING, logger="erldist.telemetry"):
        telemetry.emit(AtomBudgetExhausted("VerySecretCookie", BudgetSite.PING, InputKind.COOKIE))
        assert telemetry.flush()
    assert caplog.records
    assert "VerySecretCookie" not in caplog.text


def test_attach_detach_and_emit_from_many_threads() -> None:
    counts = [0] * 8
    lock = threading.Lock()
    barrier = threading.Barrier(len(counts))
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        def handler(event: TelemetryEvent) -> None:
            if event == EpmdFallback(f"w{i}"):
                with lock:
                    counts[i] += 1

        try:
            barrier.wait()
            for _ in range(200):
                telemetry.attach(handler)
                telemetry.emit(EpmdFallback(f"w{i}"))
                telemetry.detach(handler)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(counts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
        assert not t.is_alive()
    assert errors == []
    assert telemetry.flush()
    # each thread's own handler was attached for each of its own emits, exactly once
    assert counts == [200] * len(counts)


def test_a_raising_handler_is_a_warning_that_never_shows_the_event(
    attached: Callable[[Handler], Handler], caplog: pytest.LogCaptureFixture
) -> None:
    def broken(event: TelemetryEvent) -> None:
        raise RuntimeError("handler bug")

    attached(broken)
    with caplog.at_level(logging.DEBUG, logger="erldist.telemetry"):
        telemetry.emit(NodeUp("private-peer@10.9.8.7"))
        assert telemetry.flush()
    [record] = [r for r in caplog.records if r.name == "erldist.telemetry"]
    assert record.levelno == logging.WARNING
    assert record.exc_info is not None and isinstance(record.exc_info[1], RuntimeError)
    assert "broken" in record.getMessage()  # the handler is named...
    assert "private-peer" not in caplog.text  # ...the event's payload never is


def test_a_slow_handler_never_holds_up_the_emitter(
    attached: Callable[[Handler], Handler],
) -> None:
    release = threading.Event()
    seen: list[TelemetryEvent] = []

    def slow(event: TelemetryEvent) -> None:
        release.wait(30)
        seen.append(event)

    attached(slow)
    emitted_on = threading.current_thread()
    ran_on: list[threading.Thread] = []
    attached(lambda event: ran_on.append(threading.current_thread()))
    telemetry.emit(EpmdFallback("one"))  # returns while `slow` still waits
    telemetry.emit(EpmdFallback("two"))
    assert seen == []
    release.set()
    assert telemetry.flush()
    assert seen == [EpmdFallback("one"), EpmdFallback("two")]
    assert ran_on and all(t is not emitted_on for t in ran_on)


def test_a_full_queue_drops_and_counts_instead_of_blocking(
    attached: Callable[[Handler], Handler],
) -> None:
    release = threading.Event()
    entered = threading.Event()

    def stuck(event: TelemetryEvent) -> None:
        entered.set()
        release.wait(30)

    attached(stuck)
    before = telemetry.dropped()
    try:
        telemetry.emit(EpmdFallback("held"))
        assert entered.wait(30)  # the telemetry thread is busy with it
        for i in range(telemetry.MAX_QUEUED + 5):
            telemetry.emit(EpmdFallback(str(i)))  # never blocks
        assert telemetry.dropped() - before >= 5
    finally:
        release.set()
    assert telemetry.flush(30)
