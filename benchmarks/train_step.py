"""One training step (forward, loss, backward, Adam update) of the small U-Net and FCN-8s
used in docs/RESULTS.md, against the same architectures written in PyTorch CPU, timed in
one process on the same batch (16 x 3 x 128 x 128, 4 classes); and of the small Faster
R-CNN (4 images, as train-det's default batch) and SSD (16 images) of 128 x 128 Shapes
images, against torchvision's own ``FasterRCNN`` and ``SSD`` configured to do the same work.

The PyTorch segmenters are built here layer for layer from the scratchvision model's own
module tree (conv, transposed conv, batch norm, ReLU, pooling, dropout), and the
scratchvision weights are copied in, so both sides do the same arithmetic. The torchvision
detectors are built in ``benchmarks/_torch_detectors.py`` (its docstring tables every
setting matched, and the few that torchvision does not expose); their backbones and heads
get the scratchvision weights too, and both sides see the same normalised images and
targets. The detector step is ``model.loss(images, targets)`` (torchvision:
``model(images, targets)`` in training mode), the terms summed, backward, Adam. Without
torchvision the detector rows time scratchvision alone and the summary says why.
"""
from __future__ import annotations

import numpy as np

from benchmarks.harness import Row, timed_row, try_import


def _sv_step(model, x, y):
    import scratchvision as sv
    from scratchvision import nn
    opt = nn.optim.Adam(model.parameters(), lr=1e-3)
    xt = sv.tensor(x)

    def step():
        loss = sv.functional.cross_entropy(model(xt), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return step


def _torch_unet(torch, m):
    """The same U-Net as scratchvision.nets.UNet (same padding), weights copied."""
    tnn = torch.nn

    def seq(block):
        layers = []
        for layer in block:
            name = type(layer).__name__
            if name == "Conv2d":
                c = tnn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size,
                               stride=layer.stride, padding=layer.padding,
                               dilation=layer.dilation, groups=layer.groups,
                               bias=layer.bias is not None)
                _copy(torch, c, layer)
                layers.append(c)
            elif name == "BatchNorm2d":
                layers.append(tnn.BatchNorm2d(layer.num_features))
            elif name == "ReLU":
                layers.append(tnn.ReLU())
        return tnn.Sequential(*layers)

    class TorchUNet(tnn.Module):
        def __init__(self):
            super().__init__()
            self.down = tnn.ModuleList([seq(b) for b in m.down])
            self.up = tnn.ModuleList()
            for u in m.up:
                t = tnn.ConvTranspose2d(u.in_channels, u.out_channels, 2, stride=2)
                _copy(torch, t, u)
                self.up.append(t)
            self.up_convs = tnn.ModuleList([seq(b) for b in m.up_convs])
            self.classifier = tnn.Conv2d(m.classifier.in_channels, m.classifier.out_channels, 1)
            _copy(torch, self.classifier, m.classifier)
            self.depth = m.depth

        def forward(self, x):
            skips = []
            for i, block in enumerate(self.down):
                x = block(x)
                if i < self.depth:
                    skips.append(x)
                    x = torch.nn.functional.max_pool2d(x, 2)
            for up, block, skip in zip(self.up, self.up_convs, reversed(skips)):
                x = block(torch.cat([skip, up(x)], 1))
            return self.classifier(x)
    return TorchUNet()


