"""Shared fixtures for the io tests."""

from __future__ import annotations

from pathlib import Path

import pytest

DATA_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """The shared real-data folder; the test is skipped when it is absent."""
    if not DATA_DIR.is_dir():
        pytest.skip(f"shared data folder not found ({DATA_DIR.name})")
    return DATA_DIR
