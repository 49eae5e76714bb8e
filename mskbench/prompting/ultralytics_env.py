"""Import and run ultralytics with no network access at all (issue 6).

ultralytics reaches out in four places a benchmark must not: a DNS probe at
import (``is_online``), usage analytics (``settings.sync``), experiment
trackers and the Ultralytics Platform callbacks, and a font download that
``check_det_dataset`` attempts on every training run even with
``plots=False``. This module switches each off:

- ``YOLO_OFFLINE=1`` before import makes ``ONLINE`` False, which disables the
  analytics, pip update checks and auto-installs;
- ``YOLO_CONFIG_DIR`` (unless the user set it) points to mskbench's cache, so
  the settings file ultralytics writes is ours, not the user's;
- the integrations and ``sync`` are turned off in memory only (never written
  to a settings file), and ``ULTRALYTICS_API_KEY`` is hidden while training;
- the font check is replaced by a no-op for the duration of a training run:
  mskbench trains with ``plots=False``, so no font is ever drawn with.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

_INTEGRATIONS = ("clearml", "comet", "dvc", "mlflow", "raytune", "tensorboard", "wandb")


def config_dir() -> Path:
    """Where ultralytics keeps its settings when mskbench imports it."""
    root = os.environ.get("MSKBENCH_CACHE", str(Path.home() / ".cache" / "mskbench"))
    return Path(root) / "ultralytics"


def import_ultralytics() -> ModuleType:
    """Import ultralytics offline and with every integration off."""
    os.environ["YOLO_OFFLINE"] = "1"
    os.environ.setdefault("YOLO_CONFIG_DIR", str(config_dir()))
    import ultralytics
    from ultralytics.utils import SETTINGS

    quiet = {key: False for key in _INTEGRATIONS if key in SETTINGS}
    dict.update(SETTINGS, {**quiet, "sync": False, "api_key": ""})  # in memory, not saved
    return ultralytics


@contextlib.contextmanager
def offline_training() -> Iterator[ModuleType]:
    """Context for ``YOLO.train``: no font download, no Platform upload."""
    ultralytics = import_ultralytics()
    from ultralytics.data import utils as data_utils

    saved_font_check = data_utils.check_font
    saved_key = os.environ.pop("ULTRALYTICS_API_KEY", None)
    data_utils.check_font = lambda *args, **kwargs: None
    try:
        yield ultralytics
    finally:
        data_utils.check_font = saved_font_check
        if saved_key is not None:
            os.environ["ULTRALYTICS_API_KEY"] = saved_key
