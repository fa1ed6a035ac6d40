"""Training and evaluation of the segmenters on Shapes (or Nuclei): the ``train-seg``,
``eval-seg`` and ``demo`` commands.

This file holds what is particular to segmentation on Shapes: the data (generated once,
normalised), the batches (each epoch shuffles the training images with a generator
seeded by (seed, epoch) and flips a random half horizontally), the model (by name and
size preset), the metric (mean IoU on the val split) and the pictures. The loop itself -
pixel-wise cross-entropy from ``model.loss`` (``nets/segmenter.py``), warm-up + cosine
learning rate per iteration, ``log.jsonl``, checkpoints and exact ``--resume`` - is the
shared ``scratchvision.trainer.Trainer``. At the end: the weights (``model.npz``),
``result.json``, a PNG grid image / ground truth / prediction and a training-curve plot.

``--data nuclei`` trains and evaluates on the stardist microscopy tiles
(``data/nuclei.py``, 2 classes): ``--image-size`` is the tile side (at most 128, the val
strip's width), ``--train-images`` / ``--val-images`` only cap the number of tiles (the
first N in raster order; the defaults exceed the tile counts, so all tiles are used), and
the log and ``result.json`` add ``val_foreground_iou`` (the IoU of class 1, nucleus).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

import scratchvision as sv
from scratchvision import nn
from scratchvision.cli import (add_parser, device, nonnegative_float, nonnegative_int,
                               positive_float, positive_int)
from scratchvision.data.loader import progress as data_progress
from scratchvision.data.normalization import denormalise, normalise
from scratchvision.data.nuclei import Nuclei
from scratchvision.data.shapes import Shapes
from scratchvision.distributed import shard
from scratchvision.eval.segmentation import evaluate_segmentation
from scratchvision.nets import SEGMENTERS, build_segmenter
from scratchvision.nets.segmenter import center_crop
from scratchvision.trainer import (Trainer, add_data_parallel_arguments, data_parallel,
                                   load_weights)

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


DATASETS = {"shapes": Shapes, "nuclei": Nuclei}


def load_split(split: str, num_images: int, image_size: int, seed: int, progress: bool = True,
               data: str = "shapes"):
    """All images (N, H, W, 3) uint8 and label maps (N, H, W) int64. For ``data='nuclei'``
    the tiles of side ``image_size``, at most ``num_images`` of them (the first)."""
    if data == "nuclei":
        ds = Nuclei(split, tile=image_size)
        n = min(num_images, len(ds))
        return (np.stack([ds[i][0] for i in range(n)]),
                np.stack([ds.semantic(i) for i in range(n)]))
    ds = Shapes(split, num_images, image_size=image_size, seed=seed)
    images = np.empty((num_images, image_size, image_size, 3), np.uint8)
    labels = np.empty((num_images, image_size, image_size), np.int64)
    for i in data_progress(range(num_images), desc=f"generating {split}", leave=False,
                           mininterval=1.0, disable=not progress):
        image, target = ds[i]
        images[i] = image
        labels[i] = target["semantic"]
    return images, labels


def predict(model: nn.Module, images: np.ndarray, batch_size: int = 32,
            device: str = "cpu") -> np.ndarray:
    """Label maps (N, H', W') for normalised images (N, 3, H, W), ``batch_size`` at a time."""
    out = [model.predict(sv.tensor(images[i:i + batch_size], device=device))
           for i in range(0, len(images), batch_size)]
    return np.concatenate(out) if out else np.zeros((0,) + images.shape[2:], np.int64)


def evaluate(model, images, labels, num_classes, batch_size=32, device="cpu") -> dict:
    pred = predict(model, images, batch_size, device)
    return evaluate_segmentation(pred, center_crop(labels, *pred.shape[-2:]), num_classes)


def shuffled_batches(images: np.ndarray, labels: np.ndarray, batch_size: int, seed: int,
                     device: str = "cpu", rank: int = 0, world: int = 1):
    """``batches(epoch)`` for the Trainer: the images shuffled by a generator seeded with
    (seed, epoch), a random half flipped horizontally (image and label map together), in
    batches of ``batch_size`` (the last incomplete one dropped); each item is
    ``(images Tensor on device, label maps (B, H, W) int64)``. With ``world`` ranks each
    batch is the ``rank``-th shard (``distributed.shard``) of the global batch: the order
    and the flips (one draw per image) are the same on every rank."""
    steps = max(1, len(images) // batch_size)

    def batches(epoch: int):
        rng = np.random.default_rng([seed, epoch])
        order = rng.permutation(len(images))     # = distributed.epoch_order(n, seed, epoch)
        flips = rng.random(len(images)) < 0.5
        for step in range(steps):
            idx = np.sort(shard(order[step * batch_size:(step + 1) * batch_size], rank,
                                world))
            xb, yb, flip = images[idx], labels[idx], flips[idx]
            xb = np.where(flip[:, None, None, None], xb[..., ::-1], xb)
            yb = np.where(flip[:, None, None], yb[..., ::-1], yb)
            yield sv.tensor(np.ascontiguousarray(xb), device=device), yb

    return batches, steps


def train(args: argparse.Namespace) -> dict:
    """Train a segmenter; returns the history and final metrics (also written to disk)."""
    out = Path(args.out)
    if getattr(args, "force", False) and not args.resume:
        raise ValueError("--force only applies with --resume (it resumes a checkpoint "
                         "written with other settings)")
    rank, world = data_parallel(args.batch_size, args.device)
    sv.manual_seed(args.seed)
    num_classes = DATASETS[args.data].num_classes
    t_data = time.perf_counter()
    progress = not args.quiet and rank == 0
    train_x, train_y = load_split("train", args.train_images, args.image_size, args.seed,
                                  progress, args.data)
    val_x, val_y = load_split("val", args.val_images, args.image_size, args.seed,
                              progress, args.data)
    train_x, val_x = normalise(train_x), normalise(val_x)
    data_seconds = time.perf_counter() - t_data
    model = build_segmenter(args.model, num_classes, **model_kwargs(args.model, args.size))
    if getattr(args, "sync_bn", False):
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    model.to(args.device)
    batches, steps_per_epoch = shuffled_batches(train_x, train_y, args.batch_size, args.seed,
                                                args.device, rank, world)

    def val_metrics(model) -> dict:
        m = evaluate(model, val_x, val_y, num_classes, args.batch_size, args.device)
        metrics = {"val_miou": m["miou"], "val_pixel_acc": m["pixel_acc"],
                   "val_iou": [float(v) for v in m["iou"]]}
        if args.data == "nuclei":
            metrics["val_foreground_iou"] = float(m["iou"][1])
        return metrics

    settings = {k: getattr(args, k) for k in ("data", "model", "size", "image_size",
                                              "train_images", "val_images", "batch_size",
                                              "seed")}
    if getattr(args, "sync_bn", False):
        settings["sync_bn"] = True
    trainer = Trainer(model, batches, steps_per_epoch, args.epochs, out,
                      optimizer=args.optimizer, lr=args.lr, weight_decay=args.weight_decay,
                      evaluate=val_metrics, metric="val_miou", quiet=args.quiet,
                      desc=args.model, settings=settings,
                      bucket_cap_mb=getattr(args, "bucket_cap_mb", 25.0))
    history = trainer.fit(resume=args.resume, stop_after=getattr(args, "stop_after", None),
                          force=getattr(args, "force", False))
    if rank != 0:                       # rank 0 writes the results and the pictures
        return {"history": history, "rank": rank}
    result = {"model": args.model, "size": args.size, "parameters": model.num_parameters(),
              "data": args.data, "epochs": args.epochs, "train_images": len(train_x),
              "val_images": len(val_x), "image_size": args.image_size,
              "minutes": (history[-1]["seconds"] if history else 0.0) / 60,
              "data_seconds": data_seconds,
              "val_miou": history[-1]["val_miou"] if history else float("nan"),
              "world_size": world, "history": history}
    if args.data == "nuclei":
        result["val_foreground_iou"] = (history[-1]["val_foreground_iou"] if history
                                        else float("nan"))
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
    images = denormalise(val_x[:n])
    images = center_crop(images.transpose(0, 3, 1, 2), *pred.shape[-2:]).transpose(0, 2, 3, 1)
    fig, axes = plt.subplots(n, 3, figsize=(6, 2 * n), squeeze=False)
    for i in range(n):
        m = evaluate_segmentation(pred[i], gt[i], DATASETS[args.data].num_classes)
        for j, (title, picture) in enumerate((("image", images[i]),
                                              ("ground truth", draw_segmentation(gt[i])),
                                              (f"prediction (IoU {m['miou']:.2f})",
                                               draw_segmentation(pred[i])))):
            axes[i, j].imshow(picture, interpolation="nearest")
            axes[i, j].set_title(title, fontsize=8)
            axes[i, j].axis("off")
    name = args.data.capitalize()
    fig.suptitle(f"{args.model} on {name} val", fontsize=10)
    fig.tight_layout()
    fig.savefig(out / "predictions.png", dpi=100)
    plt.close(fig)
    plots.plot_training_curves(out / "log.jsonl", keys=["loss", "val_miou", "val_pixel_acc", "lr"],
                               path=out / "training_curves.png", title=f"{args.model} on {name}")


def eval_command(args: argparse.Namespace) -> int:
    data = DATASETS[args.data]
    model = build_segmenter(args.model, data.num_classes, **model_kwargs(args.model, args.size))
    load_weights(model, args.weights, {"model": args.model, "size": args.size,
                                       "data": args.data})
    model.to(args.device)
    x, y = load_split("val", args.val_images, args.image_size, args.seed, not args.quiet,
                      args.data)
    m = evaluate(model, normalise(x), y, data.num_classes, args.batch_size, args.device)
    names = data.classes
    print(f"val mIoU {m['miou']:.4f}  pixel acc {m['pixel_acc']:.4f}  "
          f"mean class acc {m['mean_class_acc']:.4f}")
    for name, iou in zip(names, m["iou"]):
        print(f"  IoU {name:<10} {iou:.4f}")
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", choices=SEGMENTERS, default="unet")
    p.add_argument("--data", choices=tuple(DATASETS), default="shapes",
                   help="dataset: the built-in Shapes, or Nuclei (stardist's microscopy "
                        "image, tiles of --image-size px; the image counts only cap tiles)")
    p.add_argument("--size", choices=tuple(SIZES), default="small", help="model width preset")
    p.add_argument("--image-size", type=positive_int, default=128,
                   help="image side in pixels")
    p.add_argument("--val-images", type=positive_int, default=200)
    p.add_argument("--batch-size", type=positive_int, default=16)
    p.add_argument("--seed", type=nonnegative_int, default=0)
    p.add_argument("--device", type=device, default="cpu", help="'cpu' or 'cuda'")
    p.add_argument("--quiet", action="store_true",
                   help="no progress bars or per-epoch lines (the results are printed)")


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    _common(p)
    p.add_argument("--train-images", type=positive_int, default=2000)
    p.add_argument("--epochs", type=positive_int, default=10)
    p.add_argument("--optimizer", choices=["adam", "sgd"], default="adam")
    p.add_argument("--lr", type=positive_float, default=3e-3, help="peak learning rate")
    p.add_argument("--weight-decay", type=nonnegative_float, default=1e-4)
    p.add_argument("--out", default="runs/seg", help="folder for log, checkpoints, pictures")
    p.add_argument("--resume", action="store_true",
                   help="continue from OUT/checkpoint.npz (refused if the settings differ)")
    p.add_argument("--force", action="store_true",
                   help="with --resume: continue even if the settings differ (a warning "
                        "lists the differences)")
    p.add_argument("--stop-after", type=positive_int, default=None, metavar="N",
                   help="stop after N epochs of this run, as if interrupted (resume later)")
    p.add_argument("--no-pictures", action="store_true")
    add_data_parallel_arguments(p)


def train_command(args: argparse.Namespace) -> int:
    """``train-seg``: train, then print the result and where the files are (also with
    ``--quiet``)."""
    result = train(args)
    if "val_miou" in result:                # rank 0 (the others write nothing)
        print(f"{args.model}: val mIoU {result['val_miou']:.4f} after "
              f"{len(result['history'])} epochs")
        print(run_files(Path(args.out), () if args.no_pictures else
                        ("predictions.png", "training_curves.png")))
    return 0


def run_files(out: Path, pictures: tuple = ()) -> str:
    """The lines saying where a training run's files are (printed at the end of train-*)."""
    lines = [f"files in {out}/: weights {out / 'model.npz'} (best epoch: "
             f"{out / 'best.npz'}), results {out / 'result.json'}, log {out / 'log.jsonl'}, "
             f"checkpoint {out / 'checkpoint.npz'} (--resume)"]
    shown = [str(out / name) for name in pictures if (out / name).exists()]
    if shown:
        lines.append("pictures: " + ", ".join(shown))
    return "\n".join(lines)


