"""``python -m bench [--quick]``: the whole benchmark suite in one command.

It makes (or reuses) ``.bench-venv`` with erldist and the peer libraries,
starts a private EPMD, real ``erl`` nodes and Python peers, runs every
scenario for fixed operation counts, prints one table, and ends every
process it started.
"""

from __future__ import annotations

import sys

from bench import venv


def main() -> int:
    venv.enter()
    from bench import suite

    return suite.main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
