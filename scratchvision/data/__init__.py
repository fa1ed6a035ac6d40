"""Datasets (built-in Shapes, VOC, COCO), box/mask-carrying transforms, the DataLoader.

A dataset returns ``(image, target)``: ``image`` uint8 (H, W, 3) RGB (a Tensor after
``transforms.ToTensor``), ``target`` a dict of ``boxes`` float32 (K, 4) x1y1x2y2,
``labels`` int64 (K,) with 0 = background, ``masks`` uint8 (K, H, W) and/or ``semantic``
uint8 (H, W), plus dataset-specific fields.
"""
from scratchvision.data import mask_utils, transforms
from scratchvision.data.coco import COCODetection, load_coco_json
from scratchvision.data.loader import DataLoader, collate, list_collate, progress
from scratchvision.data.shapes import Shapes, masks_to_boxes
from scratchvision.data.voc import (VOC_CLASSES, VOCDetection, VOCSegmentation, parse_voc_xml,
                                    voc_palette)

__all__ = ["COCODetection", "DataLoader", "Shapes", "VOCDetection", "VOCSegmentation",
           "VOC_CLASSES", "collate", "list_collate", "load_coco_json", "mask_utils",
           "masks_to_boxes", "parse_voc_xml", "progress", "transforms", "voc_palette"]
