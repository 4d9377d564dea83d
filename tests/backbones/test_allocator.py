"""The allocator setting applied when a SAM model loads (glibc)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

SCRIPT = """
import napari_weaksam.backbones.allocator as allocator
print(allocator.keep_freed_memory(), allocator.keep_freed_memory())
"""


def _applied(env: dict[str, str]) -> str:
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                            env=env, check=True)
    return result.stdout.strip()


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the setting is glibc's")
def test_thresholds_are_raised_once_unless_the_person_says_default():
    assert _applied(dict(os.environ)) == "True True"
    assert _applied(dict(os.environ) | {"WEAKSAM_MALLOC": "default"}) == "False False"
