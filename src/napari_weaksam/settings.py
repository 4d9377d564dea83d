"""Per-user settings (JSON in the user's configuration folder), e.g. the SAM weights folder."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from platformdirs import user_config_dir

SETTINGS_ENV = "WEAKSAM_SETTINGS"  # another settings file, e.g. for tests


def settings_path() -> Path:
    override = os.environ.get(SETTINGS_ENV)
    return Path(override) if override else Path(user_config_dir("napari-weaksam")) / "settings.json"


def load_settings() -> dict[str, Any]:
    path = settings_path()
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise RuntimeError(
            f"{path}: settings file is not valid JSON ({error}); fix or delete it"
        ) from error


def get_setting(key: str, default: Any = None) -> Any:
    return load_settings().get(key, default)


def set_setting(key: str, value: Any) -> None:
    """Store one setting (atomically); ``None`` removes it."""
    settings = load_settings()
    if value is None:
        settings.pop(key, None)
    else:
        settings[key] = value
    path = settings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_text(json.dumps(settings, indent=2), encoding="utf-8")
    os.replace(tmp, path)
