"""Reading image files with bounded work and errors that name the file.

``read_image(path)`` returns uint8 (H, W, 3) RGB; ``decode_image(path, flags)`` is the
``cv2.imread`` underneath, with three guarantees OpenCV does not give:

1. **A missing file** is a ``FileNotFoundError`` naming it (``cv2.imread`` just returns
   ``None``).
2. **A huge declared size is refused before decoding.** The width and height are read from
   the file's header -- PNG's IHDR chunk, JPEG's start-of-frame marker (the formats of VOC
   and COCO) -- and ``check_limit(h * w, ..., limit="max_image_pixels")`` raises a
   ``LimitError`` naming the file, so a 100000 x 100000 PNG of a few hundred bytes never
   reaches the decoder. OpenCV has no header-only read, and its ``IMREAD_REDUCED_*``
   flags still decode; the two parsers below are a few lines each and read at most the
   file's first 64 KiB for PNG, its markers for JPEG. Other formats (BMP, TIFF, WebP ...)
   are decoded under OpenCV's own limit (``CV_IO_MAX_IMAGE_PIXELS``, 2**30 pixels) and
   checked against ours after decoding.
3. **A corrupt or unreadable file** (``cv2.imread`` returns ``None``) is a ``ValueError``
   naming it.
"""
from __future__ import annotations

import struct
from pathlib import Path

import cv2
import numpy as np

from scratchvision.validation import check_limit

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# JPEG start-of-frame markers (baseline, progressive, lossless ...): 0xC0..0xCF except
# DHT (0xC4), JPG (0xC8) and DAC (0xCC), which share the range
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _png_size(head: bytes) -> tuple[int, int] | None:
    """(h, w) from a PNG's IHDR chunk: signature, length, b'IHDR', width, height (big
    endian uint32)."""
    if len(head) < 24 or head[12:16] != b"IHDR":
        return None
    w, h = struct.unpack(">II", head[16:24])
    return h, w


def _jpeg_size(f) -> tuple[int, int] | None:
    """(h, w) from a JPEG's first start-of-frame segment: walk the markers (0xFF, code,
    2-byte big-endian length) until SOFn, whose payload is precision, height, width."""
    f.seek(2)                                            # after SOI (FF D8)
    while True:
        byte = f.read(1)
        while byte == b"\xff":                           # fill bytes before a marker code
            byte = f.read(1)
        if not byte:
            return None
        code = byte[0]
        if code in (0x01, *range(0xD0, 0xD8)):           # markers without a length
            continue
        raw = f.read(2)
        if len(raw) < 2:
            return None
        (length,) = struct.unpack(">H", raw)
        if code in _SOF_MARKERS:
            payload = f.read(5)
            if len(payload) < 5:
                return None
            h, w = struct.unpack(">HH", payload[1:5])
            return h, w
        if code == 0xD9 or length < 2:                   # end of image, or a broken length
            return None
        f.seek(length - 2, 1)
        # the byte after a segment must start the next marker
        nxt = f.read(1)
        if nxt != b"\xff":
            return None
        f.seek(-1, 1)


def header_size(path: str | Path) -> tuple[int, int] | None:
    """(height, width) declared by a PNG or JPEG file's header, without decoding; ``None``
    for other formats or a header that cannot be parsed (the decoder then decides)."""
    with open(path, "rb") as f:
        head = f.read(32)
        if head.startswith(PNG_SIGNATURE):
            return _png_size(head)
        if head.startswith(b"\xff\xd8"):
            return _jpeg_size(f)
    return None


def decode_image(path: str | Path, flags: int = cv2.IMREAD_COLOR) -> np.ndarray:
    """``cv2.imread(path, flags)`` with the module doc's guarantees (BGR, as OpenCV)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image file {path} not found")
    size = header_size(path)
    if size is not None:
        check_limit(size[0] * size[1], f"{path} (declared {size[1]} x {size[0]})",
                    limit="max_image_pixels")
    img = cv2.imread(str(path), flags)
    if img is None:
        raise ValueError(f"{path}: cannot decode the image (corrupt, truncated, or not an "
                         "image format OpenCV reads)")
    check_limit(img.shape[0] * img.shape[1], f"{path} ({img.shape[1]} x {img.shape[0]})",
                limit="max_image_pixels")
    return img


def read_image(path: str | Path) -> np.ndarray:
    """An image file as uint8 (H, W, 3) RGB (see the module doc for the errors)."""
    return cv2.cvtColor(decode_image(path, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