def _torch_fcn8s(torch, m):
    """The same FCN-8s as scratchvision.nets.FCN('8s'), weights copied."""
    tnn = torch.nn

    def conv_like(layer):
        cls = tnn.ConvTranspose2d if type(layer).__name__ == "ConvTranspose2d" else tnn.Conv2d
        c = cls(layer.in_channels, layer.out_channels, layer.kernel_size, stride=layer.stride,
                padding=layer.padding, groups=layer.groups, bias=layer.bias is not None,
                dilation=layer.dilation)
        _copy(torch, c, layer)
        return c

    def seq(block):
        out = []
        for layer in block:
            name = type(layer).__name__
            if name in ("Conv2d", "ConvTranspose2d"):
                out.append(conv_like(layer))
            elif name == "BatchNorm2d":
                out.append(tnn.BatchNorm2d(layer.num_features))
            elif name == "ReLU":
                out.append(tnn.ReLU())
            elif name in ("Sequential",):
                out.append(seq(layer))
            elif name in ("Dropout2d",):
                out.append(tnn.Dropout2d(layer.p))
        return tnn.Sequential(*out)

    class TorchFCN(tnn.Module):
        def __init__(self):
            super().__init__()
            self.stages = tnn.ModuleList([seq(s) for s in m.backbone.stages])
            h = m.head
            self.head = tnn.Sequential(seq(h.fc6), tnn.Dropout2d(h.drop6.p), seq(h.fc7),
                                       tnn.Dropout2d(h.drop7.p))
            self.score_fr, self.score_pool4 = conv_like(m.score_fr), conv_like(m.score_pool4)
            self.score_pool3 = conv_like(m.score_pool3)
            self.upscore2, self.upscore_pool4 = conv_like(m.upscore2), conv_like(m.upscore_pool4)
            self.upscore = conv_like(m.upscore)

        def forward(self, x):
            feats = []
            for s in self.stages:
                x = torch.nn.functional.max_pool2d(s(x), 2)
                feats.append(x)
            score = self.score_fr(self.head(feats[4]))
            score = self.upscore2(score) + self.score_pool4(feats[3])
            score = self.upscore_pool4(score) + self.score_pool3(feats[2])
            return self.upscore(score)
    return TorchFCN()


def _copy(torch, t_layer, sv_layer):
    with torch.no_grad():
        t_layer.weight.copy_(torch.from_numpy(sv_layer.weight.numpy()))
        if sv_layer.bias is not None:
            t_layer.bias.copy_(torch.from_numpy(sv_layer.bias.numpy()))


def _torch_step(torch, model, x, y):
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    def step():
        loss = torch.nn.functional.cross_entropy(model(xt), yt)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return step


def _sv_det_step(model, x, targets):
    """scratchvision's detector step, as the trainer runs it (``trainer.py``)."""
    import scratchvision as sv
    from scratchvision import nn
    model.train()
    opt = nn.optim.Adam(model.parameters(), lr=1e-3)
    xt = sv.tensor(x)

    def step():
        losses = model.loss(xt, targets)
        total = None
        for value in losses.values():
            total = value if total is None else total + value
        opt.zero_grad()
        total.backward()
        opt.step()
    return step


def _torch_det_step(torch, model, x, targets):
    """torchvision's detector step: the loss dict of a training-mode forward, summed."""
    from benchmarks._torch_detectors import torch_targets
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    images = list(torch.from_numpy(np.ascontiguousarray(x)))
    ttargets = torch_targets(torch, targets)

    def step():
        losses = model(images, ttargets)
        total = sum(losses.values())
        opt.zero_grad()
        total.backward()
        opt.step()
    return step


def _peer_absent(torch) -> str:
    """Why the torchvision peer rows are missing (``try_import`` hides the error)."""
    if torch is None:
        return "PyTorch is not installed"
    try:
        import torchvision  # noqa: F401
    except Exception as e:
        return f"torchvision is not importable here (torch {torch.__version__}): {e}"
    return "torchvision did not import"


# (name, preset, batch, image size) of the detector rows; quick: the tiny presets
DETECTORS = {False: (("faster_rcnn", "small", 4, 128), ("ssd", "small", 16, 128)),
             True: (("faster_rcnn", "tiny", 2, 64), ("ssd", "tiny", 2, 32))}


