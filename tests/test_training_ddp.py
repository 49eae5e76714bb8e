"""`full` training under torchrun: 2 CPU ranks (gloo) with 1 sample each per step = one process with batches of 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from training_fixtures import write_recipe

RECIPES = Path(__file__).resolve().parent.parent / "recipes"


@pytest.mark.slow  # ~45 s: two torchrun worker processes importing torch and segment_anything
def test_two_ddp_ranks_train_what_one_process_trains_with_their_joint_batch(tmp_path):
    import tomllib

    from mskbench.segmenters.architecture import reduced_sam
    from mskbench.training.recipe import parse_recipe
    from mskbench.training.trainer import train

    config = tomllib.loads((RECIPES / "source_study_tiny.toml").read_text())
    config["train"].update(epochs=1, batch_size=1, grad_clip=0.5)
    config["datasets"][0].update(subjects=1)  # femur and tibia of one slice: one step of one sample per rank
    path = write_recipe(tmp_path / "ddp.toml", config)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent), "OMP_NUM_THREADS": "1"}
    torchrun = Path(sys.executable).with_name("torchrun")
    done = subprocess.run([str(torchrun), "--nproc_per_node=2", "-m", "mskbench", "train", path, "--out",
                           str(tmp_path / "ddp")], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]

    config["train"].update(batch_size=2)  # one process, the two ranks' samples in one batch
    train(parse_recipe(config, path, "ddp"), tmp_path / "one", show_progress=False)
    ddp = torch.load(tmp_path / "ddp" / "model.pt", weights_only=True)
    one = torch.load(tmp_path / "one" / "model.pt", weights_only=True)
    for key in one:
        torch.testing.assert_close(ddp[key], one[key], rtol=1e-4, atol=1e-5)
    torch.manual_seed(0)  # the recipe's seeded random start
    start = reduced_sam().state_dict()
    assert any(not torch.equal(start[k], ddp[k]) for k in start if k.startswith("image_encoder."))  # it trained
