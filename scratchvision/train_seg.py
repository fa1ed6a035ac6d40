"""Training and evaluation of the segmenters on Shapes: the ``train-seg``, ``eval-seg`` and
``demo`` commands.

One epoch: shuffle the training images with a generator seeded by (seed, epoch), flip a
random half horizontally, and for each batch run forward, pixel-wise cross-entropy,
backward and an optimiser step; the learning rate follows linear warm-up then cosine
decay, stepped per iteration. After each epoch: mean IoU on the val split, one JSON line
in ``log.jsonl``, and a checkpoint (model, optimiser, scheduler, the global random state).
``--resume`` loads that checkpoint and continues with exactly the same batches and
random numbers, so the loss curve equals an uninterrupted run's. At the end: the weights
(``model.npz``), a PNG grid image / ground truth / prediction and a training-curve plot.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

import scratchvision as sv
from scratchvision import nn
from scratchvision.autograd.factories import default_generator
from scratchvision.data.shapes import Shapes
from scratchvision.eval.segmentation import evaluate_segmentation
from scratchvision.nets import SEGMENTERS, build_segmenter
from scratchvision.nets.unet import center_crop

MEAN = np.array([0.5, 0.5, 0.5], np.float32)
STD = np.array([0.25, 0.25, 0.25], np.float32)

# Model sizes: 'small' is the size of the results table; 'tiny' the demo's and the tests'.
SIZES = {
    "small": {"vgg": dict(widths=(16, 32, 48, 64, 96), depths=(1, 2, 2, 2, 2), head_width=96),
              "unet": dict(base=12, depth=4)},
    "tiny": {"vgg": dict(widths=(8, 16, 24, 32, 32), depths=(1, 1, 1, 1, 1), head_width=32),
             "unet": dict(base=8, depth=3)},
}


def model_kwargs(name: str, size: str) -> dict:
    if size not in SIZES:
        raise ValueError(f"size must be one of {tuple(SIZES)}, got {size!r}")
    return dict(SIZES[size]["unet" if name == "unet" else "vgg"])


def load_split(split: str, num_images: int, image_size: int, seed: int, progress: bool = True):
    """All images (N, 3, H, W) float32 normalised, and label maps (N, H, W) int64."""
    ds = Shapes(split, num_images, image_size=image_size, seed=seed)
    images = np.empty((num_images, image_size, image_size, 3), np.uint8)
    labels = np.empty((num_images, image_size, image_size), np.int64)
    items = range(num_images)
    if progress:
        from tqdm import tqdm  # noqa: PLC0415
        items = tqdm(items, desc=f"generating {split}", leave=False, mininterval=1.0)
    for i in items:
        image, target = ds[i]
        images[i] = image
        labels[i] = target["semantic"]
    return images, labels


def normalise(images_uint8: np.ndarray) -> np.ndarray:
    """uint8 (N, H, W, 3) -> float32 (N, 3, H, W), per-channel mean/std."""
    x = (images_uint8.astype(np.float32) / 255.0 - MEAN) / STD
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def predict(model: nn.Module, images: np.ndarray, batch_size: int = 32,
            device: str = "cpu") -> np.ndarray:
    """Label maps (N, H', W') for normalised images (N, 3, H, W)."""
    model.eval()
    out = []
    with sv.no_grad():
        for i in range(0, len(images), batch_size):
            logits = model(sv.tensor(images[i:i + batch_size], device=device))
            out.append(logits.argmax(dim=1).numpy())
    return np.concatenate(out) if out else np.zeros((0,) + images.shape[2:], np.int64)


def evaluate(model, images, labels, num_classes, batch_size=32, device="cpu") -> dict:
    pred = predict(model, images, batch_size, device)
    return evaluate_segmentation(pred, center_crop(labels, *pred.shape[-2:]), num_classes)


def _checkpoint_save(path: Path, model, opt, sched, epoch: int, history: list) -> None:
    arrays = {f"model/{k}": v for k, v in model.state_dict().items()}
    ostate = opt.state_dict()
    for i, s in ostate["state"].items():
        for k, v in s.items():
            arrays[f"optim/{i}/{k}"] = np.asarray(v)
    meta = {"epoch": epoch, "history": history,
            "optim_groups": ostate["param_groups"], "sched": sched.state_dict(),
            "rng": default_generator().bit_generator.state}
    arrays["meta"] = np.array(json.dumps(meta, default=float))
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)
    tmp.replace(path)  # atomic: a crash never leaves half a checkpoint


def _checkpoint_load(path: Path, model, opt, sched):
    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(str(data["meta"]))
        model.load_state_dict({k[6:]: data[k] for k in data.files if k.startswith("model/")})
        state: dict = {}
        for k in data.files:
            if k.startswith("optim/"):
                _, i, name = k.split("/", 2)
                value = data[k]
                state.setdefault(int(i), {})[name] = int(value) if name == "step" else value
    opt.load_state_dict({"state": state, "param_groups": meta["optim_groups"]})
    sched.load_state_dict(meta["sched"])
    default_generator().bit_generator.state = meta["rng"]
    return meta["epoch"], meta["history"]


def train(args: argparse.Namespace) -> dict:
    """Train a segmenter; returns the history and final metrics (also written to disk)."""
    from tqdm import tqdm  # noqa: PLC0415
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sv.manual_seed(args.seed)
    num_classes = Shapes.num_classes
    t_data = time.perf_counter()
    train_x, train_y = load_split("train", args.train_images, args.image_size, args.seed,
                                  not args.quiet)
    val_x, val_y = load_split("val", args.val_images, args.image_size, args.seed,
                              not args.quiet)
    train_x, val_x = normalise(train_x), normalise(val_x)
    data_seconds = time.perf_counter() - t_data
    model = build_segmenter(args.model, num_classes, **model_kwargs(args.model, args.size))
    model.to(args.device)
    params = [p for p in model.parameters() if p.requires_grad]
    if args.optimizer == "adam":
        opt = nn.optim.Adam(params, lr=args.lr, weight_decay=args.weight_decay)
    else:
        opt = nn.optim.SGD(params, lr=args.lr, momentum=0.9, weight_decay=args.weight_decay)
    steps_per_epoch = max(1, len(train_x) // args.batch_size)
    total = steps_per_epoch * args.epochs
    warm = min(steps_per_epoch, total // 10 + 1)
    sched = nn.optim.lr_scheduler.SequentialLR(
        opt, [nn.optim.lr_scheduler.LinearLR(opt, 0.1, 1.0, warm),
              nn.optim.lr_scheduler.CosineAnnealingLR(opt, max(total - warm, 1), args.lr * 0.01)],
        milestones=[warm])
    ckpt = out / "checkpoint.npz"
    start_epoch, history = 0, []
    if args.resume:
        if not ckpt.exists():
            raise FileNotFoundError(f"--resume: no checkpoint at {ckpt}")
        start_epoch, history = _checkpoint_load(ckpt, model, opt, sched)
    log = open(out / "log.jsonl", "a" if args.resume else "w")
    t0 = time.perf_counter() - (history[-1]["seconds"] if history else 0.0)
    stop = args.epochs if getattr(args, "stop_after", None) is None else min(
        args.epochs, start_epoch + args.stop_after)
    for epoch in range(start_epoch, stop):
        model.train()
        rng = np.random.default_rng([args.seed, epoch])
        order = rng.permutation(len(train_x))
        flips = rng.random(len(train_x)) < 0.5
        losses = []
        bar = tqdm(range(steps_per_epoch), desc=f"{args.model} epoch {epoch + 1}/{args.epochs}",
                   disable=args.quiet, mininterval=1.0)
        for step in bar:
            idx = np.sort(order[step * args.batch_size:(step + 1) * args.batch_size])
            xb, yb = train_x[idx], train_y[idx]
            flip = flips[idx]
            xb = np.where(flip[:, None, None, None], xb[..., ::-1], xb)
            yb = np.where(flip[:, None, None], yb[..., ::-1], yb)
            logits = model(sv.tensor(np.ascontiguousarray(xb), device=args.device))
            yb = center_crop(yb, *logits.shape[-2:])
            loss = sv.functional.cross_entropy(logits, np.ascontiguousarray(yb))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.4f}")
        metrics = evaluate(model, val_x, val_y, num_classes, args.batch_size, args.device)
        record = {"epoch": epoch + 1, "loss": float(np.mean(losses)), "losses": losses,
                  "val_miou": metrics["miou"], "val_pixel_acc": metrics["pixel_acc"],
                  "val_iou": [float(v) for v in metrics["iou"]],
                  "lr": opt.param_groups[0]["lr"], "seconds": time.perf_counter() - t0}
        history.append(record)
        log.write(json.dumps(record) + "\n")
        log.flush()
        if not args.quiet:
            print(f"epoch {epoch + 1}: loss {record['loss']:.4f}  val mIoU "
                  f"{metrics['miou']:.4f}  pixel acc {metrics['pixel_acc']:.4f}  "
                  f"({record['seconds']:.0f} s)", flush=True)
        _checkpoint_save(ckpt, model, opt, sched, epoch + 1, history)
    log.close()
    nn.save(model, out / "model.npz")
    result = {"model": args.model, "size": args.size, "parameters": model.num_parameters(),
              "epochs": args.epochs, "train_images": args.train_images,
              "val_images": args.val_images, "image_size": args.image_size,
              "minutes": (history[-1]["seconds"] if history else 0.0) / 60,
              "data_seconds": data_seconds,
              "val_miou": history[-1]["val_miou"] if history else float("nan"),
              "history": history}
    (out / "result.json").write_text(json.dumps(result, indent=1))
    if not args.no_pictures:
        _pictures(model, val_x, val_y, out, args)
    return result


def _pictures(model, val_x, val_y, out: Path, args) -> None:
    """predictions.png (rows: image | ground truth | prediction) and training_curves.png."""
    import matplotlib  # noqa: PLC0415
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    from scratchvision.viz import plots  # noqa: PLC0415
    from scratchvision.viz.draw import draw_segmentation  # noqa: PLC0415
    n = min(6, len(val_x))
    pred = predict(model, val_x[:n], device=args.device)
    gt = center_crop(val_y[:n], *pred.shape[-2:])
    images = np.clip((val_x[:n].transpose(0, 2, 3, 1) * STD + MEAN) * 255, 0, 255).astype(
        np.uint8)
    images = center_crop(images.transpose(0, 3, 1, 2), *pred.shape[-2:]).transpose(0, 2, 3, 1)
    fig, axes = plt.subplots(n, 3, figsize=(6, 2 * n), squeeze=False)
    for i in range(n):
        m = evaluate_segmentation(pred[i], gt[i], Shapes.num_classes)
        for j, (title, picture) in enumerate((("image", images[i]),
                                              ("ground truth", draw_segmentation(gt[i])),
                                              (f"prediction (IoU {m['miou']:.2f})",
                                               draw_segmentation(pred[i])))):
            axes[i, j].imshow(picture, interpolation="nearest")
            axes[i, j].set_title(title, fontsize=8)
            axes[i, j].axis("off")
    fig.suptitle(f"{args.model} on Shapes val", fontsize=10)
    fig.tight_layout()
    fig.savefig(out / "predictions.png", dpi=100)
    plt.close(fig)
    plots.plot_training_curves(out / "log.jsonl", keys=["loss", "val_miou", "val_pixel_acc", "lr"],
                               path=out / "training_curves.png", title=f"{args.model} on Shapes")


def eval_command(args: argparse.Namespace) -> int:
    model = build_segmenter(args.model, Shapes.num_classes, **model_kwargs(args.model, args.size))
    model.load_state_dict(nn.load(args.weights))
    model.to(args.device)
    x, y = load_split("val", args.val_images, args.image_size, args.seed, not args.quiet)
    m = evaluate(model, normalise(x), y, Shapes.num_classes, args.batch_size, args.device)
    names = Shapes.classes
    print(f"val mIoU {m['miou']:.4f}  pixel acc {m['pixel_acc']:.4f}  "
          f"mean class acc {m['mean_class_acc']:.4f}")
    for name, iou in zip(names, m["iou"]):
        print(f"  IoU {name:<10} {iou:.4f}")
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", choices=SEGMENTERS, default="unet")
    p.add_argument("--data", choices=["shapes"], default="shapes",
                   help="dataset (the built-in Shapes)")
    p.add_argument("--size", choices=tuple(SIZES), default="small", help="model width preset")
    p.add_argument("--image-size", type=int, default=128)
    p.add_argument("--val-images", type=int, default=200)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", help="'cpu' or 'cuda'")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    _common(p)
    p.add_argument("--train-images", type=int, default=2000)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--optimizer", choices=["adam", "sgd"], default="adam")
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--out", default="runs/seg", help="folder for log, checkpoints, pictures")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.npz")
    p.add_argument("--stop-after", type=int, default=None, metavar="N",
                   help="stop after N epochs of this run, as if interrupted (resume later)")
    p.add_argument("--no-pictures", action="store_true")


def demo(args: argparse.Namespace) -> int:
    """About two minutes on a 2-core CPU: a tiny U-Net on 64x64 Shapes."""
    t0 = time.perf_counter()
    result = train(args)
    print(f"\ndemo: {args.model} ({args.size}, {result['parameters']:,} parameters) trained "
          f"{args.epochs} epochs on {args.train_images} Shapes images of {args.image_size}px "
          f"in {(time.perf_counter() - t0) / 60:.1f} min")
    print(f"val mIoU {result['val_miou']:.4f} on {args.val_images} images")
    if not args.no_pictures:
        print(f"prediction grid: {Path(args.out) / 'predictions.png'}; training curves: "
              f"{Path(args.out) / 'training_curves.png'}")
    return 0


def add_commands(sub) -> None:
    t = sub.add_parser("train-seg", help="train a segmenter on Shapes")
    add_train_arguments(t)
    t.set_defaults(func=lambda a: (train(a), 0)[1])
    e = sub.add_parser("eval-seg", help="evaluate saved segmenter weights on Shapes val")
    _common(e)
    e.add_argument("--weights", required=True, help="a model.npz written by train-seg")
    e.set_defaults(func=eval_command)
    d = sub.add_parser("demo", help="train a tiny U-Net on Shapes for about two minutes")
    add_train_arguments(d)
    d.set_defaults(func=demo, model="unet", size="tiny", image_size=64, train_images=800,
                   val_images=100, epochs=14, out="runs/demo", batch_size=16)
