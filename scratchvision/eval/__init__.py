"""Evaluation: VOC AP (devkit rules), COCO AP/AR (COCOeval semantics), segmentation mIoU."""
from scratchvision.eval.coco import (coco_eval_arrays, detections_to_coco_results,
                                     evaluate_coco, write_coco_results)
from scratchvision.eval.detection import (coco_ground_truth, coco_results,
                                          evaluate_detections)
from scratchvision.eval.segmentation import (confusion_matrix, evaluate_segmentation,
                                             segmentation_scores)
from scratchvision.eval.voc import evaluate_voc, voc_ap

__all__ = ["coco_eval_arrays", "coco_ground_truth", "coco_results", "confusion_matrix",
           "detections_to_coco_results", "evaluate_coco", "evaluate_detections",
           "evaluate_segmentation", "evaluate_voc", "segmentation_scores", "voc_ap",
           "write_coco_results"]