def demo(args: argparse.Namespace) -> int:
    """The README's main job, about five minutes on a 2-core CPU: a tiny U-Net on 64x64
    Shapes, then a detector (``train_det.DEMO``) on 128x128 Shapes; prints both scores and
    writes their pictures side by side (OUT/demo.png)."""
    from scratchvision import train_det  # noqa: PLC0415
    t0 = time.perf_counter()
    result = train(args)
    seg_minutes = (time.perf_counter() - t0) / 60
    print(f"\ndemo: {args.model} ({args.size}, {result['parameters']:,} parameters) trained "
          f"{args.epochs} epochs on {args.train_images} Shapes images of {args.image_size}px "
          f"in {seg_minutes:.1f} min")
    print(f"val mIoU {result['val_miou']:.4f} on {args.val_images} images")
    if args.no_detection:
        print(run_files(Path(args.out), () if args.no_pictures else
                        ("predictions.png", "training_curves.png")))
        return 0
    t1 = time.perf_counter()
    det_out = Path(args.out) / "detection"
    det = train_det.demo_detection(det_out, quiet=args.quiet, no_pictures=args.no_pictures,
                                   device=args.device, seed=args.seed)
    d = train_det.DEMO
    print(f"\ndemo: {d['model']} ({d['size']}, {det['parameters']:,} parameters) trained "
          f"{d['epochs']} epochs on {d['train_images']} Shapes images of {d['image_size']}px "
          f"in {(time.perf_counter() - t1) / 60:.1f} min")
    print(f"val box mAP@0.5 {det['val_map']:.4f}, COCO AP {det['val_coco_ap']:.4f} on "
          f"{d['val_images']} images; the whole demo took "
          f"{(time.perf_counter() - t0) / 60:.1f} min")
    if not args.no_pictures:
        combined = side_by_side(Path(args.out) / "predictions.png",
                                det_out / "detections.png", Path(args.out) / "demo.png")
        print(f"pictures: {combined} (segmentation | detection); training curves: "
              f"{Path(args.out) / 'training_curves.png'}, {det_out / 'training_curves.png'}")
    print(f"segmentation files in {args.out}/, detection files in {det_out}/ (weights "
          "model.npz and best.npz, result.json, log.jsonl, checkpoint.npz)")
    return 0


