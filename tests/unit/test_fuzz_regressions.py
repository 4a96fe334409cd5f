"""Every fuzz target over its seed inputs and every saved regression input.

The targets are plain functions of bytes (``fuzz/targets.py``), so this runs
without atheris. A file under ``fuzz/regressions/<target>/`` is an input that
once broke the target; it must keep passing.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fuzz.session import close_session
from fuzz.targets import TARGETS

REGRESSIONS = Path(__file__).resolve().parents[2] / "fuzz" / "regressions"


@pytest.fixture(autouse=True, scope="module")
def _stop_the_session_node() -> Iterator[None]:
    yield
    close_session()


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_seeds_pass(name: str) -> None:
    seeds = TARGETS[name].seeds()
    assert seeds, f"{name} has no seed inputs"
    for seed in seeds:
        TARGETS[name].run(seed)


def test_saved_regression_inputs_still_pass() -> None:
    """Each ``fuzz/regressions/<target>/<file>`` replays through its target."""
    assert (REGRESSIONS / "README.md").is_file()
    replayed = 0
    for folder in sorted(p for p in REGRESSIONS.iterdir() if p.is_dir()):
        assert folder.name in TARGETS, f"{folder} names no fuzz target"
        for path in sorted(f for f in folder.iterdir() if f.is_file()):
            TARGETS[folder.name].run(path.read_bytes())
            replayed += 1
    print(f"replayed {replayed} regression inputs")


def test_every_target_is_a_decoder_of_peer_bytes() -> None:
    assert set(TARGETS) == {"term", "handshake_acceptor", "handshake_initiator", "framing",
                            "dist_valid", "epmd_request", "epmd_response", "node_session"}
