"""Pictures: boxes, masks and segmentations drawn on images, conv-arithmetic diagrams,
Selective Search regions, precision-recall and training curves. matplotlib is imported
only by the functions that plot.
"""
from .proposals import draw_proposals, save_proposals_png, segmentation_image  # noqa: F401
from .draw import (class_color, draw_boxes, draw_masks, draw_segmentation,  # noqa: F401
                   make_grid, save_image, save_image_grid)
from .plots import plot_pr_curves, plot_training_curves, read_log  # noqa: F401
from .conv_arithmetic import conv_arithmetic, conv_arithmetic_maps  # noqa: F401
