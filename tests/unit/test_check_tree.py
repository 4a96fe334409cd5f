"""scripts/check_tree.py refuses trees that work only on their author's machine."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHECK = ROOT / "scripts" / "check_tree.py"
# Built from parts so this file itself holds no machine path.
TMP_TARGET = "/" + "tmp" + "/ttools"


def _run(repo: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(CHECK), str(repo)], capture_output=True, text=True, check=False
    )


def _repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "README.md").write_text("clean\n")
    (repo / "pkg").mkdir()
    (repo / "pkg" / "mod.py").write_text("X = 1\n")
    return repo


def _add(repo: Path) -> None:
    subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True)


def test_clean_tree_passes(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    (repo / "pkg" / "inside").symlink_to("mod.py")
    _add(repo)
    result = _run(repo)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_link_to_an_absolute_path_fails_and_names_the_file(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    (repo / ".tools-venv").symlink_to(TMP_TARGET)
    _add(repo)
    result = _run(repo)
    assert result.returncode == 1
    assert ".tools-venv: symbolic link to the absolute path" in result.stderr
    assert TMP_TARGET in result.stderr


def test_link_leaving_the_repository_fails(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    (repo / "pkg" / "escape").symlink_to("../../elsewhere")
    _add(repo)
    result = _run(repo)
    assert result.returncode == 1
    assert "pkg/escape: symbolic link to '../../elsewhere', outside the repository" in (
        result.stderr
    )


@pytest.mark.parametrize(
    "path",
    [
        "/" + "home/alice/project/.venv",
        "/" + "tmp/pytest-of-root/x",
        "/" + "root/.cache/thing",
        "/" + "Users/bob/src",
        "C:" + "\\Users\\carol\\src",
    ],
)
def test_text_naming_a_machine_path_fails_with_file_and_line(tmp_path: Path, path: str) -> None:
    repo = _repo(tmp_path)
    (repo / "pkg" / "conf.toml").write_text(f"a = 1\nvenv = '{path}'\n")
    _add(repo)
    result = _run(repo)
    assert result.returncode == 1
    assert "pkg/conf.toml:2: names the machine path" in result.stderr


def test_untracked_files_are_not_judged(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    _add(repo)
    (repo / "local.txt").write_text("/" + "tmp/mine\n")
    assert _run(repo).returncode == 0


def test_this_repository_is_clean() -> None:
    result = _run(ROOT)
    assert result.returncode == 0, result.stderr
