"""The training losses, by recipe name; each is MONAI's implementation, configured as the literature uses it.

All take logits ``(N, 1, H, W)`` (one binary mask per prompt, as the SAM
family decodes) and a float target of the same shape, and average over the
batch (Dice per sample, then the mean):

- ``dice+bce``: soft Dice on the sigmoid plus binary cross-entropy (MedSAM's
  training loss), :class:`monai.losses.DiceCELoss` with ``sigmoid=True``
  (for one channel MONAI takes the cross-entropy term as BCE with logits);
- ``dice+ce``: the two-class softmax form: logits ``[0, z]`` for
  (background, foreground), Dice over both classes plus cross-entropy
  (:class:`~monai.losses.DiceCELoss` with ``softmax=True``), the nnU-Net
  style loss;
- ``focal20+dice``: 20 · focal + Dice on the sigmoid (SAMRI's loss),
  :class:`monai.losses.DiceFocalLoss` with ``lambda_focal=20``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _dice_bce() -> LossFn:
    from monai.losses import DiceCELoss

    return DiceCELoss(sigmoid=True)


def _dice_ce() -> LossFn:
    from monai.losses import DiceCELoss

    loss = DiceCELoss(softmax=True, to_onehot_y=True)

    def two_class(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return loss(torch.cat([torch.zeros_like(logits), logits], dim=1), target)

    return two_class


def _focal20_dice() -> LossFn:
    from monai.losses import DiceFocalLoss

    return DiceFocalLoss(sigmoid=True, lambda_focal=20.0, lambda_dice=1.0)


LOSSES: dict[str, Callable[[], LossFn]] = {
    "dice+bce": _dice_bce,
    "dice+ce": _dice_ce,
    "focal20+dice": _focal20_dice,
}


def make_loss(name: str) -> LossFn:
    """The loss named by the recipe (the name was checked against :data:`LOSSES` when it was read)."""
    return LOSSES[name]()
