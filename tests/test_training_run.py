"""`mskbench train` on phantom knees with the tiny SAM: what trains, determinism, resume, the gain, the suite."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mskbench.training.trainer import train
from sam_family_tiny import single_torch_thread  # noqa: F401  (autouse fixture)
from training_fixtures import recipe, tiny_vit_b  # noqa: F401  (fixture)


def state(path):
    return torch.load(path, weights_only=True)


def test_decoder_mode_freezes_the_encoder_and_trains_decoder_and_prompt_encoder(tiny_vit_b, tmp_path):
    from segment_anything import sam_model_registry

    outcome = train(recipe(train={"epochs": 1}), tmp_path / "out", show_progress=False)
    before = sam_model_registry["vit_b"]().state_dict()  # the seeded random initialisation training started from
    after = state(tmp_path / "out" / "model.pt")
    assert before.keys() == after.keys()
    for name, tensor in after.items():
        if name.startswith("image_encoder."):
            assert torch.equal(tensor, before[name]), name  # bit-identical
    changed = [n for n in after if n.startswith(("mask_decoder.", "prompt_encoder.")) and not torch.equal(after[n], before[n])]
    assert any(n.startswith("mask_decoder.") for n in changed) and any(n.startswith("prompt_encoder.") for n in changed)
    assert outcome.card.trains == "decoder" and outcome.card.epochs_run == 1


def test_full_mode_trains_the_image_encoder_too(tiny_vit_b, tmp_path):
    from segment_anything import sam_model_registry

    train(recipe(train={"mode": "full", "epochs": 1}, dataset={"slices_per_subject": 1}), tmp_path / "out",
          show_progress=False)
    before = sam_model_registry["vit_b"]().state_dict()
    after = state(tmp_path / "out" / "model.pt")
    for part in ("image_encoder.", "mask_decoder.", "prompt_encoder."):
        assert any(not torch.equal(after[n], before[n]) for n in after if n.startswith(part)), part


@pytest.mark.parametrize(("mode", "parts"), [("decoder", ("prompt_encoder", "mask_decoder")),
                                              ("full", ("image_encoder", "prompt_encoder", "mask_decoder"))])
def test_trainable_parameter_counts_per_mode_are_the_documented_ones(mode, parts):
    """SAM ViT-B as segment_anything builds it; docs/training.md states these counts."""
    from segment_anything import sam_model_registry

    from mskbench.training.base import trainable_parameters

    model = sam_model_registry["vit_b"]()
    trained = trainable_parameters(model, mode)
    documented = {"decoder": 4_064_560, "full": 93_735_472}[mode]
    assert sum(p.numel() for p in trained) == documented
    assert documented == sum(p.numel() for part in parts for p in getattr(model, part).parameters())
    frozen = [p for p in model.parameters() if not p.requires_grad]
    assert sum(p.numel() for p in frozen) == 93_735_472 - documented


def test_same_recipe_and_seed_give_identical_checkpoints_and_another_seed_does_not(tiny_vit_b, tmp_path):
    runs = {}
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        outcome = train(recipe(recipe={"seed": seed}), tmp_path / name, show_progress=False)
        runs[name] = (state(tmp_path / name / "model.pt"), outcome)
    first, second, other = runs["a"][0], runs["b"][0], runs["c"][0]
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert runs["a"][1].card.checkpoint_sha256 == runs["b"][1].card.checkpoint_sha256
    bases = [runs[name][1].card.base for name in "abc"]  # random init: no file, the initial weights' hash
    assert bases[0].checkpoint is None and bases[0].checkpoint_sha256 == bases[1].checkpoint_sha256
    assert any(not torch.equal(first[k], other[k]) for k in first)


def test_resume_after_a_kill_ends_with_the_uninterrupted_checkpoint(tiny_vit_b, tmp_path, monkeypatch):
    from mskbench.training import trainer

    config = {"train": {"epochs": 3, "lr": 3e-3}}
    whole = train(recipe(**config), tmp_path / "whole", show_progress=False)

    real_epoch = trainer._Run.run_epoch

    def killed_in_epoch_3(self, epoch, progress):
        if epoch == 3:
            raise KeyboardInterrupt  # as a kill: epochs 1 and 2 are saved, epoch 3 is not
        return real_epoch(self, epoch, progress)

    monkeypatch.setattr(trainer._Run, "run_epoch", killed_in_epoch_3)
    with pytest.raises(KeyboardInterrupt):
        train(recipe(**config), tmp_path / "resumed", show_progress=False)
    assert (tmp_path / "resumed" / "resume.pt").exists() and not (tmp_path / "resumed" / "model.pt").exists()
    monkeypatch.setattr(trainer._Run, "run_epoch", real_epoch)
    resumed = train(recipe(**config), tmp_path / "resumed", resume=True, show_progress=False)

    assert resumed.history == [{**row, "seconds": r["seconds"]} for row, r in zip(whole.history, resumed.history)]
    assert [row["epoch"] for row in resumed.history] == [0, 1, 2, 3]
    a, b = state(tmp_path / "whole" / "model.pt"), state(tmp_path / "resumed" / "model.pt")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert not (tmp_path / "resumed" / "resume.pt").exists()
    trained = [row["val_dice"] for row in whole.history[1:]]  # the best epoch's weights are the ones written
    assert whole.card.best_epoch == 1 + int(np.argmax(trained)) and whole.card.best_val_dice == max(trained)


def _held_out_samples():
    """Femur and tibia slices of another phantom cohort (seed 4): subjects no recipe here trains or validates on."""
    from mskbench.plugin_manager import get_registry
    from mskbench.training.data import plan_dataset, subject_samples
    from training_fixtures import PHANTOM

    held = recipe(dataset={"params": {**PHANTOM, "seed": 4, "subjects": 3}})
    planned = plan_dataset(held.datasets[0], 0, get_registry())
    return [s for sid in planned.dataset.subject_ids(None) for s in subject_samples(planned, sid, 4)[1]]


@pytest.mark.slow  # ~40 s on a busy 2-core machine: 8 epochs of the tiny SAM's decoder
def test_a_trained_decoder_beats_its_untrained_self_on_held_out_subjects(tiny_vit_b, tmp_path):
    """Measured: held-out mean Dice 0.337 untrained -> 0.819 trained (24 femur/tibia slices, GT boxes)."""
    from mskbench.segmenters.sam import SamSegmenter
    from mskbench.training.trainer import validation_dice
    from sam_family_tiny import tiny_sam

    outcome = train(recipe(train={"epochs": 8, "lr": 3e-3}, dataset={"subjects": 3, "slices_per_subject": 4}),
                    tmp_path / "out", show_progress=False)
    trained_model = tiny_sam(seed=0)
    trained_model.load_state_dict(state(tmp_path / "out" / "model.pt"))
    samples = _held_out_samples()
    untrained = validation_dice(SamSegmenter(tiny_sam(seed=0), device="cpu", precision="fp32", variant="vit_b"),
                                samples, "box")
    trained = validation_dice(SamSegmenter(trained_model, device="cpu", precision="fp32", variant="vit_b"),
                              samples, "box")
    assert trained > untrained + 0.3, (untrained, trained)
    assert outcome.card.best_val_dice > outcome.card.untrained_val_dice
    assert outcome.history[outcome.card.best_epoch]["val_dice"] == outcome.card.best_val_dice


def test_the_trained_checkpoint_runs_in_a_suite_through_the_sam_plugin(tiny_vit_b, tmp_path):
    import duckdb

    from mskbench.cli.main import main
    from training_fixtures import PHANTOM

    train(recipe(train={"epochs": 1}), tmp_path / "out", show_progress=False)
    params = ", ".join(f"{k} = {str(v).lower() if isinstance(v, bool) else repr(v).replace(chr(39), chr(34))}"
                       for k, v in {**PHANTOM, "seed": 4, "subjects": 1}.items())
    suite = tmp_path / "suite.toml"
    suite.write_text(f"""
