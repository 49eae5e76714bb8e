"""Subject subsets, sampling shares, losses, and the card a run writes."""

from __future__ import annotations

import numpy as np
import torch

from mskbench.training.data import choose_subjects
from sam_family_tiny import single_torch_thread  # noqa: F401  (autouse fixture)
from training_fixtures import recipe, tiny_vit_b  # noqa: F401  (fixture)


def test_subject_subsets_are_the_documented_seeded_nested_choice():
    ids = [f"s{i:02d}" for i in range(40)]
    shuffled = list(reversed(ids))
    for seed in (0, 7):
        expected = [str(v) for v in np.random.default_rng(seed).permutation(sorted(ids))]
        assert choose_subjects(shuffled, "all", seed) == expected
        subsets = [choose_subjects(shuffled, k, seed) for k in (5, 10, 20, 40)]
        assert [len(s) for s in subsets] == [5, 10, 20, 40]
        assert all(set(a) <= set(b) for a, b in zip(subsets, subsets[1:]))  # nested
        assert subsets[0] == expected[:5]
    assert choose_subjects(ids, 5, 0) != choose_subjects(ids, 5, 1)


def test_the_card_lists_the_chosen_subjects_and_round_trips(tiny_vit_b, tmp_path):
    from mskbench.plugin_manager import get_registry
    from mskbench.segmenters.checkpoints import sha256_file
    from mskbench.training.card import card_for_checkpoint, read_card
    from mskbench.training.data import plan_dataset
    from mskbench.training.trainer import train

    config = recipe(train={"epochs": 1}, recipe={"seed": 5}, dataset={"subjects": 3})
    outcome = train(config, tmp_path / "out", show_progress=False)
    card = read_card(tmp_path / "out" / "card.json")
    assert card == outcome.card
    planned = plan_dataset(config.datasets[0], 0, get_registry())
    train_ids = planned.dataset.subject_ids("train")
    assert set(card.data["train"]["knee"]) == set(choose_subjects(train_ids, 3, 5))
    assert set(card.data["val"]["knee"]) == set(planned.dataset.subject_ids("val"))
    assert card.training_subjects()["knee"] == set(choose_subjects(train_ids, 3, 5)) | set(planned.dataset.subject_ids("val"))
    assert card.checkpoint_sha256 == sha256_file(tmp_path / "out" / "model.pt")
    assert card.base.plugin == "sam" and card.base.checkpoint is None and card.base.input_convention == "upstream"
    assert card.prompt.max_shift == 20 and card.prompt.shift_space == "model_1024"
    assert card.subjects == {"knee": 3} and card.mix == {"knee": 1.0} and card.datasets["knee"]["plugin"] == "phantom"
    assert card.datasets["knee"]["params"]["seed"] == 3 and card.recipe_sha256 == config.sha256
    assert card_for_checkpoint(tmp_path / "out" / "model.pt") == card

    import duckdb

    rows = duckdb.sql(f"SELECT epoch, val_dice, best FROM '{tmp_path / 'out' / 'metrics.parquet'}' ORDER BY epoch").fetchall()
    assert [r[0] for r in rows] == [0, 1] and rows[0][1] == card.untrained_val_dice and rows[1][1] == card.best_val_dice


def test_dataset_weights_are_shares_of_each_epoch():
    from mskbench.training.data import Sample
    from mskbench.training.trainer import epoch_order

    blank = np.zeros((2, 2), np.uint8)
    samples = [Sample("big", "s", i, 1, blank, blank.astype(bool)) for i in range(90)]
    samples += [Sample("small", "s", i, 1, blank, blank.astype(bool)) for i in range(10)]
    drawn = [samples[i].dataset for e in range(30) for i in epoch_order(samples, {"big": 1.0, "small": 1.0}, 0, e)]
    assert len(drawn) == 3000 and abs(drawn.count("small") / len(drawn) - 0.5) < 0.03  # equal weights: half each
    single = epoch_order(samples, {"big": 1.0, "small": 0.0}, 0, 1)
    assert sorted(single) == list(range(90))  # one weighted dataset: a permutation of its samples
    assert epoch_order(samples, {"big": 1.0, "small": 0.0}, 0, 2) != single


def test_losses_are_monai_configured_as_documented():
    from monai.losses import DiceCELoss, DiceLoss, FocalLoss

    from mskbench.training.losses import make_loss

    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 1, 12, 10, generator=generator)
    target = (torch.rand(3, 1, 12, 10, generator=generator) > 0.6).float()
    dice = DiceLoss(sigmoid=True)(logits, target)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, target)
    torch.testing.assert_close(make_loss("dice+bce")(logits, target), dice + bce)
    focal = FocalLoss(use_softmax=False)(logits, target)
    torch.testing.assert_close(make_loss("focal20+dice")(logits, target), 20 * focal + dice)
    two_class = torch.cat([torch.zeros_like(logits), logits], dim=1)
    onehot = torch.cat([1 - target, target], dim=1)
    expected = DiceLoss(softmax=True)(two_class, onehot) + torch.nn.functional.cross_entropy(two_class, target[:, 0].long())
    torch.testing.assert_close(make_loss("dice+ce")(logits, target), expected)
    assert DiceCELoss  # the class the recipe names map to


def test_the_learning_rate_warms_up_linearly_then_follows_the_cosine_with_restarts():
    """Against the closed forms: warm-up lr·(f + (1-f)·s/W), then η_min + (lr-η_min)(1 + cos(π t/T))/2, T = epochs·steps."""
    import math

    from mskbench.training.trainer import _scheduler

    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.AdamW([param], lr=0.1)
    train = {"restart_epochs": 2, "restart_mult": 1, "min_lr": 0.01, "warmup_steps": 4}
    scheduler = _scheduler(optimizer, train, steps_per_epoch=5)  # a period of 10 steps
    lrs = []
    for _ in range(4 + 25):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    warmup = [0.1 * (1e-3 + (1 - 1e-3) * s / 4) for s in range(4)]
    cosine = [0.01 + 0.09 * (1 + math.cos(math.pi * (t % 10) / 10)) / 2 for t in range(25)]
    np.testing.assert_allclose(lrs, warmup + cosine, rtol=1e-9, atol=1e-12)
