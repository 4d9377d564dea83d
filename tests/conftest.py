"""Keep tests away from the user's own settings and weights folder."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def isolated_user_settings(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("WEAKSAM_SETTINGS", str(tmp_path_factory.mktemp("settings") / "s.json"))
    monkeypatch.delenv("WEAKSAM_WEIGHTS_DIR", raising=False)
