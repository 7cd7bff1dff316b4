"""setup.sh finds a Python >= 3.12 on its own, honours PYTHON, and says what is missing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

SETUP = REPO_ROOT / "setup.sh"


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SETUP), *args], env=env, capture_output=True, text=True, timeout=60)


def fake_bin(tmp_path: Path, **links: str) -> Path:
    """A PATH directory holding only bash and the given executables."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("bash", "cat", "sha256sum", "cut", "dirname", "head", "tr", "sort", "find", "xargs"):
        found = shutil.which(name)
        if found:
            (bin_dir / name).symlink_to(found)
    for name, target in links.items():
        (bin_dir / name).symlink_to(target)
    return bin_dir


def old_python() -> str | None:
    for candidate in Path(os.path.expanduser("~/.pyenv/versions")).glob("3.11*/bin/python3"):
        return str(candidate)
    return None


def test_which_python_honours_an_explicit_python():
    env = {**os.environ, "PYTHON": sys.executable}
    result = run(["which-python"], env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == sys.executable


def test_a_too_old_python_is_refused_by_version(tmp_path):
    old = old_python()
    if old is None:
        pytest.skip("no Python 3.11 on this machine to stand in for a too-old interpreter")
    env = {"PATH": str(fake_bin(tmp_path)), "HOME": str(tmp_path), "PYTHON": old}
    result = run(["which-python"], env)
    assert result.returncode == 1
    assert f"PYTHON={old} is not Python >= 3.12" in result.stderr
    assert "3.11" in result.stderr


def test_no_suitable_python_says_what_it_needs(tmp_path):
    old = old_python()
    links = {"python3": old} if old else {}
    env = {"PATH": str(fake_bin(tmp_path, **links)), "HOME": str(tmp_path)}
    result = run(["which-python"], env)
    assert result.returncode == 1
    assert "no Python >= 3.12 found" in result.stderr
    assert "PYTHON=/path/to/python3.12" in result.stderr
    if old:
        assert "python3=Python_3.11" in result.stderr


def test_finds_a_pyenv_python_that_is_not_on_path(tmp_path):
    versions = tmp_path / ".pyenv" / "versions" / "3.12.9" / "bin"
    versions.mkdir(parents=True)
    (versions / "python3").symlink_to(sys.executable)
    env = {"PATH": str(fake_bin(tmp_path)), "HOME": str(tmp_path)}
    result = run(["which-python"], env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(versions / "python3")


def test_missing_rust_is_named(tmp_path):
    env = {"PATH": str(fake_bin(tmp_path)), "HOME": str(tmp_path), "PYTHON": sys.executable}
    result = run(["test"], env)
    assert result.returncode == 1
    assert "no Rust toolchain found" in result.stderr and "https://rustup.rs" in result.stderr
