"""Keep Ultralytics from reaching the network (settings sync, hub events, font/asset downloads, pip).

Call `configure_offline()` before the first `import ultralytics`: most switches are environment
variables and a settings file that Ultralytics reads once, at import.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

DEFAULT_SETTINGS_DIR = Path(__file__).resolve().parents[1] / "var" / "ultralytics"

# Settings Ultralytics would otherwise default to True: sync sends usage events, the integration
# callbacks try to log to remote services when their packages happen to be installed.
OFFLINE_SETTINGS: dict[str, bool] = {
    "sync": False,
    "clearml": False,
    "comet": False,
    "dvc": False,
    "mlflow": False,
    "raytune": False,
    "tensorboard": False,
    "wandb": False,
    "vscode_msg": False,
    "openvino_msg": False,
}

OFFLINE_ENV: dict[str, str] = {
    "YOLO_OFFLINE": "1",  # is_online() -> False: no downloads, no hub, no AMP-check model fetch
    "YOLO_AUTOINSTALL": "false",  # never pip install missing export requirements at run time
    "YOLO_VERBOSE": "false",
}


def configure_offline(settings_dir: Path | None = None) -> None:
    """Point Ultralytics at a local settings folder with every network feature off. Idempotent."""
    directory = Path(settings_dir) if settings_dir is not None else DEFAULT_SETTINGS_DIR
    directory.mkdir(parents=True, exist_ok=True)
    os.environ.update(OFFLINE_ENV)
    if "ultralytics" not in sys.modules:
        # Once imported, Ultralytics keeps the folder it found; the env var only matters before that.
        os.environ["YOLO_CONFIG_DIR"] = str(directory)
        # Ultralytics appends its own sub-folder to YOLO_CONFIG_DIR.
        _merge_settings_file(directory / "Ultralytics" / "settings.json")
    else:
        from ultralytics.utils import SETTINGS

        SETTINGS.update(OFFLINE_SETTINGS)


def _merge_settings_file(path: Path) -> None:
    """Write the offline switches into settings.json, keeping any other keys already there."""
    current: dict[str, object] = {}
    if path.exists():
        try:
            current = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            current = {}
    merged = {**current, **OFFLINE_SETTINGS}
    if merged != current:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(merged, indent=2), encoding="utf-8")
