"""The README's front door, end to end: ``scripts/demo --headless`` on a clean clone."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_headless_demo_on_a_clean_clone_prints_the_dice(tmp_path):
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout: nothing to clone")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    pyproject = hashlib.sha256((clone / "pyproject.toml").read_bytes()).hexdigest()[:16]
    # the clone's scripts/setup.sh must find this environment installed for its pyproject.toml:
    # otherwise it would install the clone (a temporary folder) into this environment
    assert (Path(sys.prefix) / f".installed-{pyproject}").exists(), \
        "this environment is not set up for the committed pyproject.toml: run scripts/setup.sh"
    env = os.environ | {
        "VENV": sys.prefix,                   # this environment, already set up by scripts/test
        "PYTHONPATH": str(clone / "src"),     # … running the clone's code, not this checkout's
        "WEAKSAM_SETTINGS": str(tmp_path / "settings.json"),
    }
    result = subprocess.run(
        ["bash", str(clone / "scripts" / "demo"), "--headless", "--dest", str(tmp_path / "s")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1800,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    last = result.stdout.strip().splitlines()[-1]
    found = re.fullmatch(r"Dice on the sample \(latest proposals, (\d+) positive items\): "
                         r"(\d\.\d{3}) \(false-positive rate (\d\.\d\d) on (\d+) negatives\)", last)
    assert found, result.stdout[-2000:]
    assert int(found[1]) == 11 and int(found[4]) == 22
    assert 0.0 < float(found[2]) <= 1.0
