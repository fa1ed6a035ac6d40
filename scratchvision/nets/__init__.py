"""Backbones, detectors and segmenters: one readable file per model."""
from scratchvision.nets.deconvnet import DeconvNet
from scratchvision.nets.dilated import ContextModule, DilatedNet
from scratchvision.nets.fcn import FCN, fcn8s, fcn16s, fcn32s
from scratchvision.nets.mtcnn import MTCNN
from scratchvision.nets.resnet import BasicBlock, Bottleneck, ResNet, resnet18, resnet50
from scratchvision.nets.unet import UNet
from scratchvision.nets.vgg import ConvClassifier, VGGBackbone

SEGMENTERS = ("fcn32s", "fcn16s", "fcn8s", "deconvnet", "dilated", "unet")
DETECTORS = ("sliding_window", "rcnn", "fast_rcnn", "faster_rcnn", "mask_rcnn", "yolo_v1", "ssd")


def build_segmenter(name: str, num_classes: int, **kwargs):
    """A segmenter by name: fcn32s, fcn16s, fcn8s, deconvnet, dilated or unet."""
    if name in ("fcn32s", "fcn16s", "fcn8s"):
        return FCN(num_classes, name[3:], **kwargs)
    if name == "deconvnet":
        return DeconvNet(num_classes, **kwargs)
    if name == "dilated":
        return DilatedNet(num_classes, **kwargs)
    if name == "unet":
        return UNet(num_classes, **kwargs)
    raise ValueError(f"unknown segmenter {name!r}; choose from {SEGMENTERS}")


def build_detector(name: str, num_classes: int, size: str = "small", **kwargs):
    """A detector by name (``DETECTORS``) at a width preset (each model file's ``SIZES``);
    ``kwargs`` override the preset and reach the model's constructor."""
    if name == "fast_rcnn":
        from scratchvision.nets import fast_rcnn as module  # noqa: PLC0415
        cls = module.FastRCNN
    elif name == "faster_rcnn":
        from scratchvision.nets import faster_rcnn as module
        cls = module.FasterRCNN
    elif name == "mask_rcnn":
        from scratchvision.nets import mask_rcnn as module
        cls = module.MaskRCNN
    elif name == "rcnn":
        from scratchvision.nets import rcnn as module  # noqa: PLC0415
        cls = module.RCNN
    elif name == "sliding_window":
        from scratchvision.nets import sliding_window as module  # noqa: PLC0415
        cls = module.SlidingWindowDetector
    elif name == "yolo_v1":
        from scratchvision.nets import yolo_v1 as module
        cls = module.YOLOv1
    elif name == "ssd":
        from scratchvision.nets import ssd as module
        cls = module.SSD
    else:
        raise ValueError(f"unknown detector {name!r}; choose from {DETECTORS}")
    if size not in module.SIZES:
        raise ValueError(f"size must be one of {tuple(module.SIZES)}, got {size!r}")
    return cls(num_classes, **dict(module.SIZES[size], **kwargs))


__all__ = ["DETECTORS", "SEGMENTERS", "ContextModule", "ConvClassifier", "DeconvNet",
           "DilatedNet", "FCN", "MTCNN", "UNet", "VGGBackbone", "build_detector",
           "build_segmenter", "fcn8s", "fcn16s", "fcn32s"]
__all__ += ["BasicBlock", "Bottleneck", "ResNet", "resnet18", "resnet50"]
