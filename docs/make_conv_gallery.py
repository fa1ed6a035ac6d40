"""Write the conv-arithmetic gallery: ``python docs/make_conv_gallery.py``.

One PNG per case in ``docs/conv_arithmetic/``, drawn by ``scratchvision.viz.conv_arithmetic``
(which reads the highlighted cells off the conv kernels' own index map), shown by
``docs/conv_arithmetic.md``.
"""
from __future__ import annotations

import sys
from pathlib import Path

try:
    from scratchvision.viz.conv_arithmetic import conv_arithmetic
except ImportError:     # run from a checkout without installing: use the repo root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from scratchvision.viz.conv_arithmetic import conv_arithmetic

OUT = Path(__file__).resolve().parent / "conv_arithmetic"

# name: (kind, in_size, kernel, stride, padding, dilation, output_padding, out_cell, caption)
CASES = {
    "plain": ("conv", 4, 3, 1, 0, 1, 0, (1, 1),
              "No padding, unit stride: a 3x3 kernel fits 2x2 times in a 4x4 input."),
    "padded": ("conv", 5, 3, 1, 1, 1, 0, (0, 0),
               "'Same' padding (p = k // 2): the output keeps the input size; the corner "
               "output reads five padding cells."),
    "full_padding": ("conv", 5, 3, 1, 2, 1, 0, (0, 0),
                     "Full padding (p = k - 1): every input/kernel overlap is an output, "
                     "out = in + k - 1."),
    "strided": ("conv", 5, 3, 2, 0, 1, 0, (1, 1),
                "Stride 2, no padding: out = (5 - 3) // 2 + 1 = 2."),
    "strided_padded": ("conv", 5, 3, 2, 1, 1, 0, (1, 1),
                       "Stride 2, padding 1: out = (5 + 2 - 3) // 2 + 1 = 3."),
    "dilated": ("conv", 7, 3, 1, 0, 2, 0, (0, 0),
                "Dilation 2: the 3x3 kernel's taps are two cells apart and span 5x5."),
    "transposed": ("transposed", 2, 3, 1, 0, 1, 0, (1, 1),
                   "Transposed conv, unit stride, no padding: the direct-conv equivalent "
                   "pads the 2x2 input by k - 1 = 2 (full padding), out = 4."),
    "transposed_strided": ("transposed", 3, 3, 2, 0, 1, 0, (2, 3),
                           "Transposed conv, stride 2: one zero inserted between input "
                           "cells ('fractionally strided'), out = (3-1)*2 + 3 = 7."),
    "transposed_padded_output_padding": (
        "transposed", 3, 3, 2, 1, 1, 1, (2, 3),
        "Transposed conv, stride 2, padding 1, output_padding 1: the inverse of the "
        "'strided_padded' shape 6 -> 3, out = (3-1)*2 - 2 + 3 + 1 = 6."),
    "transposed_k4_s2_p1": ("transposed", 3, 4, 2, 1, 1, 0, (2, 2),
                            "The usual x2 learned upsampling (FCN, DCGAN, U-Net variants): "
                            "k4 s2 p1 doubles the size, out = 6."),
}


INTRO = """# Convolution arithmetic, drawn from the kernels

Each picture shows which input cells one output cell of a convolution reads, in the style
of Dumoulin & Visin, *A guide to convolution arithmetic for deep learning* (2016). The
highlighted cells are not drawn by hand: `scratchvision.viz.conv_arithmetic` pushes a
one-hot output gradient back through the conv kernels' own input-gradient
(`scratchvision.kernels.conv.conv2d_backward_input` / `conv_transpose2d_backward_input`,
reference version, all-ones weight) and colours the cells where it lands.

Left: the input side (blue; dark blue = read by the dark output cell; red outlines = the
kernel's taps; white dashed = padding). Transposed convolutions are drawn as their
equivalent direct convolution: `stride - 1` zeros (grey, dotted) inserted between input
cells, `dilation*(k-1) - padding` cells of padding around them (plus `output_padding` at
the bottom/right), then a stride-1 convolution. Right: the output (cyan).

Output sizes (torch's formulas):

- convolution: `out = (in + 2*padding - dilation*(k-1) - 1) // stride + 1`
- transposed: `out = (in-1)*stride - 2*padding + dilation*(k-1) + output_padding + 1`

Regenerate the pictures and this page with `python docs/make_conv_gallery.py`.
"""


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    page = [INTRO]
    for name, (kind, n, k, s, p, d, op, cell, caption) in CASES.items():
        conv_arithmetic(kind, n, k, s, p, d, op, out_cell=cell, path=OUT / f"{name}.png")
        print(f"wrote {OUT / name}.png")
        args = f"kind={kind!r}, in_size={n}, kernel={k}, stride={s}, padding={p}, dilation={d}"
        args += f", output_padding={op}" if kind == "transposed" else ""
        title = name.replace("_", " ")
        page += [f"## {title}", "", caption, "", f"`conv_arithmetic({args}, out_cell={cell})`",
                 "", f"![{title}](conv_arithmetic/{name}.png)", ""]
    (OUT.parent / "conv_arithmetic.md").write_text("\n".join(page))
    print(f"wrote {OUT.parent / 'conv_arithmetic.md'}")


if __name__ == "__main__":
    main()