def _detector_rows(quick: bool, torch, torchvision) -> list[Row]:
    import scratchvision as sv
    from scratchvision.nets import build_detector
    from scratchvision.nets.detection.images import normalise
    from scratchvision.train_det import load_split
    rows = []
    absent = None if torchvision is not None else _peer_absent(torch)
    repeat = 1 if quick else 5
    for name, preset, batch, size in DETECTORS[quick]:
        u8, raw = load_split("train", batch, size, 0, progress=False)
        x = normalise(u8)
        targets = [{"boxes": t["boxes"], "labels": t["labels"]} for t in raw]
        sv.manual_seed(0)
        model = build_detector(name, 4, preset)
        case = (f"{name} ({preset}, {model.num_parameters():,} params) step b{batch} "
                f"{size}x{size}")
        tmodel = None
        if torchvision is not None:
            from benchmarks import _torch_detectors as td
            torch.manual_seed(0)
            tmodel = (td.torch_faster_rcnn(torch, torchvision, model, size)
                      if name == "faster_rcnn" else td.torch_ssd(torch, torchvision, model))
            diff = td.check(torch, model, tmodel, x)     # before either model trains
        row = timed_row(case, "scratchvision", _sv_det_step(model, x, targets),
                        repeat=repeat, warmup=1)
        row.extra["params"] = model.num_parameters()
        if absent:
            row.note = f"no torchvision peer: {absent}"
            row.extra["peer_absent"] = absent
        rows.append(row)
        if tmodel is not None:
            n = td.num_parameters(tmodel)
            peer = timed_row(case, "torchvision", _torch_det_step(torch, tmodel, x, targets),
                             peer=True, repeat=repeat, warmup=1,
                             note=f"{n:,} params; backbone max |diff| {diff['features']:.1e}")
            peer.extra.update(params=n, check=diff)
            rows.append(peer)
    return rows


def run(quick: bool = False) -> list[Row]:
    import scratchvision as sv
    from scratchvision.nets import build_segmenter
    from scratchvision.train_seg import model_kwargs
    torch = try_import("torch")
    rng = np.random.default_rng(0)
    batch, size = (2, 64) if quick else (16, 128)
    x = rng.standard_normal((batch, 3, size, size)).astype(np.float32)
    y = rng.integers(0, 4, (batch, size, size))
    rows = []
    for name, builder in (("unet", _torch_unet), ("fcn8s", _torch_fcn8s)):
        sv.manual_seed(0)
        model = build_segmenter(name, 4, **model_kwargs(name, "small"))
        case = f"{name} (small, {model.num_parameters():,} params) step b{batch} {size}x{size}"
        repeat = 2 if quick else 5
        rows.append(timed_row(case, "scratchvision", _sv_step(model, x, y), repeat=repeat,
                              warmup=1))
        if torch is not None:
            tmodel = builder(torch, model)
            rows.append(timed_row(case, "torch", _torch_step(torch, tmodel, x, y), peer=True,
                                  repeat=repeat, warmup=1))
    return rows + _detector_rows(quick, torch, try_import("torchvision"))


def summary(rows: list[Row]) -> str:
    """Per case, scratchvision's time over the peer's against the 2x goal (or why the
    peer is absent), and for the detectors both parameter counts."""
    lines = []
    for case in dict.fromkeys(r.case for r in rows):
        mine = [r for r in rows if r.case == case and not r.peer]
        peers = [r for r in rows if r.case == case and r.peer]
        if not mine:
            continue
        ours = mine[0]
        if not peers:
            if "peer_absent" in ours.extra:
                lines.append(f"{case}: no torchvision peer ({ours.extra['peer_absent']}); "
                             f"scratchvision alone {ours.seconds * 1e3:.1f} ms a step")
            continue
        peer = min(peers, key=lambda r: r.seconds)
        who = "PyTorch CPU" if peer.impl == "torch" else f"{peer.impl} (PyTorch CPU)"
        ratio = ours.seconds / peer.seconds
        line = (f"{case}: {ratio:.2f}x {who} (goal <= 2x: "
                f"{'met' if ratio <= 2 else 'NOT met'})")
        if "params" in peer.extra:
            same = "equal" if peer.extra["params"] == ours.extra.get("params") else "DIFFER"
            line += (f"; params {ours.extra.get('params', 0):,} vs {peer.extra['params']:,} "
                     f"({same})")
        lines.append(line)
    return "\n".join(lines)
