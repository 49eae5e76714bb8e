"""Test models that travel to worker processes (module level, so spawned workers can import them by name)."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

from mskbench.segmenters.baselines import BoxFill


class WatchedBoxFill(BoxFill):
    """box_fill that, given a folder, leaves ``<folder>/<pid>`` when it starts encoding and then works slowly,
    so a test can kill the worker mid-unit; with ``die_while`` it kills its own process while that file exists."""

    def __init__(self, marker_dir: str | None = None, die_while: str | None = None, pause: float = 0.05):
        super().__init__()
        self.marker_dir, self.die_while, self.pause = marker_dir, die_while, pause

    def encode(self, images):
        if self.die_while and Path(self.die_while).exists():
            os.kill(os.getpid(), signal.SIGKILL)
        if self.marker_dir:
            Path(self.marker_dir, str(os.getpid())).touch()
            time.sleep(self.pause)
        return super().encode(images)


class UnpicklableBoxFill(BoxFill):
    """box_fill holding a lock, which no pickle can carry to a worker."""

    def __init__(self):
        super().__init__()
        self.lock = threading.Lock()


def watched_box_fill(device=None, checkpoint=None, **params):
    return WatchedBoxFill(**params)


def unpicklable_box_fill(device=None, checkpoint=None, **params):
    return UnpicklableBoxFill()


for _factory in (watched_box_fill, unpicklable_box_fill):
    _factory.supported_prompts = frozenset({"box", "box+point"})
