"""Fixtures for tests that start real Erlang/OTP processes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from erldist import cluster, config
from tests.support.otp import RELEASES, EpmdProcess, ErlNode


@pytest.fixture(params=RELEASES, ids=[f"otp{r}" for r in RELEASES])
def release(request: pytest.FixtureRequest) -> str:
    """Each interop test runs once per OTP release; a missing one fails the test."""
    return str(request.param)


@pytest.fixture(scope="module")
def epmd() -> Iterator[EpmdProcess]:
    """The real ``epmd`` binary on a private port, shared by a test module."""
    proc = EpmdProcess.start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
def erl_nodes() -> Iterator[list[ErlNode]]:
    """A list a test appends the real nodes it starts to; every one is killed after it."""
    started: list[ErlNode] = []
    yield started
    for node in started:
        node.stop()


@pytest.fixture
def fresh_facade() -> Iterator[None]:
    """The sync facade's node stopped and the configuration reset, before and after:
    the facade and ``config`` are process-wide, so each test starts from nothing."""
    cluster.stop_node()
    config.reset()
    yield
    cluster.stop_node()
    config.reset()
