"""Pictures: boxes, masks and segmentations drawn on images, conv-arithmetic diagrams,
Selective Search regions, precision-recall and training curves. matplotlib is imported
only by the functions that plot.
"""
from .proposals import draw_proposals, save_proposals_png, segmentation_image  # noqa: F401
