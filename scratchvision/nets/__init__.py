"""Backbones, detectors and segmenters: one readable file per model."""
from scratchvision.nets.deconvnet import DeconvNet
from scratchvision.nets.dilated import ContextModule, DilatedNet
from scratchvision.nets.fcn import FCN, fcn8s, fcn16s, fcn32s
from scratchvision.nets.unet import UNet
from scratchvision.nets.vgg import ConvClassifier, VGGBackbone

SEGMENTERS = ("fcn32s", "fcn16s", "fcn8s", "deconvnet", "dilated", "unet")


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


__all__ = ["SEGMENTERS", "ContextModule", "ConvClassifier", "DeconvNet", "DilatedNet", "FCN",
           "UNet", "VGGBackbone", "build_segmenter", "fcn8s", "fcn16s", "fcn32s"]
