"""The box head of Fast R-CNN: two fully connected layers, then two sibling predictors.

    pooled RoI features (R, C, P, P) --flatten--> fc6 -> ReLU -> fc7 -> ReLU   (TwoMLPHead)
        -> cls_score (R, K + 1)   softmax over K classes and background       (FastRCNNPredictor)
        -> bbox_pred (R, 4 (K + 1)) one (dx, dy, dw, dh) per class

Initialisation as the paper's code (and torchvision): the classifier from N(0, 0.01²), the
box regressor from N(0, 0.001²), biases 0, so training starts from uniform class scores and
boxes equal to their proposals. Faster and Mask R-CNN reuse these classes as they are.
"""
from __future__ import annotations

from scratchvision import nn
from scratchvision.nn import init


class TwoMLPHead(nn.Module):
    """fc6 and fc7 of VGG/Fast R-CNN: (R, C, P, P) -> (R, representation_size)."""

    def __init__(self, in_features: int, representation_size: int, dropout: float = 0.0):
        super().__init__()
        self.fc6 = nn.Linear(in_features, representation_size)
        self.fc7 = nn.Linear(representation_size, representation_size)
        self.dropout = dropout
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x):
        x = x.flatten(1)
        x = self.drop(self.fc6(x).relu())
        return self.drop(self.fc7(x).relu())


class FastRCNNPredictor(nn.Module):
    """Sibling outputs: class logits (R, num_classes) and boxes (R, 4 * num_classes).

    ``num_classes`` counts the background (label 0).
    """

    def __init__(self, in_features: int, num_classes: int) -> None:
        super().__init__()
        self.cls_score = nn.Linear(in_features, num_classes)
        self.bbox_pred = nn.Linear(in_features, num_classes * 4)
        init.normal_(self.cls_score.weight, std=0.01)
        init.normal_(self.bbox_pred.weight, std=0.001)
        init.zeros_(self.cls_score.bias)
        init.zeros_(self.bbox_pred.bias)

    def forward(self, x):
        x = x.flatten(1)
        return self.cls_score(x), self.bbox_pred(x)
