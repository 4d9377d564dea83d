"""A project folder the person may read but not write: reading works, writing says why."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
from conftest_faults import Saved, assert_intact, weaksam


@pytest.fixture
def read_only_project() -> Iterator[tuple[Path, dict]]:
    """A project its runner cannot write: the folder's write bits are removed, or for root (who
    ignores them) the folder is bind-mounted read-only over itself."""
    base = Path(tempfile.mkdtemp(prefix="weaksam-ro-"))
    root = base / "p"
    mounted = False
    try:
        folder = base / "imgs"
        folder.mkdir()
        for i in range(2):
            iio.imwrite(folder / f"img{i}.png", np.full((16, 16), 90 * i, np.uint8))
        tags = base / "tags.csv"
        tags.write_text("filename,label\nimg0.png,1\nimg1.png,0\n", encoding="utf-8")
        assert weaksam("create", root, folder, "--tags", tags).code == 0
        if os.geteuid() == 0:
            mounted = _mount_read_only(root)
        else:
            for path in [root, *root.rglob("*")]:
                os.chmod(path, path.stat().st_mode & ~0o222)
        yield root, {"WEAKSAM_SETTINGS": str(base / "settings.json")}
    finally:
        if mounted:
            subprocess.run(["umount", str(root)], check=False)
        for path in [base, *base.rglob("*")]:
            if not path.is_symlink():
                os.chmod(path, path.stat().st_mode | stat.S_IWUSR)
        shutil.rmtree(base, ignore_errors=True)


def _mount_read_only(root: Path) -> bool:
    steps = (["mount", "--bind", str(root), str(root)],
             ["mount", "-o", "remount,ro,bind", str(root)])
    for step in steps:
        if subprocess.run(step, capture_output=True).returncode != 0:
            subprocess.run(["umount", str(root)], capture_output=True)
            pytest.skip("running as root and cannot mount the project read-only here")
    return True


def _as_reader(env: dict, *args):
    return weaksam(*args, env=env)


def test_status_reads_a_read_only_project(read_only_project):
    root, env = read_only_project
    result = _as_reader(env, "status", root)
    assert result.code == 0, result.err
    assert "items:   2" in result.out and "rounds:  0" in result.out


@pytest.mark.parametrize("command", [["import-tags", "{tags}"], ["run"], ["embed"],
                                     ["classes", "--remove", "tumour", "--force"]])
def test_writing_commands_say_the_folder_is_not_writable(read_only_project, command):
    root, env = read_only_project
    before = Saved.read(root)
    args = [a.replace("{tags}", str(root.parent / "tags.csv")) for a in command]
    line = _as_reader(env, args[0], root, *args[1:]).error_line()
    assert str(root) in line and "not writable" in line
    assert_intact(root, before)


def test_export_tags_from_a_read_only_project(read_only_project):
    root, env = read_only_project
    out = root.parent / "tags-out.csv"
    result = _as_reader(env, "export-tags", root, out)
    assert result.code == 0, result.err
    assert out.read_text(encoding="utf-8").count("\n") == 3
