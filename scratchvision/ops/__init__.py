"""``scratchvision.ops``: detection ops (boxes, NMS, RoI pooling, anchors, box coding),
named as in ``torchvision.ops``.
"""
