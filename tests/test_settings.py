"""User settings and the `weaksam config` command."""

from __future__ import annotations

import pytest

from napari_weaksam.backbones.weights import weights_dir
from napari_weaksam.cli import main
from napari_weaksam.settings import get_setting, set_setting, settings_path


def test_setting_round_trip_and_removal():
    set_setting("weights_dir", "/data/sam")
    assert get_setting("weights_dir") == "/data/sam"
    set_setting("weights_dir", None)
    assert get_setting("weights_dir") is None


def test_weights_dir_precedence(tmp_path, monkeypatch):
    assert weights_dir() is None
    set_setting("weights_dir", str(tmp_path / "from-setting"))
    assert weights_dir() == tmp_path / "from-setting"
    monkeypatch.setenv("WEAKSAM_WEIGHTS_DIR", str(tmp_path / "from-env"))
    assert weights_dir() == tmp_path / "from-env"
    assert weights_dir(tmp_path / "given") == tmp_path / "given"


def test_config_command_sets_and_shows(capsys, tmp_path):
    assert main(["config", "weights_dir", str(tmp_path)]) == 0
    assert main(["config", "weights_dir"]) == 0
    assert capsys.readouterr().out.strip().endswith(str(tmp_path))
    assert main(["config", "weights_dir", "none"]) == 0
    assert get_setting("weights_dir") is None


def test_corrupt_settings_file_is_reported(capsys):
    settings_path().write_text("{not json")
    assert main(["config"]) == 1
    assert "not valid JSON" in capsys.readouterr().err
    with pytest.raises(RuntimeError, match="fix or delete"):
        get_setting("weights_dir")
