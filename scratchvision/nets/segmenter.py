"""The semantic segmenters' side of the model contract (FCN, DeconvNet, DilatedNet, U-Net).

Every model speaks to the one trainer (``scratchvision/trainer.py``) through
``loss(images, targets) -> dict[str, Tensor]`` and is used through ``predict(images)``.
A segmenter's ``forward`` gives per-pixel class scores (N, C, H', W'); this mixin adds:

- ``loss(images, labels)``: ``{"loss_ce": pixel-wise cross-entropy}``, the label maps
  centre-cropped to the scores' size first (U-Net with valid padding outputs less than
  its input; for the other nets the crop is the identity);
- ``predict(images)``: the (N, H', W') int64 label maps (argmax over classes), in eval
  mode and without a graph.

``center_crop`` lives here (U-Net re-exports it) because loss, prediction and evaluation
all crop the ground truth the same way.
"""
from __future__ import annotations

import numpy as np

import scratchvision as sv
from scratchvision import functional as F
from scratchvision.autograd import Tensor


def center_crop(x, height: int, width: int):
    """The central height x width window of the last two dims (a Tensor or an array)."""
    h, w = x.shape[-2:]
    top, left = (h - height) // 2, (w - width) // 2
    return x[..., top:top + height, left:left + width]


class Segmenter:
    """Mixin for ``nn.Module`` segmenters whose ``forward`` returns (N, C, H', W') scores."""

    def loss(self, images, labels) -> dict[str, Tensor]:
        """Pixel-wise cross-entropy of the scores for ``images`` against ``labels``.

        Parameters
        ----------
        images : (N, C_in, H, W) Tensor on the model's device (or an array, moved there)
        labels : (N, H, W) int64 class indices (NumPy), centre-cropped to (H', W')

        Returns
        -------
        ``{"loss_ce": scalar Tensor}``
        """
        logits = self(self._as_input(images))
        labels = center_crop(labels, *logits.shape[-2:])
        if isinstance(labels, np.ndarray):
            labels = np.ascontiguousarray(labels)  # flipped/cropped views: one copy
        return {"loss_ce": F.cross_entropy(logits, labels)}

    def predict(self, images) -> np.ndarray:
        """(N, H', W') int64 label maps for (N, C_in, H, W) images, as a NumPy array.

        Runs in eval mode (batch norm on running statistics, no dropout) under ``no_grad``
        and puts the model back in the mode it was in.
        """
        was_training = self.training
        self.eval()
        try:
            with sv.no_grad():
                scores = self(self._as_input(images))
                return scores.argmax(dim=1).numpy().astype(np.int64, copy=False)
        finally:
            self.train(was_training)

    def _as_input(self, images) -> Tensor:
        """A Tensor as is; an array becomes a Tensor on the device of the parameters."""
        if isinstance(images, Tensor):
            return images
        if isinstance(images, np.ndarray):
            images = np.ascontiguousarray(images)
        return sv.tensor(images, device=next(iter(self.parameters())).device)
