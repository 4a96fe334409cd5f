"""Refuse a tree that only works on the machine it was committed from.

Two mistakes make a clone pass CI on its author's machine and fail everywhere
else: a tracked symbolic link whose target lies outside the repository (the
target exists only where the link was made), and a tracked file whose text
names a path of that machine (a home folder, a temporary folder, a runner's
work folder). ``scripts/test.sh`` runs this before anything else; the unit
tests run it on throw-away repositories to prove it fails.

Usage: ``python3 scripts/check_tree.py [REPO]``; exit 0 when clean, 1 with one
line per problem otherwise. Standard library only: it runs before any venv.
"""

from __future__ import annotations

import posixpath
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

# Absolute paths that belong to one machine. Written as alternations so this
# file does not match itself.
MACHINE_PATH = re.compile(
    r"(?<![\w.~-])(?:/(?:tmp|home|root|Users|work|runner|private/var|var/folders)/[\w.@+-]+"
    r"|[A-Za-z]:\\(?:Users|Temp)\\[\w.@+-]+)"
)
LINK_MODE = "120000"
MAX_SCANNED_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class Problem:
    path: str
    why: str

    def __str__(self) -> str:
        return f"{self.path}: {self.why}"


def _git(repo: Path, *args: str) -> bytes:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True
    ).stdout


def _link_problem(path: str, target: str) -> Problem | None:
    if target.startswith("/") or re.match(r"[A-Za-z]:[\\/]", target):
        return Problem(path, f"symbolic link to the absolute path {target!r}, "
                             "which exists only on the machine it was made on")
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(path), target))
    if resolved == ".." or resolved.startswith("../"):
        return Problem(path, f"symbolic link to {target!r}, outside the repository")
    return None


def _content_problem(path: str, data: bytes) -> Problem | None:
    if b"\0" in data[:8192]:
        return None  # binary: no text to read paths from
    text = data[:MAX_SCANNED_BYTES].decode("utf-8", errors="replace")
    for number, line in enumerate(text.splitlines(), start=1):
        found = MACHINE_PATH.search(line)
        if found:
            return Problem(f"{path}:{number}", f"names the machine path {found.group(0)!r}; "
                                               "use a path relative to the repository or "
                                               "one made at run time")
    return None


def check(repo: Path) -> list[Problem]:
    """Every tracked link that leaves the repository, every machine path in tracked text."""
    problems: list[Problem] = []
    listing = _git(repo, "ls-files", "-s", "-z").split(b"\0")
    for entry in filter(None, listing):
        meta, _, raw_path = entry.partition(b"\t")
        mode, blob, _stage = meta.decode().split(" ")
        path = raw_path.decode("utf-8", errors="replace")
        data = _git(repo, "cat-file", "blob", blob)
        problem = (
            _link_problem(path, data.decode("utf-8", errors="replace"))
            if mode == LINK_MODE
            else _content_problem(path, data)
        )
        if problem is not None:
            problems.append(problem)
    return problems


def main(argv: list[str]) -> int:
    repo = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parent.parent
    problems = check(repo)
    for problem in problems:
        print(f"check_tree: {problem}", file=sys.stderr)
    if problems:
        print(f"check_tree: {len(problems)} problem(s): this tree would work only on the "
              "machine it was committed from", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
