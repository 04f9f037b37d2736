"""``ledger demo`` run as a user runs it: a subprocess, from an empty folder."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

LEDGER = [sys.executable, "-c", "from api.cli import main; main()"]


def run_demo(folder: Path, **env: str) -> subprocess.CompletedProcess[str]:
    temp = folder / "tmp"
    temp.mkdir()
    return subprocess.run(
        [*LEDGER, "demo"],
        cwd=folder,
        env={**os.environ, "TMPDIR": str(temp), **env},
        capture_output=True,
        text=True,
        timeout=600,
    )


def assert_nothing_left(folder: Path, output: str) -> None:
    # Both processes are stopped and the temporary folder (database, key file, logs) is gone.
    for url in set(re.findall(r"http://127\.0\.0\.1:\d+", output)):
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{url}/healthz", timeout=5)
    assert list((folder / "tmp").iterdir()) == []
    assert sorted(p.name for p in folder.iterdir()) == ["tmp"]


def test_the_demo_plays_the_seeds_example_and_exits_0(tmp_path: Path) -> None:
    result = run_demo(tmp_path)

    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    for held in [
        "ledger physical 10, reserved 0, available 10 │ store shows 10",
        "ledger physical 10, reserved 5, available 5 │ store shows 5",
        "ledger physical 5, reserved 0, available 5 │ store shows 5",
        "store: invoice NF-1001, value 24950 cents",
        "ledger physical 5, reserved 2, available 3 │ store shows 3",
        "Every step held",
    ]:
        assert held in output, output
    assert "Traceback" not in output
    assert_nothing_left(tmp_path, output)


def test_the_demo_exits_non_zero_saying_what_failed(tmp_path: Path) -> None:
    """VTEX's files present but unreadable: the emulator cannot start, and the demo says so."""
    broken = tmp_path / "specs"
    broken.mkdir()
    for name in ("logistics-api.json", "orders-api.json"):
        (broken / name).write_text("{not json")

    result = run_demo(tmp_path, LEDGER_VTEX_SPECS=str(broken))

    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "the VTEX emulator did not start" in output
    assert "Every step held" not in output
    (tmp_path / "specs" / "logistics-api.json").unlink()
    (tmp_path / "specs" / "orders-api.json").unlink()
    broken.rmdir()
    assert_nothing_left(tmp_path, output)
