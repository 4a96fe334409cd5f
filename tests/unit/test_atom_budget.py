"""The distribution-atom budget: fresh text costs one unit, known text is free,
exhaustion refuses atomically and reports through telemetry.

Most tests use their own ``AtomBudget`` so they never spend the process-wide
one other tests (and the cluster API) share.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest

from erldist import config, names, telemetry
from erldist.names import AtomBudget, BudgetSite, InputKind, atom_budget
from erldist.telemetry import AtomBudgetExhausted, TelemetryEvent

NAME = InputKind.NODE_NAME
COOKIE = InputKind.COOKIE


@pytest.fixture(autouse=True)
def _restore_config() -> Iterator[None]:
    config.reset()
    yield
    config.reset()


@pytest.fixture
def exhausted() -> Iterator[list[AtomBudgetExhausted]]:
    """Every AtomBudgetExhausted emitted during the test."""
    seen: list[AtomBudgetExhausted] = []
    lock = threading.Lock()

    def handler(event: TelemetryEvent) -> None:
        if isinstance(event, AtomBudgetExhausted):
            with lock:
                seen.append(event)

    telemetry.attach(handler)
    yield seen
    telemetry.detach(handler)


def test_a_fresh_name_costs_one_and_a_known_one_is_free() -> None:
    budget = AtomBudget()
    assert not budget.known("a@h")
    assert budget.charge("a@h", where=BudgetSite.CONNECT, kind=NAME)
    assert budget.known("a@h")
    assert budget.used == 1
    assert budget.charge("a@h", where=BudgetSite.PING, kind=NAME)
    assert budget.used == 1


def test_cookies_count_like_names() -> None:
    budget = AtomBudget()
    assert budget.charge("a@h", where=BudgetSite.START_NODE, kind=NAME)
    assert budget.charge("cookie", where=BudgetSite.START_NODE, kind=COOKIE)
    assert budget.charge("cookie", where=BudgetSite.START_NODE, kind=COOKIE)
    assert budget.used == 2
    assert budget.known("cookie")


def test_cookies_are_remembered_by_hash_only() -> None:
    budget = AtomBudget()
    budget.charge("PlainTextCookie", where=BudgetSite.START_NODE, kind=COOKIE)
    # A security property, so it is worth a look at the internals: no text is kept.
    assert all(isinstance(key, bytes) for key in budget._known)
    assert all(b"PlainTextCookie" not in key for key in budget._known)


def test_exhaustion_refuses_and_reports_the_input_and_site(
    exhausted: list[AtomBudgetExhausted],
) -> None:
    config.configure(max_distribution_atoms=3)
    budget = AtomBudget()
    for name in ("a@h", "b@h", "c@h"):
        assert budget.charge(name, where=BudgetSite.CONNECT, kind=NAME)
    assert telemetry.flush()
    assert exhausted == []
    assert not budget.charge("d@h", where=BudgetSite.PING, kind=NAME)
    assert budget.used == 3
    assert not budget.known("d@h")  # a refused call interns nothing
    assert telemetry.flush()
    assert exhausted == [AtomBudgetExhausted("d@h", BudgetSite.PING, NAME)]


def test_known_text_stays_free_after_exhaustion(exhausted: list[AtomBudgetExhausted]) -> None:
    config.configure(max_distribution_atoms=1)
    budget = AtomBudget()
    assert budget.charge("a@h", where=BudgetSite.CONNECT, kind=NAME)
    assert not budget.charge("b@h", where=BudgetSite.CONNECT, kind=NAME)
    assert budget.charge("a@h", where=BudgetSite.CONNECT, kind=NAME)
    assert telemetry.flush()
    assert len(exhausted) == 1


def test_each_refusal_is_reported(exhausted: list[AtomBudgetExhausted]) -> None:
    config.configure(max_distribution_atoms=1)
    budget = AtomBudget()
    budget.charge("a@h", where=BudgetSite.START_NODE, kind=NAME)
    assert not budget.charge("b@h", where=BudgetSite.CONNECT, kind=NAME)
    assert not budget.charge("b@h", where=BudgetSite.CONNECT, kind=NAME)
    assert not budget.charge("cookie", where=BudgetSite.START_NODE, kind=COOKIE)
    assert telemetry.flush()
    assert [(e.attempted_input, e.where, e.kind) for e in exhausted] == [
        ("b@h", BudgetSite.CONNECT, NAME),
        ("b@h", BudgetSite.CONNECT, NAME),
        ("cookie", BudgetSite.START_NODE, COOKIE),
    ]


def test_a_refused_cookie_is_redacted_in_the_event(exhausted: list[AtomBudgetExhausted]) -> None:
    config.configure(max_distribution_atoms=1)
    budget = AtomBudget()
    budget.charge("a@h", where=BudgetSite.START_NODE, kind=NAME)
    assert not budget.charge("HushHushCookie", where=BudgetSite.START_NODE, kind=COOKIE)
    assert telemetry.flush()
    [event] = exhausted
    assert event.attempted_input == "HushHushCookie"
    assert "HushHushCookie" not in repr(event) and "HushHushCookie" not in str(event)
    assert "<redacted>" in repr(event)


def test_raising_the_budget_admits_again_and_a_refused_name_is_still_fresh() -> None:
    config.configure(max_distribution_atoms=1)
    budget = AtomBudget()
    budget.charge("a@h", where=BudgetSite.CONNECT, kind=NAME)
    assert not budget.charge("b@h", where=BudgetSite.CONNECT, kind=NAME)
    config.configure(max_distribution_atoms=2)
    assert budget.charge("b@h", where=BudgetSite.CONNECT, kind=NAME)
    assert budget.used == 2


def test_lowering_the_budget_below_use_refuses_fresh_text_only() -> None:
    budget = AtomBudget()
    for name in ("a@h", "b@h", "c@h"):
        budget.charge(name, where=BudgetSite.CONNECT, kind=NAME)
    config.configure(max_distribution_atoms=1)
    assert budget.used == 3
    assert budget.charge("b@h", where=BudgetSite.CONNECT, kind=NAME)
    assert not budget.charge("d@h", where=BudgetSite.CONNECT, kind=NAME)


def test_the_process_budget_is_one_and_configure_does_not_reset_it() -> None:
    budget = atom_budget()
    assert atom_budget() is budget
    budget.charge("test_atom_budget_singleton@h", where=BudgetSite.CONNECT, kind=NAME)
    used = budget.used
    config.configure(max_distribution_atoms=used + 100)
    config.reset()
    assert atom_budget() is budget
    assert budget.used == used
    assert budget.known("test_atom_budget_singleton@h")


def test_a_handler_may_charge_while_handling_exhaustion() -> None:
    config.configure(max_distribution_atoms=1)
    budget = AtomBudget()
    budget.charge("a@h", where=BudgetSite.CONNECT, kind=NAME)
    inner: list[bool] = []

    def handler(event: TelemetryEvent) -> None:
        if isinstance(event, AtomBudgetExhausted) and event.attempted_input == "b@h":
            inner.append(budget.charge("a@h", where=BudgetSite.CONNECT, kind=NAME))

    telemetry.attach(handler)
    try:
        assert not budget.charge("b@h", where=BudgetSite.CONNECT, kind=NAME)
    finally:
        telemetry.detach(handler)
    assert telemetry.flush()
    assert inner == [True]  # no deadlock: the event is emitted outside the lock


def race(budget: AtomBudget, work: list[list[str]]) -> list[list[bool]]:
    """Charge ``work[i]`` on thread i, all threads released at once; results per thread."""
    results: list[list[bool]] = [[] for _ in work]
    barrier = threading.Barrier(len(work))
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            barrier.wait()
            for text in work[i]:
                results[i].append(budget.charge(text, where=BudgetSite.CONNECT, kind=NAME))
        except BaseException as exc:  # reported below
            errors.append(exc)

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(len(work))]
    for t in pool:
        t.start()
    for t in pool:
        t.join(timeout=60)
        assert not t.is_alive()
    assert errors == []
    return results


def test_racing_threads_never_over_admit(exhausted: list[AtomBudgetExhausted]) -> None:
    threads, per_thread, limit, spent = 16, 40, 150, 100
    config.configure(max_distribution_atoms=limit)
    budget = AtomBudget()
    for i in range(spent):
        budget.charge(f"pre{i}@h", where=BudgetSite.CONNECT, kind=NAME)
    work = [[f"t{t}n{n}@h" for n in range(per_thread)] for t in range(threads)]
    results = race(budget, work)
    outcomes = [
        (text, ok) for t in range(threads) for text, ok in zip(work[t], results[t], strict=True)
    ]
    admitted = [text for text, ok in outcomes if ok]
    refused = [text for text, ok in outcomes if not ok]
    assert len(admitted) == limit - spent
    assert len(refused) == threads * per_thread - (limit - spent)
    assert budget.used == limit
    assert all(budget.known(text) for text in admitted)
    assert not any(budget.known(text) for text in refused)
    assert telemetry.flush()
    assert sorted(e.attempted_input for e in exhausted) == sorted(refused)


def test_racing_threads_over_the_same_fresh_name_pay_once() -> None:
    config.configure(max_distribution_atoms=10)
    budget = AtomBudget()
    results = race(budget, [["same@h"] * 50 for _ in range(32)])
    assert all(all(row) for row in results)
    assert budget.used == 1


def test_racing_for_the_very_last_unit_admits_exactly_one(
    exhausted: list[AtomBudgetExhausted],
) -> None:
    threads = 32
    config.configure(max_distribution_atoms=1)
    budget = AtomBudget()
    results = race(budget, [[f"solo{t}@h"] for t in range(threads)])
    assert sum(row[0] for row in results) == 1
    assert budget.used == 1
    assert telemetry.flush()
    assert len(exhausted) == threads - 1


def test_tasks_on_several_loops_never_over_admit() -> None:
    loops, tasks, limit = 4, 50, 60
    config.configure(max_distribution_atoms=limit)
    budget = AtomBudget()

    async def one(name: str) -> bool:
        await asyncio.sleep(0)  # interleave the tasks
        return budget.charge(name, where=BudgetSite.PING, kind=NAME)

    async def many(loop_no: int) -> list[bool]:
        return await asyncio.gather(*(one(f"l{loop_no}t{t}@h") for t in range(tasks)))

    results: list[list[bool]] = [[] for _ in range(loops)]

    def run(loop_no: int) -> None:
        results[loop_no] = asyncio.run(many(loop_no))

    pool = [threading.Thread(target=run, args=(i,)) for i in range(loops)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(timeout=60)
        assert not t.is_alive()
    assert sum(sum(row) for row in results) == limit
    assert sum(len(row) for row in results) == loops * tasks
    assert budget.used == limit


def test_a_peer_that_connected_in_is_known_and_costs_nothing() -> None:
    config.configure(max_distribution_atoms=1)
    budget = AtomBudget()
    assert budget.charge("me@h", where=BudgetSite.START_NODE, kind=NAME)  # budget spent
    budget.learn("caller@h")  # its connection came in: its atom exists
    assert budget.known("caller@h")
    assert budget.charge("caller@h", where=BudgetSite.PING, kind=NAME)
    assert budget.used == 1
    assert not budget.charge("other@h", where=BudgetSite.PING, kind=NAME)


def test_learned_names_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(names, "MAX_LEARNED", 3)
    budget = AtomBudget()
    for i in range(5):
        budget.learn(f"peer{i}@h")
    assert [budget.known(f"peer{i}@h") for i in range(5)] == [True, True, True, False, False]
    assert budget.used == 0