[suite]
name = "trained"
device = "cpu"

[[datasets]]
name = "knee"
plugin = "phantom"
params = {{ {params} }}
split = "all"
labels = ["femur", "tibia"]

[[models]]
name = "finetuned"
plugin = "sam"
checkpoint = "{tmp_path / 'out' / 'model.pt'}"
on_missing_checkpoint = "error"

[[prompters]]
name = "gt_box"
plugin = "gt_box"
""")
    db = tmp_path / "r.duckdb"
    assert main(["run", str(suite), "--db", str(db)]) == 0
    with duckdb.connect(str(db)) as con:
        dice = con.execute("SELECT avg(value) FROM subject_metrics WHERE metric = 'dice'").fetchone()[0]
        (manifest,) = con.execute("SELECT manifest FROM runs").fetchone()
    assert 0.0 <= dice <= 1.0
    from mskbench.segmenters.checkpoints import sha256_file

    assert sha256_file(tmp_path / "out" / "model.pt") in manifest


@pytest.mark.parametrize("mode", ["decoder", pytest.param("full", marks=pytest.mark.slow)])  # full: ~40 s
def test_sam2_trains_and_its_checkpoint_loads_through_the_sam2_plugin(monkeypatch, tmp_path, mode):
    import mskbench.segmenters.sam2_image as sam2_module
    from mskbench.plugin_manager import get_registry
    from sam_family_tiny import TINY_SAM2_OVERRIDES

    real_build = sam2_module.build_sam2
    monkeypatch.setattr(sam2_module, "build_sam2", lambda config, ckpt_path=None, device="cpu": real_build(
        config, ckpt_path, device, hydra_overrides_extra=TINY_SAM2_OVERRIDES))
    params = {"version": "2.1", "variant": "tiny"}
    outcome = train(recipe(base={"plugin": "sam2", "params": params}, train={"mode": mode, "epochs": 1},
                           dataset={"slices_per_subject": 1}), tmp_path / "out", show_progress=False)
    torch.manual_seed(0)  # the recipe's seeded random start
    before = sam2_module.build_sam2("configs/sam2.1/sam2.1_hiera_t.yaml").state_dict()
    after = state(tmp_path / "out" / "model.pt")
    trunk = [n for n in after if n.startswith("image_encoder.")]
    assert trunk and all(torch.equal(after[n], before[n]) for n in trunk) == (mode == "decoder")
    assert any(not torch.equal(after[n], before[n]) for n in after if n.startswith("sam_mask_decoder."))
    assert outcome.card.base.plugin == "sam2" and outcome.card.base.input_convention == "upstream"

    segmenter = get_registry().create("model", "sam2", params, "models[0]", device="cpu",
                                      checkpoint=str(tmp_path / "out" / "model.pt"))
    assert all(torch.equal(segmenter.model.state_dict()[k], v) for k, v in after.items())


def test_accumulating_two_batches_of_one_equals_one_batch_of_two(tiny_vit_b, tmp_path):
    for name, batch, accumulate in (("acc", 1, 2), ("one", 2, 1)):
        train(recipe(train={"epochs": 1, "batch_size": batch, "accumulate": accumulate, "grad_clip": 0.5}),
              tmp_path / name, show_progress=False)
    acc, one = state(tmp_path / "acc" / "model.pt"), state(tmp_path / "one" / "model.pt")
    for key in one:
        torch.testing.assert_close(acc[key], one[key], rtol=1e-4, atol=1e-6)


def test_early_stopping_after_patience_epochs_without_a_better_val_dice(tiny_vit_b, tmp_path):
    """lr = 0: every epoch's val Dice equals the first's, which is not above best + min_delta."""
    outcome = train(recipe(train={"epochs": 6, "lr": 0.0, "patience": 2}), tmp_path / "out", show_progress=False)
    assert [row["epoch"] for row in outcome.history] == [0, 1, 2, 3]
    assert outcome.card.epochs_run == 3 and outcome.card.best_epoch == 1
    assert [row["best"] for row in outcome.history[1:]] == [True, False, False]


@pytest.mark.parametrize(("plugin", "params"), [("medsam", {}), ("samri", {"variant": "bp"}),
                                                ("sam", {"input_convention": "medsam"})])
def test_every_segment_anything_base_trains_and_loads_through_its_plugin(tiny_vit_b, tmp_path, plugin, params):
    from mskbench.plugin_manager import get_registry

    outcome = train(recipe(base={"plugin": plugin, "params": params}, train={"epochs": 1},
                           dataset={"slices_per_subject": 1}), tmp_path / "out", show_progress=False)
    convention = params.get("input_convention", plugin)
    assert outcome.card.base.plugin == plugin and outcome.card.base.input_convention == convention
    loaded = get_registry().create("model", plugin, params, "models[0]", device="cpu",
                                   checkpoint=str(tmp_path / "out" / "model.pt"))
    after = state(tmp_path / "out" / "model.pt")
    assert all(torch.equal(loaded.model.state_dict()[k], v) for k, v in after.items())