def side_by_side(left: Path, right: Path, path: Path, right_scale: int = 2) -> Path:
    """Two PNGs next to each other on a white canvas, tops aligned; the right one enlarged
    ``right_scale`` times (nearest neighbour: the detection grid is of 128 px images)."""
    import cv2  # noqa: PLC0415
    a, b = (cv2.imread(str(p), cv2.IMREAD_COLOR) for p in (left, right))
    b = cv2.resize(b, None, fx=right_scale, fy=right_scale, interpolation=cv2.INTER_NEAREST)
    h = max(a.shape[0], b.shape[0])
    canvas = np.full((h, a.shape[1] + b.shape[1] + 10, 3), 255, np.uint8)
    canvas[:a.shape[0], :a.shape[1]] = a
    canvas[:b.shape[0], a.shape[1] + 10:] = b
    cv2.imwrite(str(path), canvas)
    return path


def add_commands(sub) -> None:
    t = add_parser(sub, "train-seg", help="train a segmenter on Shapes (or Nuclei)")
    add_train_arguments(t)
    t.set_defaults(func=train_command)
    e = add_parser(sub, "eval-seg", help="evaluate saved segmenter weights on Shapes "
                                         "(or Nuclei) val")
    _common(e)
    e.add_argument("--weights", required=True, help="a model.npz written by train-seg")
    e.set_defaults(func=eval_command)
    d = add_parser(sub, "demo", help="train a tiny U-Net, then a detector, on Shapes (about "
                                    "five minutes)")
    add_train_arguments(d)
    d.add_argument("--no-detection", action="store_true",
                   help="the segmenter only (skip the detector)")
    d.set_defaults(func=demo, model="unet", size="tiny", image_size=64, train_images=800,
                   val_images=100, epochs=14, out="runs/demo", batch_size=16)
