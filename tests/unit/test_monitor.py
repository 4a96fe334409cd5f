"""Subject inboxes and the ClusterMonitor fan-out.

Nothing here sleeps and hopes: every wait is on a condition with a generous
deadline, and "delivery has finished" is observed through a Subject
subscribed last, because each event reaches subscribers in subscription order.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import queue
import threading
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

import pytest

from erldist import cluster
from erldist.events import ClusterEvent, NodeDown, NodeUp
from erldist.monitor import ClusterMonitor, Subject, SubjectClosed

T = TypeVar("T")
DEADLINE = 10.0


def run_on_own_loop(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """``asyncio.run`` on a fresh thread, so a coroutine that blocks its loop fails
    the test at the deadline instead of hanging it."""
    box: list[T] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            box.append(asyncio.run(make()))
        except BaseException as exc:  # re-raised below
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(DEADLINE * 2)
    assert not thread.is_alive(), "the event loop was blocked"
    if errors:
        raise errors[0]
    return box[0]


def drain(subject: Subject[T], count: int) -> list[T]:
    return [subject.receive(timeout=DEADLINE) for _ in range(count)]


def start_threads(*threads: threading.Thread) -> None:
    for t in threads:
        t.start()


def join_threads(*threads: threading.Thread) -> None:
    for t in threads:
        t.join(DEADLINE)
        assert not t.is_alive()


# --- Subject ---------------------------------------------------------------------------


def test_subject_is_fifo_and_counts_its_items() -> None:
    subject: Subject[int] = Subject()
    assert len(subject) == 0
    for i in range(5):
        assert subject.put(i)
    assert len(subject) == 5
    assert drain(subject, 5) == [0, 1, 2, 3, 4]
    assert len(subject) == 0


def test_get_times_out() -> None:
    subject: Subject[int] = Subject()
    with pytest.raises(TimeoutError):
        subject.receive(timeout=0.05)
    with pytest.raises(TimeoutError):
        subject.receive(timeout=0)


def test_get_nowait() -> None:
    subject: Subject[str] = Subject()
    with pytest.raises(queue.Empty):
        subject.get_nowait()
    subject.put("x")
    assert subject.get_nowait() == "x"


def test_a_closed_subject_refuses_puts_and_drains_then_raises() -> None:
    subject: Subject[int] = Subject()
    subject.put(1)
    subject.put(2)
    subject.close()
    subject.close()  # idempotent
    assert subject.closed
    assert not subject.put(3)
    assert subject.receive(timeout=DEADLINE) == 1
    assert subject.get_nowait() == 2
    with pytest.raises(SubjectClosed):
        subject.receive(timeout=DEADLINE)
    with pytest.raises(SubjectClosed):
        subject.get_nowait()


def test_a_bounded_subject_refuses_when_full() -> None:
    subject: Subject[int] = Subject(maxsize=2)
    assert subject.put(1) and subject.put(2)
    assert not subject.put(3)
    assert subject.get_nowait() == 1
    assert subject.put(4)
    assert drain(subject, 2) == [2, 4]


def test_negative_maxsize_is_refused() -> None:
    with pytest.raises(ValueError, match="maxsize"):
        Subject(maxsize=-1)


def test_a_blocking_get_is_woken_by_a_put_from_another_thread() -> None:
    subject: Subject[str] = Subject()
    got: list[str] = []
    getter = threading.Thread(target=lambda: got.append(subject.receive(timeout=DEADLINE)))
    getter.start()
    subject.put("hello")
    join_threads(getter)
    assert got == ["hello"]


def test_a_blocking_get_is_woken_by_close() -> None:
    subject: Subject[str] = Subject()
    raised: list[BaseException] = []

    def get() -> None:
        try:
            subject.receive(timeout=DEADLINE)
        except BaseException as exc:  # inspected below
            raised.append(exc)

    getter = threading.Thread(target=get)
    getter.start()
    subject.close()
    join_threads(getter)
    assert len(raised) == 1 and isinstance(raised[0], SubjectClosed)


def test_many_blocking_getters_share_the_items_without_loss() -> None:
    subject: Subject[int] = Subject()
    got: list[int] = []
    lock = threading.Lock()

    def consume() -> None:
        while True:
            try:
                item = subject.receive(timeout=DEADLINE)
            except SubjectClosed:
                return
            with lock:
                got.append(item)

    consumers = [threading.Thread(target=consume) for _ in range(4)]
    start_threads(*consumers)
    for i in range(2000):
        subject.put(i)
    subject.close()
    join_threads(*consumers)
    assert sorted(got) == list(range(2000))


def test_receive_gets_items_put_from_threads_in_each_threads_order() -> None:
    subject: Subject[tuple[int, int]] = Subject()
    producers, per_producer = 3, 300

    def produce(p: int) -> None:
        for i in range(per_producer):
            subject.put((p, i))

    async def main() -> list[tuple[int, int]]:
        threads = [threading.Thread(target=produce, args=(p,)) for p in range(producers)]
        start_threads(*threads)
        got = [await subject.areceive(timeout=DEADLINE) for _ in range(producers * per_producer)]
        await asyncio.to_thread(join_threads, *threads)
        return got

    got = run_on_own_loop(main)
    for p in range(producers):
        assert [i for q, i in got if q == p] == list(range(per_producer))


def test_receive_does_not_block_its_loop() -> None:
    subject: Subject[str] = Subject()

    async def main() -> str:
        waiting = asyncio.create_task(subject.areceive(timeout=DEADLINE))
        await asyncio.sleep(0)  # let it start waiting
        # This coroutine only resumes if the waiting receive left the loop free.
        await asyncio.to_thread(subject.put, "late")
        return await waiting

    assert run_on_own_loop(main) == "late"


def test_receive_times_out_and_loses_nothing() -> None:
    subject: Subject[str] = Subject()

    async def main() -> str:
        with pytest.raises(TimeoutError):
            await subject.areceive(timeout=0.05)
        with pytest.raises(TimeoutError):
            await subject.areceive(timeout=0)
        subject.put("kept")
        return await subject.areceive(timeout=0)

    assert run_on_own_loop(main) == "kept"


def test_a_cancelled_receive_loses_no_item() -> None:
    subject: Subject[str] = Subject()

    async def main() -> None:
        waiting = asyncio.create_task(subject.areceive())
        await asyncio.sleep(0)  # it is now waiting
        subject.put("mine")  # schedules the wake-up ...
        waiting.cancel()  # ... but the receive is cancelled before it runs
        with pytest.raises(asyncio.CancelledError):
            await waiting

    run_on_own_loop(main)
    assert subject.get_nowait() == "mine"


def test_receive_is_woken_by_close() -> None:
    subject: Subject[str] = Subject()

    async def main() -> None:
        waiting = asyncio.create_task(subject.areceive(timeout=DEADLINE))
        await asyncio.sleep(0)
        await asyncio.to_thread(subject.close)
        with pytest.raises(SubjectClosed):
            await waiting

    run_on_own_loop(main)


def test_receivers_on_two_loops_share_the_items_without_loss() -> None:
    subject: Subject[int] = Subject()
    count = 1000

    async def consume() -> list[int]:
        got: list[int] = []
        while True:
            try:
                got.append(await subject.areceive(timeout=DEADLINE))
            except SubjectClosed:
                return got

    async def two_tasks() -> list[int]:
        first, second = await asyncio.gather(consume(), consume())
        return first + second

    results: list[list[int]] = []
    lock = threading.Lock()

    def loop_thread() -> None:
        got = asyncio.run(two_tasks())
        with lock:
            results.append(got)

    loops = [threading.Thread(target=loop_thread) for _ in range(2)]
    start_threads(*loops)
    for i in range(count):
        subject.put(i)
    subject.close()
    join_threads(*loops)
    assert sorted(results[0] + results[1]) == list(range(count))


# --- ClusterMonitor --------------------------------------------------------------------


@pytest.fixture
def monitor() -> Iterator[ClusterMonitor]:
    mon = ClusterMonitor()
    yield mon
    mon.close()
    assert mon.join(DEADLINE)


def events(n: int, prefix: str = "n") -> list[ClusterEvent]:
    return [
        NodeUp(f"{prefix}{i}@h") if i % 2 == 0 else NodeDown(f"{prefix}{i}@h", "x")
        for i in range(n)
    ]


def test_a_subject_gets_events_in_order(monitor: ClusterMonitor) -> None:
    inbox: Subject[ClusterEvent] = Subject()
    monitor.subscribe(inbox)
    sent = events(50)
    for event in sent:
        monitor.publish(event)
    assert drain(inbox, 50) == sent


def test_events_before_subscribing_are_not_delivered(monitor: ClusterMonitor) -> None:
    gate = threading.Event()
    monitor.subscribe(lambda event: gate.wait(DEADLINE))  # holds the dispatcher
    monitor.publish(NodeUp("early@h"))
    inbox: Subject[ClusterEvent] = Subject()
    monitor.subscribe(inbox)
    monitor.publish(NodeUp("late@h"))
    gate.set()
    assert inbox.receive(timeout=DEADLINE) == NodeUp("late@h")


def test_duplicate_subject_subscriptions_are_ignored(monitor: ClusterMonitor) -> None:
    inbox: Subject[ClusterEvent] = Subject()
    last: Subject[ClusterEvent] = Subject()
    monitor.subscribe(inbox)
    monitor.subscribe(inbox)
    monitor.subscribe(last)
    assert monitor.subscribers == 2
    sent = events(2)
    for event in sent:
        monitor.publish(event)
    assert drain(last, 2) == sent  # so delivery to ``inbox`` is complete
    assert len(inbox) == 2
    assert drain(inbox, 2) == sent


class Recorder:
    def __init__(self) -> None:
        self.seen: list[ClusterEvent] = []

    def record(self, event: ClusterEvent) -> None:
        self.seen.append(event)


def test_duplicate_callable_subscriptions_are_ignored(monitor: ClusterMonitor) -> None:
    seen: list[ClusterEvent] = []
    recorder = Recorder()
    last: Subject[ClusterEvent] = Subject()
    monitor.subscribe(seen.append)
    monitor.subscribe(seen.append)  # an equal bound method
    monitor.subscribe(recorder.record)
    monitor.subscribe(recorder.record)
    monitor.subscribe(last)
    assert monitor.subscribers == 3
    monitor.publish(NodeUp("a@h"))
    drain(last, 1)
    assert seen == [NodeUp("a@h")]
    assert recorder.seen == [NodeUp("a@h")]


def test_a_closed_subject_is_pruned(monitor: ClusterMonitor) -> None:
    gone: Subject[ClusterEvent] = Subject()
    kept: Subject[ClusterEvent] = Subject()
    monitor.subscribe(gone)
    monitor.subscribe(kept)
    gone.close()
    monitor.publish(NodeUp("a@h"))
    assert kept.receive(timeout=DEADLINE) == NodeUp("a@h")
    assert monitor.subscribers == 1
    with pytest.raises(SubjectClosed):
        gone.get_nowait()


def test_a_subject_closed_while_events_flow_is_pruned(monitor: ClusterMonitor) -> None:
    closing: Subject[ClusterEvent] = Subject()
    kept: Subject[ClusterEvent] = Subject()
    monitor.subscribe(closing)
    monitor.subscribe(kept)
    sent = events(200)
    for i, event in enumerate(sent):
        monitor.publish(event)
        if i == 100:
            closing.close()
    assert drain(kept, 200) == sent
    assert monitor.subscribers == 1
    assert len(closing) <= 101


def test_subscribing_a_closed_subject_is_ignored(monitor: ClusterMonitor) -> None:
    closed: Subject[ClusterEvent] = Subject()
    closed.close()
    monitor.subscribe(closed)
    assert monitor.subscribers == 0


def test_a_forgotten_subject_counts_as_dead(monitor: ClusterMonitor) -> None:
    monitor.subscribe(Subject())
    gc.collect()
    assert monitor.subscribers == 0


def test_every_subscriber_sees_the_same_order_across_publishing_threads(
    monitor: ClusterMonitor,
) -> None:
    publishers, per_publisher = 4, 250
    inboxes: list[Subject[ClusterEvent]] = [Subject() for _ in range(3)]
    called: list[ClusterEvent] = []
    monitor.subscribe(inboxes[0])
    monitor.subscribe(called.append)
    monitor.subscribe(inboxes[1])
    monitor.subscribe(inboxes[2])

    def publish(p: int) -> None:
        for event in events(per_publisher, prefix=f"p{p}n"):
            monitor.publish(event)

    threads = [threading.Thread(target=publish, args=(p,)) for p in range(publishers)]
    start_threads(*threads)
    join_threads(*threads)
    total = publishers * per_publisher
    received = [drain(inbox, total) for inbox in inboxes]
    assert received[0] == received[1] == received[2] == called
    for p in range(publishers):
        assert [e for e in called if e.node.startswith(f"p{p}n")] == events(
            per_publisher, prefix=f"p{p}n"
        )


def test_async_receive_while_threads_publish(monitor: ClusterMonitor) -> None:
    inbox: Subject[ClusterEvent] = Subject()
    monitor.subscribe(inbox)
    publishers, per_publisher = 2, 300

    def publish(p: int) -> None:
        for event in events(per_publisher, prefix=f"p{p}n"):
            monitor.publish(event)

    async def main() -> list[ClusterEvent]:
        threads = [threading.Thread(target=publish, args=(p,)) for p in range(publishers)]
        start_threads(*threads)
        got = [await inbox.areceive(timeout=DEADLINE) for _ in range(publishers * per_publisher)]
        await asyncio.to_thread(join_threads, *threads)
        return got

    got = run_on_own_loop(main)
    for p in range(publishers):
        assert [e for e in got if e.node.startswith(f"p{p}n")] == events(
            per_publisher, prefix=f"p{p}n"
        )


def test_callables_run_on_the_dispatcher_not_the_publishers_loop(
    monitor: ClusterMonitor,
) -> None:
    ran_on: list[str] = []
    last: Subject[ClusterEvent] = Subject()
    monitor.subscribe(lambda event: ran_on.append(threading.current_thread().name))
    monitor.subscribe(last)

    async def main() -> str:
        monitor.publish(NodeUp("a@h"))  # from inside a running loop
        await last.areceive(timeout=DEADLINE)
        return threading.current_thread().name

    loop_thread = run_on_own_loop(main)
    assert ran_on == ["erldist-monitor"]
    assert loop_thread != "erldist-monitor"


def test_a_blocked_callable_never_blocks_publish(monitor: ClusterMonitor) -> None:
    gate = threading.Event()
    last: Subject[ClusterEvent] = Subject()
    monitor.subscribe(lambda event: gate.wait(DEADLINE))
    monitor.subscribe(last)
    sent = events(100)
    for event in sent:
        monitor.publish(event)  # returns although the dispatcher is stuck
    assert len(last) == 0  # still stuck on the first event's first subscriber
    gate.set()
    assert drain(last, 100) == sent


def test_a_raising_callable_is_logged_and_kept(
    monitor: ClusterMonitor, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[ClusterEvent] = []
    last: Subject[ClusterEvent] = Subject()

    def broken(event: ClusterEvent) -> None:
        calls.append(event)
        raise RuntimeError("listener bug")

    monitor.subscribe(broken)
    monitor.subscribe(last)
    with caplog.at_level(logging.ERROR, logger="erldist.monitor"):
        monitor.publish(NodeUp("a@h"))
        monitor.publish(NodeDown("a@h"))
        drain(last, 2)
    assert calls == [NodeUp("a@h"), NodeDown("a@h")]
    records = [r for r in caplog.records if r.name == "erldist.monitor"]
    assert len(records) == 2
    assert all(r.exc_info is not None and isinstance(r.exc_info[1], RuntimeError) for r in records)
    assert monitor.subscribers == 2


def test_a_full_subject_drops_with_a_warning_and_stays(
    monitor: ClusterMonitor, caplog: pytest.LogCaptureFixture
) -> None:
    small: Subject[ClusterEvent] = Subject(maxsize=1)
    last: Subject[ClusterEvent] = Subject()
    monitor.subscribe(small)
    monitor.subscribe(last)
    with caplog.at_level(logging.WARNING, logger="erldist.monitor"):
        monitor.publish(NodeUp("a@h"))
        monitor.publish(NodeDown("a@h"))
        drain(last, 2)
    assert drain(small, 1) == [NodeUp("a@h")]
    assert len(small) == 0
    assert any("full" in r.getMessage() for r in caplog.records if r.name == "erldist.monitor")
    assert monitor.subscribers == 2


def test_unsubscribe_stops_deliveries(monitor: ClusterMonitor) -> None:
    leaving: Subject[ClusterEvent] = Subject()
    staying: Subject[ClusterEvent] = Subject()
    recorder = Recorder()
    monitor.subscribe(leaving)
    monitor.subscribe(recorder.record)
    monitor.subscribe(staying)
    monitor.publish(NodeUp("a@h"))
    drain(staying, 1)
    monitor.unsubscribe(leaving)
    monitor.unsubscribe(recorder.record)  # an equal bound method unsubscribes too
    assert monitor.subscribers == 1
    monitor.publish(NodeDown("a@h"))
    drain(staying, 1)
    assert drain(leaving, 1) == [NodeUp("a@h")]
    assert len(leaving) == 0
    assert recorder.seen == [NodeUp("a@h")]


def test_unsubscribing_an_unknown_listener_is_a_no_op(monitor: ClusterMonitor) -> None:
    monitor.unsubscribe(Subject())
    monitor.unsubscribe(lambda event: None)
    assert monitor.subscribers == 0


def test_close_ends_deliveries_and_the_dispatcher() -> None:
    monitor = ClusterMonitor()
    entered = threading.Event()
    gate = threading.Event()
    calls: list[ClusterEvent] = []
    inbox: Subject[ClusterEvent] = Subject()

    def slow(event: ClusterEvent) -> None:
        calls.append(event)
        entered.set()
        gate.wait(DEADLINE)

    monitor.subscribe(slow)
    monitor.subscribe(inbox)
    for event in events(3):
        monitor.publish(event)
    assert entered.wait(DEADLINE)
    monitor.close()
    monitor.close()  # idempotent
    assert monitor.closed
    gate.set()
    assert monitor.join(DEADLINE)
    assert calls == events(1)  # the delivery under way finished; no new one started
    assert len(inbox) == 0
    assert not inbox.closed  # the monitor does not own its subscribers' inboxes
    monitor.publish(NodeUp("after@h"))  # a no-op
    monitor.subscribe(inbox)  # ignored
    assert monitor.subscribers == 0
    assert len(inbox) == 0


def test_a_forgotten_monitor_stops_its_thread() -> None:
    before = set(threading.enumerate())
    monitor = ClusterMonitor()
    [thread] = [t for t in threading.enumerate() if t not in before]
    assert thread.name == "erldist-monitor"
    del monitor
    gc.collect()
    thread.join(DEADLINE)
    assert not thread.is_alive()


def test_closed_subject_is_pruned_at_once() -> None:
    monitor = ClusterMonitor()
    inbox: Subject[ClusterEvent] = Subject()
    monitor.subscribe(inbox)
    assert monitor.subscribers == 1
    inbox.close()
    with monitor._subs.lock:
        assert monitor._subs.entries == []
    monitor.close()


def test_collected_subject_is_pruned_at_once() -> None:
    monitor = ClusterMonitor()
    inbox: Subject[ClusterEvent] = Subject()
    monitor.subscribe(inbox)
    del inbox
    gc.collect()
    with monitor._subs.lock:
        assert monitor._subs.entries == []
    monitor.close()


def test_unknown_messages_reach_the_diagnostic_hook() -> None:
    seen: list[object] = []
    monitor = ClusterMonitor(diagnostic=seen.append)
    inbox: Subject[ClusterEvent] = Subject()
    monitor.subscribe(inbox)
    monitor.publish(("strange", 1))  # type: ignore[arg-type]
    monitor.publish(NodeUp("a@h"))
    assert inbox.receive(timeout=DEADLINE) == NodeUp("a@h")
    assert seen == [("strange", 1)]
    monitor.close()


# --- scope and order ---------------------------------------------------------------------


def test_subscribers_get_visible_peers_unless_they_ask_for_more(monitor: ClusterMonitor) -> None:
    default: Subject[ClusterEvent] = Subject()
    hidden_only: Subject[ClusterEvent] = Subject()
    everything: Subject[ClusterEvent] = Subject()
    monitor.subscribe(default)
    monitor.subscribe(hidden_only, node_type="hidden")
    monitor.subscribe(everything, node_type="all")  # subscribed last: sees delivery end
    sent: list[ClusterEvent] = [
        NodeUp("shell@h", node_type="hidden"),
        NodeUp("peer@h"),
        NodeDown("shell@h", "closed", node_type="hidden"),
        NodeDown("peer@h", "closed"),
    ]
    for event in sent:
        monitor.publish(event)
    assert drain(everything, 4) == sent
    assert drain(default, 2) == [sent[1], sent[3]]
    assert drain(hidden_only, 2) == [sent[0], sent[2]]
    assert len(default) == len(hidden_only) == 0


def test_an_unknown_node_type_is_refused(monitor: ClusterMonitor) -> None:
    with pytest.raises(ValueError, match="node_type must be"):
        monitor.subscribe(Subject(), node_type="everything")  # type: ignore[arg-type]
    assert monitor.subscribers == 0


def test_each_event_reaches_every_subscriber_before_the_next_in_subscription_order(
    monitor: ClusterMonitor,
) -> None:
    calls: list[tuple[str, ClusterEvent]] = []
    last: Subject[ClusterEvent] = Subject()
    monitor.subscribe(lambda event: calls.append(("first", event)))
    monitor.subscribe(lambda event: calls.append(("second", event)))
    monitor.subscribe(last)
    sent = events(3)
    for event in sent:
        monitor.publish(event)
    drain(last, 3)
    assert calls == [(tag, event) for event in sent for tag in ("first", "second")]


def test_cluster_start_monitor_takes_the_diagnostic_hook() -> None:
    seen: list[object] = []
    mon = cluster.start_monitor(diagnostic=seen.append)
    try:
        mon.publish(("strange", 1))  # type: ignore[arg-type]
        assert seen == [("strange", 1)]
    finally:
        mon.close()
