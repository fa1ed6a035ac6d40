"""Training, evaluation and inference of the detectors on Shapes: the ``train-det``,
``eval-det`` and ``detect`` commands.

Data: a split of Shapes is generated once into memory (uint8 images, per-image targets
``boxes`` (K, 4) pixel-edge x1y1x2y2, ``labels`` 1..3, ``areas`` the visible mask sizes
for COCO's area ranges); models that read proposals (R-CNN, Fast R-CNN) get the split's
Selective Search boxes from the proposal cache (``nets/detection/proposal_cache.py``),
computed once in worker processes.

One epoch (through the shared ``Trainer``): a permutation and a flip decision per image
from a generator seeded by (seed, epoch); each step takes ``batch_size`` images, flips
the chosen ones left-right together with their boxes and proposals
(``x1' = W - x2, x2' = W - x1``), and calls ``model.loss(images, targets[, proposals=])``.
That is ``--augment flip``, the default of every model but SSD and YOLO v1; ``--augment
none`` trains on the images as they are; ``--augment ssd`` (SSD's default) and ``--augment
yolo`` (YOLO v1's) run the paper's pipeline (``data/augment.py``: SSD's photometric
distortion, zoom out, IoU crop, resize, flip; YOLO's scaling, translation, exposure and
saturation, flip) on each uint8 training image with a generator seeded by (seed, epoch,
image index), then normalise the batch. A model with a ``pretrainer()`` (YOLO v1) first
trains that module for ``--pretrain-epochs`` on the same batches (OUT/pretrain/).
After each epoch the model predicts the val split and the VOC mAP@0.5 is logged;
``best.npz`` keeps the best epoch's weights. After the last epoch a model with a second,
non-gradient stage (R-CNN's SVMs and box regressors) runs ``finish_training`` on the whole
training split. Then the final evaluation writes ``result.json`` (VOC area and 07 mAP,
COCO AP, per-class AP, test-time ms per image), ``pr_curves.png``, ``detections.png`` and
``training_curves.png``.

``detect --model mtcnn --image PATH`` runs the face detector with published weights
(``nets/mtcnn.py``; no training here): DIR/<name>.png and DIR/<name>.json.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

import scratchvision as sv
from scratchvision import distributed, nn
from scratchvision.cli import (add_parser, device, nonnegative_float, nonnegative_int,
                               positive_float, positive_int, probability)
from scratchvision.data.augment import ssd_augmentation, yolo_augmentation
from scratchvision.data.loader import progress as data_progress
from scratchvision.data.nuclei import Nuclei
from scratchvision.data.shapes import Shapes
from scratchvision.distributed import shard
from scratchvision.eval.detection import coco_ground_truth, coco_results, evaluate_detections
from scratchvision.nets import DETECTORS, build_detector
from scratchvision.nets.detection import proposal_cache
from scratchvision.nets.detection.images import normalise
from scratchvision.trainer import add_data_parallel_arguments, load_weights

# Detectors with published weights: ``detect`` only (no train-det / eval-det, no --weights).
PRETRAINED = ("mtcnn",)

# Per-model training defaults (the results table's settings); every flag overrides them.
DEFAULTS = {
    "fast_rcnn": dict(epochs=6, batch_size=2, lr=1e-3, optimizer="adam", weight_decay=1e-4),
    # a step of 4 images of the small preset took 0.23 s on 2 cores and 0.26 s on one
    # (1 thread, taskset): 500 steps, ~2.3 min an epoch with the evaluation
    # alternating: 1 epoch of RPN, 3 of detector, 1 + 1 of fine-tuning on frozen conv layers
    # (steps 1, 3 and 4 cost about a half, a third and a half of a joint step)
    "faster_rcnn": {"epochs": 5, "batch_size": 4, "lr": 1e-3, "optimizer": "adam",
                    "weight_decay": 1e-4, "stage_epochs": (1, 3, 1, 1)},
    # a step of 4 images of the small preset: 0.31 s on one core (nets/mask_rcnn.py SIZES)
    "mask_rcnn": {"epochs": 4, "batch_size": 4, "lr": 1e-3, "optimizer": "adam",
                  "weight_decay": 1e-4, "stage_epochs": (1, 2, 1, 1)},
    "rcnn": dict(epochs=6, batch_size=8, lr=2e-3, optimizer="adam", weight_decay=1e-4),
    "sliding_window": dict(epochs=10, batch_size=8, lr=3e-3, optimizer="adam",
                           weight_decay=1e-4),
    # 2 epochs of classification pre-training of the conv layers, then 70 of detection with
    # the paper's augmentation, batches of 16 at lr 4e-3. YOLO v1 is starved of epochs
    # (docs/DETECTION_RESULTS.md): 28 epochs of 8 at 2e-3 gave 0.78-0.81, 42 gave 0.826,
    # 52 of 16 at 4e-3 0.845, 70 0.863. Measured: 2 ranks (mpiexec -n 2 --sync-bn, the
    # table's run) ~9.2 s an epoch on 2026-12-03 (14-21 s on a busier day), 10.7 min +
    # 0.6 of pre-training; one process on 2 threads ~13 s an epoch (the autograd and
    # augmentation run on one thread; measured for 3 epochs)
    "yolo_v1": {"epochs": 70, "batch_size": 16, "lr": 4e-3, "optimizer": "adam",
                "weight_decay": 5e-4, "augment": "yolo", "pretrain_epochs": 2},
    # untuned: a first guess for ~12 min on 2 cores (2,000 images at 128 px, 125 steps an
    # epoch): a step of 16 images of the small preset took 0.77 s, 0.09 s of it the
    # augmentation (YOLO v1 small: 0.48 s, measured alongside), so ~1.7 min an epoch with
    # the evaluation; on 2 busy cores steps took 1.6x-2.4x YOLO v1's
    "ssd": {"epochs": 7, "batch_size": 16, "lr": 1e-3, "optimizer": "adam",
            "weight_decay": 5e-4, "augment": "ssd"},
}

# ``--augment`` of the models whose DEFAULTS entry names none: the left-right flip.
AUGMENT_DEFAULT = "flip"


DATASETS = {"shapes": Shapes, "nuclei": Nuclei}


def class_names(data: str = "shapes") -> tuple:
    """The class names of ``--data`` (index 0 the background)."""
    return tuple(DATASETS[data].classes)


def load_split(split: str, num_images: int, image_size: int, seed: int,
               progress: bool = True, data: str = "shapes",
               with_masks: bool = False) -> tuple[np.ndarray, list]:
    """uint8 images (N, H, W, 3) and targets [{boxes, labels, areas, image_id[, masks]}].

    ``data='nuclei'``: the stardist microscopy tiles (``data/nuclei.py``) of side
    ``image_size``, at most ``num_images`` of them; the training split holds each tile's
    eight flips and rotations (D4), so 35 tiles become 280 images. Nuclei targets always
    carry their ``masks``; Shapes' only with ``with_masks`` (Mask R-CNN)."""
    if data == "nuclei":
        return _load_nuclei(split, num_images, image_size)
    ds = Shapes(split, num_images, image_size=image_size, seed=seed)
    images = np.empty((num_images, image_size, image_size, 3), np.uint8)
    targets = []
    for i in data_progress(range(num_images), desc=f"generating {split}", leave=False,
                           mininterval=1.0, disable=not progress):
        image, t = ds[i]
        images[i] = image
        targets.append({"boxes": t["boxes"], "labels": t["labels"],
                        "areas": t["masks"].reshape(len(t["boxes"]), -1).sum(axis=1),
                        "image_id": i})
        if with_masks:
            targets[-1]["masks"] = t["masks"].astype(np.uint8)
    return images, targets


def _load_nuclei(split: str, num_images: int, tile: int) -> tuple[np.ndarray, list]:
    ds = Nuclei(split if split != "test" else "val", tile=tile)
    samples = [ds.variant(i, k) for i in range(len(ds)) for k in range(8)] \
        if split == "train" else [ds[i] for i in range(len(ds))]
    samples = samples[:num_images]
    targets = [{"boxes": t["boxes"], "labels": t["labels"], "masks": t["masks"],
                "areas": t["masks"].reshape(len(t["boxes"]), -1).sum(axis=1), "image_id": i}
               for i, (_, t) in enumerate(samples)]
    return np.stack([im for im, _ in samples]), targets


# --augment choices that run a paper's per-image pipeline (data/augment.py) on the uint8
# images; "flip" and "none" work on the pre-normalised split
PIPELINES = {"ssd": lambda size, rng: ssd_augmentation(size, rng),
             "yolo": lambda size, rng: yolo_augmentation(rng),
             "yolo_d4": lambda size, rng: yolo_augmentation(rng, dihedral=True)}


def augmented_batch(pipeline: str, images_u8: np.ndarray, targets: list, idx, size: int,
                    seed: int, epoch: int) -> tuple[np.ndarray, list]:
    """A paper's augmentation (``PIPELINES``) of the images ``idx``, each drawn from a
    generator seeded by (seed, epoch, index): normalised (B, 3, size, size) images and
    their targets."""
    images, out = [], []
    for i in idx:
        transform = PIPELINES[pipeline](size, np.random.default_rng([seed, epoch, int(i)]))
        image, t = transform(images_u8[i], {"boxes": targets[i]["boxes"],
                                            "labels": targets[i]["labels"]})
        images.append(image)
        out.append({"boxes": t["boxes"], "labels": t["labels"]})
    return normalise(np.stack(images)), out


def flip_boxes(boxes: np.ndarray, width: int) -> np.ndarray:
    """Mirror x1y1x2y2 boxes left-right in an image ``width`` pixels wide."""
    out = np.array(boxes, np.float32, copy=True).reshape(-1, 4)
    out[:, 0], out[:, 2] = width - boxes[:, 2], width - boxes[:, 0]
    return out


def get_proposals(split: str, args, progress: bool) -> tuple[list, float]:
    key = proposal_cache.cache_key(split, _num_images(args, split), args.image_size, args.seed,
                                   args.proposals)
    return proposal_cache.load_or_compute(key, workers=args.workers, progress=progress)


def _num_images(args, split: str) -> int:
    return args.train_images if split == "train" else args.val_images


def predict_split(model, images: np.ndarray, proposals, batch_size: int, device: str,
                  progress: bool = False) -> list:
    """Predictions (host arrays) for normalised images (N, 3, H, W), in batches."""
    from tqdm import tqdm  # noqa: PLC0415
    model.eval()
    out = []
    steps = range(0, len(images), batch_size)
    for i in tqdm(steps, desc="predicting", disable=not progress, leave=False,
                  mininterval=1.0):
        x = sv.tensor(images[i:i + batch_size], device=device)
        extra = {} if proposals is None else {"proposals": proposals[i:i + batch_size]}
        for p in model.predict(x, **extra):
            out.append({k: v.numpy() for k, v in p.items()})
    return out


def _image_sizes(images: np.ndarray) -> list:
    return [tuple(images.shape[-2:])] * len(images)


def evaluate(model, images, targets, proposals, batch_size, device,
             classes: tuple = Shapes.classes) -> dict:
    """The per-epoch metrics: VOC and COCO box AP (and COCO mask AP for Mask R-CNN)."""
    preds = predict_split(model, images, proposals, batch_size, device)
    m = evaluate_detections(preds, targets, [t["image_id"] for t in targets],
                            _image_sizes(images), classes)
    out = {"val_map": m["map"], "val_map07": m["map07"], "val_coco_ap": m["coco"]["AP"],
           "val_ap": m["ap"][1:]}
    if "segm" in m:
        out.update(val_mask_ap50=m["segm"]["AP50"], val_mask_ap=m["segm"]["AP"])
    return out


def time_predict(model, images, proposals, device: str, repeats: int = 1) -> float:
    """Median milliseconds per image of ``predict`` on one image at a time."""
    times = []
    n = min(len(images), 50)
    model.eval()
    for i in range(n):
        x = sv.tensor(images[i:i + 1], device=device)
        extra = {} if proposals is None else {"proposals": proposals[i:i + 1]}
        t0 = time.perf_counter()
        for _ in range(repeats):
            model.predict(x, **extra)
        times.append((time.perf_counter() - t0) / repeats)
    return 1000.0 * float(np.median(times)) if times else float("nan")


def time_proposals(images_uint8: np.ndarray, strategy: str, n: int = 20) -> float:
    """Median milliseconds of Selective Search on one image (one thread)."""
    from scratchvision.proposals.selective_search import SelectiveSearch  # noqa: PLC0415
    ss = SelectiveSearch(strategy, num_threads=1)
    ss(images_uint8[0])                                  # compile / warm up
    times = []
    for im in images_uint8[:n]:
        t0 = time.perf_counter()
        ss(im)
        times.append(time.perf_counter() - t0)
    return 1000.0 * float(np.median(times))


def _fill_defaults(args) -> None:
    for k, v in dict({"pretrain_epochs": 0, "schedule": "joint", "stage_epochs": (1, 1, 1, 1),
                      "data": "shapes", "bucket_cap_mb": 25.0},
                     **DEFAULTS[args.model]).items():
        if getattr(args, k, None) is None:
            setattr(args, k, v)
    if getattr(args, "augment", None) is None:
        args.augment = AUGMENT_DEFAULT


def _settings(args) -> dict:
    keys = ("model", "size", "image_size", "train_images", "val_images", "seed", "epochs",
            "batch_size", "lr", "optimizer", "weight_decay", "proposals", "pooler")
    settings = {k: getattr(args, k, None) for k in keys}
    # "flip" was the only behaviour before --augment and no model pre-trained before
    # --pretrain-epochs: the defaults are left out, so older checkpoints resume
    if getattr(args, "augment", AUGMENT_DEFAULT) != AUGMENT_DEFAULT:
        settings["augment"] = args.augment
    if getattr(args, "pretrain_epochs", 0):
        settings["pretrain_epochs"] = args.pretrain_epochs
    # likewise the defaults of the flags added with Faster R-CNN
    if getattr(args, "data", "shapes") != "shapes":
        settings["data"] = args.data
    if getattr(args, "schedule", "joint") != "joint":
        settings["schedule"] = args.schedule
        settings["stage_epochs"] = list(args.stage_epochs)
    if getattr(args, "sync_bn", False):
        settings["sync_bn"] = True
    return settings


def _forced(args) -> dict:
    """``fit``'s ``force=True`` for ``--resume --force`` (nothing otherwise)."""
    return {"force": True} if getattr(args, "force", False) else {}


# models whose RoI pooling layer ``--pooler`` chooses
POOLED = ("fast_rcnn", "faster_rcnn", "mask_rcnn")


def _model_kwargs(args) -> dict:
    return {"pooler": args.pooler} if args.model in POOLED and args.pooler else {}


def train(args: argparse.Namespace) -> dict:
    """Train a detector; returns the result dict (also written to OUT/result.json)."""
    from scratchvision.trainer import Trainer, data_parallel  # noqa: PLC0415
    _fill_defaults(args)
    if getattr(args, "force", False) and not args.resume:
        raise ValueError("--force only applies with --resume (it resumes a checkpoint "
                         "written with other settings)")
    rank, world = data_parallel(args.batch_size, args.device)
    out = Path(args.out)
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
    progress = not args.quiet and rank == 0
    sv.manual_seed(args.seed)
    _check_combination(args)
    classes = class_names(args.data)
    with_masks = args.model in MASK_MODELS
    t_data = time.perf_counter()
    train_u8, train_t = load_split("train", args.train_images, args.image_size, args.seed,
                                   progress, args.data, with_masks)
    val_u8, val_t = load_split("val", args.val_images, args.image_size, args.seed, progress,
                               args.data, with_masks)
    # with --augment ssd / yolo the uint8 images are augmented and normalised batch by batch
    train_x = None if args.augment in PIPELINES else normalise(train_u8)
    val_x = normalise(val_u8)
    data_seconds = time.perf_counter() - t_data
    model = build_detector(args.model, len(classes), args.size, **_model_kwargs(args))
    if getattr(args, "sync_bn", False):
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    uses_proposals = getattr(model, "uses_proposals", False)
    if uses_proposals and args.augment in PIPELINES:
        raise ValueError(f"--augment {args.augment}: {args.model}'s precomputed proposals "
                         "cannot follow the crops and zooms; use --augment flip or none")
    proposal_seconds = 0.0
    train_p = val_p = None
    if uses_proposals:
        # under mpiexec rank 0 fills the cache first, the others then read it (one
        # barrier each, before or after; Selective Search may take hours on big splits)
        if rank != 0:
            distributed.barrier(timeout=12 * 3600)
        train_p, s1 = get_proposals("train", args, progress)
        val_p, s2 = get_proposals("val", args, progress)
        proposal_seconds = s1 + s2
        if rank == 0 and world > 1:
            distributed.barrier(timeout=12 * 3600)
    model.to(args.device)
    n, width = len(train_u8), args.image_size
    steps = max(1, n // args.batch_size)

    def batches(epoch: int):
        rng = np.random.default_rng([args.seed, epoch])
        order = rng.permutation(n)
        flips = rng.random(n) < 0.5
        if args.augment == "none":
            flips[:] = False
        for step in range(steps):
            # this rank's shard of the global batch (all of it in one process)
            idx = shard(order[step * args.batch_size:(step + 1) * args.batch_size], rank,
                        world)
            if args.augment in PIPELINES:
                x, targets = augmented_batch(args.augment, train_u8, train_t, idx, width,
                                             args.seed, epoch)
                yield sv.tensor(x, device=args.device), targets
                continue
            x = train_x[idx]
            x = np.where(flips[idx][:, None, None, None], x[..., ::-1], x)
            targets, props = [], []
            for i in idx:
                t = train_t[i]
                boxes = flip_boxes(t["boxes"], width) if flips[i] else t["boxes"]
                targets.append({"boxes": boxes, "labels": t["labels"]})
                if "masks" in t:
                    targets[-1]["masks"] = t["masks"][..., ::-1] if flips[i] else t["masks"]
                if uses_proposals:
                    props.append(flip_boxes(train_p[i], width) if flips[i] else train_p[i])
            x = sv.tensor(np.ascontiguousarray(x), device=args.device)
            yield (x, targets, {"proposals": props}) if uses_proposals else (x, targets)

    pretrain_seconds = 0.0
    if getattr(args, "pretrain_epochs", 0) and not hasattr(model, "pretrainer"):
        raise ValueError(f"--pretrain-epochs: {args.model} has no classification "
                         "pre-training stage (only yolo_v1 has one)")
    if getattr(args, "pretrain_epochs", 0):
        # the paper's classification pre-training of the conv layers (YOLO v1), on the
        # same batches; its own log and checkpoints in OUT/pretrain
        pre = model.pretrainer().to(args.device)
        pre_trainer = Trainer(
            pre, batches, steps, args.pretrain_epochs, out / "pretrain",
            optimizer=args.optimizer, lr=args.lr, weight_decay=args.weight_decay,
            clip_grad_norm=args.clip_grad_norm, quiet=args.quiet,
            desc=f"{args.model} pre-training", settings=_settings(args),
            bucket_cap_mb=args.bucket_cap_mb)
        pre_history = pre_trainer.fit(resume=args.resume, **_forced(args))
        pretrain_seconds = pre_history[-1]["seconds"] if pre_history else 0.0
    def val_metrics(m):         # m: the model, or the alternating training's step
        return evaluate(m, val_x, val_t, val_p, args.eval_batch_size, args.device, classes)

    if args.schedule == "alternating":
        history = train_alternating(model, batches, steps, out, args, val_metrics, val_x,
                                    val_t)
        if history is None:                            # interrupted on purpose (--stop-after)
            return {"stopped_after": "an alternating step"}
    else:
        trainer = Trainer(
            model, batches, steps, args.epochs, out, optimizer=args.optimizer, lr=args.lr,
            weight_decay=args.weight_decay, clip_grad_norm=args.clip_grad_norm,
            evaluate=val_metrics, metric="val_map", quiet=args.quiet, desc=args.model,
            settings=_settings(args), bucket_cap_mb=args.bucket_cap_mb,
            eval_every=getattr(args, "eval_every", 1))
        history = trainer.fit(resume=args.resume, stop_after=args.stop_after,
                              **_forced(args))
        if len(history) < args.epochs:                 # interrupted on purpose (--stop-after)
            return {"history": history, "stopped_after": len(history)}
    if rank != 0:                     # rank 0 finishes, evaluates and writes the results
        return {"history": history, "rank": rank}
    t_finish = time.perf_counter()
    extra = {}
    if hasattr(model, "finish_training"):
        # the epochs' evaluations scored with the fine-tuned softmax; keep the last one
        extra["softmax_val_map"] = history[-1]["val_map"]
        model.finish_training(train_x, train_t, train_p, progress=progress)
        nn.save(model, out / "model.npz")
    finish_seconds = time.perf_counter() - t_finish
    result = final_evaluation(model, val_u8, val_x, val_t, val_p, out, args)
    result.update({
        "model": args.model, "size": args.size, "parameters": model.num_parameters(),
        "settings": _settings(args), "data": args.data, "schedule": args.schedule,
        "epochs": (sum(args.stage_epochs) if args.schedule == "alternating" else args.epochs),
        "train_images": len(train_u8), "val_images": len(val_u8),
        "image_size": args.image_size,
        "minutes": (history[-1]["seconds"] if history else 0.0) / 60,
        "pretrain_minutes": pretrain_seconds / 60,
        "finish_minutes": finish_seconds / 60, "data_seconds": data_seconds,
        "proposal_seconds": proposal_seconds, "world_size": world, **extra,
        "history": history})
    (out / "result.json").write_text(json.dumps(result, indent=1, default=float))
    if not args.no_pictures and history:
        from scratchvision.viz import plots  # noqa: PLC0415
        keys = [k for k in ("loss", "loss_objectness", "loss_rpn_box_reg", "loss_classifier",
                            "loss_box_reg", "loss_mask", "loss_xy", "loss_wh", "loss_obj",
                            "loss_noobj", "loss_cls", "val_map", "val_mask_ap50", "lr")
                if k in history[-1]]
        plots.plot_training_curves(out / "log.jsonl", keys=keys,
                                   path=out / "training_curves.png",
                                   title=f"{args.model} on Shapes")
    return result


def train_alternating(model, batches, steps: int, out: Path, args, val_metrics, val_x,
                      val_t) -> list | None:
    """Faster R-CNN's 4-step alternating training (``FasterRCNN.training_stage``): each
    step a ``Trainer`` of its own in OUT/step<k> for ``--stage-epochs`` epochs; the RPN-only
    steps 1 and 3 are scored by the recall of the ground truths in the test-time proposals
    (IoU >= 0.5), the detector steps by mAP. Returns every step's log records (each with
    its ``step``), or None when ``--stop-after`` interrupted a step."""
    from scratchvision.nets.faster_rcnn import proposal_recall  # noqa: PLC0415
    from scratchvision.trainer import Trainer  # noqa: PLC0415
    history, seconds = [], 0.0
    for step, epochs in zip((1, 2, 3, 4), args.stage_epochs):
        stage = model.training_stage(step)
        if step in (1, 3):
            def metrics(m):
                return {"val_recall": proposal_recall(model, val_x, val_t,
                                                      device=args.device)}
            metric = "val_recall"
        else:        # the step's own predict: step 2 scores on the step-1 proposals
            metrics, metric = val_metrics, "val_map"
        trainer = Trainer(
            stage, batches, steps, epochs, out / f"step{step}", optimizer=args.optimizer,
            lr=args.lr, weight_decay=args.weight_decay, clip_grad_norm=args.clip_grad_norm,
            evaluate=metrics, metric=metric, quiet=args.quiet,
            desc=f"{args.model} step {step}", settings=dict(_settings(args), step=step),
            bucket_cap_mb=args.bucket_cap_mb)
        records = trainer.fit(resume=args.resume, stop_after=args.stop_after,
                              **_forced(args))
        stage.finish()
        if len(records) < epochs:
            return None
        for r in records:
            history.append(dict(r, step=step, seconds=seconds + r["seconds"]))
        seconds = history[-1]["seconds"]
    if distributed.rank() != 0:
        return history
    nn.save(model, out / "model.npz")
    # every step's records in one log, as a joint run writes it (training_curves.png)
    (out / "log.jsonl").write_text("".join(json.dumps(r, default=float) + "\n"
                                           for r in history))
    return history


# Mask R-CNN's targets carry the instance masks (the other models read boxes only).
MASK_MODELS = ("mask_rcnn",)
# models with a 4-step alternating schedule
ALTERNATING = ("faster_rcnn", "mask_rcnn")


def _check_combination(args) -> None:
    """Refuse flag combinations that cannot work, before any data is generated."""
    if args.data != "shapes" and args.model in ("rcnn", "fast_rcnn"):
        raise ValueError(f"--data {args.data}: {args.model} reads cached Selective Search "
                         "proposals, computed for Shapes only")
    if args.model in MASK_MODELS and args.augment in PIPELINES:
        raise ValueError(f"--augment {args.augment}: the pipeline does not transform "
                         f"{args.model}'s masks; use --augment flip or none")
    if args.schedule == "alternating" and args.model not in ALTERNATING:
        raise ValueError(f"--schedule alternating: only {', '.join(ALTERNATING)} have the "
                         "4-step alternating training")


# The detector the README's ``demo`` trains after its segmenter (see ``demo_detection``).
# SSD without augmentation (it learns fastest, see docs/DETECTION_RESULTS.md) for two epochs;
# a short cosine schedule needs a higher peak lr (1,600 images, 2 epochs, val mAP@0.5:
# lr 1e-3 0.607, 2e-3 0.737; the sliding window, 1,500 images, 3 epochs: 0.562)
DEMO = {"model": "ssd", "size": "small", "image_size": 128, "train_images": 2000,
        "val_images": 100, "epochs": 2, "augment": "none", "lr": 3e-3}


def demo_detection(out, quiet: bool = False, no_pictures: bool = False, device: str = "cpu",
                   seed: int = 0) -> dict:
    """The demo's detector: ``DEMO``'s settings through ``train``, pictures in OUT.

    The README says which detector and why: of the detectors here it reaches the best
    mAP@0.5 in about three minutes on a 2-core CPU (measured, not assumed)."""
    settings = {"data": "shapes", "seed": seed, "device": device, "quiet": quiet,
                "proposals": "fast", "pooler": None, "workers": None, "eval_batch_size": 8,
                "batch_size": None, "optimizer": None, "lr": None, "weight_decay": None,
                "clip_grad_norm": None, "augment": None, "pretrain_epochs": None,
                "out": str(out), "resume": False, "stop_after": None,
                "no_pictures": no_pictures}
    args = argparse.Namespace(**dict(settings, **DEMO))         # the rest: DEFAULTS[model]
    return train(args)


def final_evaluation(model, val_u8, val_x, val_t, val_p, out: Path, args) -> dict:
    """Metrics, test-time speed and pictures of the trained model on the val split."""
    preds = predict_split(model, val_x, val_p, args.eval_batch_size, args.device,
                          progress=not args.quiet)
    classes = class_names(args.data)
    m = evaluate_detections(preds, val_t, [t["image_id"] for t in val_t], _image_sizes(val_x),
                            classes)
    ms = time_predict(model, val_x, val_p, args.device)
    result = {"val_map": m["map"], "val_map07": m["map07"], "val_coco_ap": m["coco"]["AP"],
              "val_coco": {k: v for k, v in m["coco"].items() if isinstance(v, float)},
              "val_ap": dict(zip(classes[1:], m["ap"][1:])),
              "val_ap07": dict(zip(classes[1:], m["ap07"][1:])),
              "ms_per_image": ms}
    if "segm" in m:
        result.update(val_mask_ap50=m["segm"]["AP50"], val_mask_ap=m["segm"]["AP"],
                      val_segm={k: v for k, v in m["segm"].items() if isinstance(v, float)})
    if getattr(model, "uses_proposals", False):
        result["proposal_ms_per_image"] = time_proposals(val_u8, args.proposals)
    if not args.no_pictures:
        from scratchvision.viz import plots  # noqa: PLC0415
        plots.plot_pr_curves(m["precision"][1:], m["recall"][1:], m["ap"][1:],
                             class_names=classes[1:], path=out / "pr_curves.png",
                             title=f"{args.model}: precision-recall on Shapes val "
                                   f"(mAP@0.5 {m['map']:.3f})")
        # four val images, each prediction beside its ground truth: a 4 x 2 grid
        save_detection_grid(val_u8[:4], preds[:4], out / "detections.png", classes=classes,
                            targets=val_t[:4])
    return result


def draw_detections(image_u8, pred: dict, classes: tuple = Shapes.classes,
                    score_thresh: float = 0.5) -> np.ndarray:
    """An image with the labelled boxes above ``score_thresh``, and their masks if any; a
    ground truth (no ``scores``) is drawn whole, without scores."""
    from scratchvision.viz.draw import draw_boxes, draw_masks  # noqa: PLC0415
    scores = pred.get("scores")
    shown = np.ones(len(pred["labels"]), bool) if scores is None else \
        np.asarray(scores) > score_thresh
    if pred.get("masks") is not None and shown.any():
        image_u8 = draw_masks(image_u8, np.asarray(pred["masks"])[shown],
                              np.asarray(pred["labels"])[shown])
    return draw_boxes(image_u8, pred["boxes"], pred["labels"], scores, classes,
                      score_thresh=None if scores is None else score_thresh)


def save_detection_grid(images_u8, preds, path, score_thresh: float = 0.5,
                        classes: tuple = Shapes.classes, targets=None) -> Path:
    """A grid of images with their labelled detections above ``score_thresh`` (and masks);
    with ``targets``, each picture has its ground truth drawn to its right."""
    from scratchvision.viz.draw import save_image_grid  # noqa: PLC0415
    pictures = []
    for i, (im, p) in enumerate(zip(images_u8, preds)):
        pictures.append(draw_detections(im, p, classes, score_thresh))
        if targets is not None:
            t = targets[i]
            truth = {"boxes": t["boxes"], "labels": t["labels"], "masks": t.get("masks")}
            pictures.append(draw_detections(im, truth, classes))
    return save_image_grid(pictures, path, nrow=4)


def _load_model(args):
    """The detector of ``--model`` with the ``--weights`` of a train-det run; a clear
    ``ValueError`` when the weights are of other settings or no weights at all."""
    if args.weights is None:
        raise ValueError(f"--weights is required for --model {args.model}")
    model = build_detector(args.model, len(class_names(args.data)), args.size,
                           **_model_kwargs(args))
    load_weights(model, args.weights, {"model": args.model, "size": args.size,
                                       "data": args.data})
    if getattr(args, "svd", None):
        if not hasattr(model, "compress_fc"):
            raise ValueError(f"--svd: {args.model} has no fully connected layers to compress")
        model.compress_fc(*args.svd)
    model.to(args.device)
    return model


def _ranks(text: str) -> tuple[int, int]:
    try:
        r6, r7 = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected two ranks 'R6,R7', got {text!r}") from None
    if r6 < 1 or r7 < 1:
        raise argparse.ArgumentTypeError(f"ranks must be >= 1, got {text!r}")
    return r6, r7


def eval_command(args: argparse.Namespace) -> int:
    model = _load_model(args)
    n = args.val_images
    classes = class_names(args.data)
    u8, targets = load_split(args.split, n, args.image_size, args.seed, not args.quiet,
                             args.data, with_masks=getattr(model, "uses_masks", False))
    x = normalise(u8)
    props = None
    if getattr(model, "uses_proposals", False):
        key = proposal_cache.cache_key(args.split, n, args.image_size, args.seed, args.proposals)
        props, _ = proposal_cache.load_or_compute(key, args.workers, not args.quiet)
    preds = predict_split(model, x, props, args.eval_batch_size, args.device, not args.quiet)
    m = evaluate_detections(preds, targets, [t["image_id"] for t in targets],
                            _image_sizes(x), classes)
    ms = time_predict(model, x, props, args.device)
    ap = {"voc": m["ap"], "voc07": m["ap07"]}.get(args.metric)
    if args.metric == "coco":
        c = m["coco"]
        print("COCO  " + "  ".join(f"{k} {c[k]:.4f}" for k in
                                   ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR100")))
        ap = list(c["per_class_ap"])
        ap = [float("nan")] + ap
    print(f"{args.split}: VOC mAP@0.5 {m['map']:.4f}  VOC07 mAP {m['map07']:.4f}  "
          f"COCO AP {m['coco']['AP']:.4f}  ({ms:.1f} ms/image, {1000 / ms:.1f} images/s)")
    if "segm" in m:
        print(f"masks: COCO AP@0.5 {m['segm']['AP50']:.4f}  AP@[.5:.95] {m['segm']['AP']:.4f}")
    print(f"per-class AP ({args.metric}):")
    for name, a in zip(classes[1:], ap[1:]):
        print(f"  {name:<10} {a:.4f}")
    if args.out:
        from scratchvision.viz import plots  # noqa: PLC0415
        Path(args.out).mkdir(parents=True, exist_ok=True)
        plots.plot_pr_curves(m["precision"][1:], m["recall"][1:], m["ap"][1:],
                             class_names=classes[1:],
                             path=Path(args.out) / "pr_curves.png")
    return 0


def detect_command(args: argparse.Namespace) -> int:
    """Pictures with labelled boxes (and masks) and DIR/detections.json (COCO results
    format; Mask R-CNN's masks as compressed RLE ``segmentation``)."""
    if args.model in PRETRAINED:
        return detect_faces_command(args)
    from scratchvision.eval.coco import write_coco_results  # noqa: PLC0415
    from scratchvision.viz.draw import save_image  # noqa: PLC0415
    model = _load_model(args)
    classes = class_names(args.data)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.image:
        import cv2  # noqa: PLC0415
        bgr = cv2.imread(args.image, cv2.IMREAD_COLOR)
        if bgr is None:
            raise ValueError(f"--image {args.image}: not a readable image file")
        images_u8 = [np.ascontiguousarray(bgr[..., ::-1])]
        ids, targets = [0], None
    else:
        u8, targets = load_split(args.split, args.images, args.image_size, args.seed,
                                 not args.quiet, args.data,
                                 with_masks=getattr(model, "uses_masks", False))
        images_u8, ids = list(u8), [t["image_id"] for t in targets]
    preds = []
    for u8 in images_u8:                  # one at a time: images may differ in size
        x = sv.tensor(normalise(u8)[None], device=args.device)
        preds.append({k: v.numpy() for k, v in model.predict(x)[0].items()})
    for im_id, u8, p in zip(ids, images_u8, preds):
        save_image(draw_detections(u8, p, classes, args.score_thresh),
                   out / f"{im_id:06d}.png")
    write_coco_results(out / "detections.json", coco_results(preds, ids))
    if args.export_gt and targets is not None:
        gt = coco_ground_truth(targets, ids, [u.shape[:2] for u in images_u8], classes)
        Path(args.export_gt).write_text(json.dumps(gt))
    print(f"{len(preds)} images, {sum(len(p['boxes']) for p in preds)} detections -> "
          f"{out / 'detections.json'}, pictures in {out}/")
    return 0


def detect_faces_command(args: argparse.Namespace) -> int:
    """MTCNN on ``--image``: DIR/<name>.png with boxes, scores and the five landmarks, and
    DIR/<name>.json with the detections (boxes x1y1x2y2 in pixels, probabilities,
    landmarks as (x, y) pairs)."""
    import cv2

    from scratchvision.nets.mtcnn import MTCNN
    from scratchvision.viz.draw import class_color, draw_boxes, save_image
    if not args.image:
        raise ValueError(f"--model {args.model} detects faces in an --image, not a Shapes split")
    bgr = cv2.imread(args.image, cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"--image {args.image}: not a readable image file")
    rgb = np.ascontiguousarray(bgr[..., ::-1])
    model = MTCNN(weights="facenet").to(args.device)
    boxes, probs, points = model.detect(rgb)
    shown = probs >= args.score_thresh
    picture = draw_boxes(rgb, boxes[shown], np.ones(int(shown.sum()), np.int64), probs[shown],
                         ["background", "face"], thickness=2)
    for xy in points[shown].reshape(-1, 2):       # eyes, nose, mouth corners of each face
        cv2.circle(picture, tuple(int(v) for v in np.rint(xy)), 2, class_color(2), -1,
                   cv2.LINE_AA)
    out = Path(args.out)
    name = Path(args.image).stem
    save_image(picture, out / f"{name}.png")
    faces = [{"box": b.tolist(), "score": float(p), "landmarks": lm.tolist()}
             for b, p, lm in zip(boxes, probs, points)]
    (out / f"{name}.json").write_text(json.dumps(
        {"image": str(args.image), "model": args.model, "height": rgb.shape[0],
         "width": rgb.shape[1], "detections": faces}, indent=1))
    print(f"{len(faces)} faces -> {out / (name + '.png')}, {out / (name + '.json')}")
    return 0


def _four_epochs(text: str) -> tuple:
    try:
        epochs = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'E1,E2,E3,E4', got {text!r}") from None
    if len(epochs) != 4 or min(epochs) < 1:
        raise argparse.ArgumentTypeError(f"expected four epoch counts >= 1, got {text!r}")
    return epochs


def _common(p: argparse.ArgumentParser, models: tuple = DETECTORS) -> None:
    p.add_argument("--model", choices=models, required=True)
    p.add_argument("--data", choices=list(DATASETS), default="shapes",
                   help="dataset: the built-in Shapes, or Nuclei (the stardist microscopy "
                        "tiles, data/nuclei.py; models without Selective Search proposals)")
    p.add_argument("--size", default="small",
                   help="model width preset (small, tiny; yolo_v1 and ssd also large)")
    p.add_argument("--image-size", type=positive_int, default=128)
    p.add_argument("--val-images", type=positive_int, default=200)
    p.add_argument("--seed", type=nonnegative_int, default=0)
    p.add_argument("--device", type=device, default="cpu", help="'cpu' or 'cuda'")
    p.add_argument("--quiet", action="store_true",
                   help="no progress bars or per-epoch lines (the results are printed)")
    p.add_argument("--proposals", default="fast", choices=["single", "fast", "quality"],
                   help="Selective Search strategy of the proposal-based models")
    p.add_argument("--pooler", default=None,
                   choices=["roi_pool", "roi_align", "roi_align_unaligned"],
                   help="RoI pooling of Fast/Faster R-CNN's box head (default roi_pool, the "
                        "papers') and of Mask R-CNN's box and mask heads (default roi_align)")
    p.add_argument("--workers", type=positive_int, default=None,
                   help="processes computing Selective Search (default: all cores)")
    p.add_argument("--eval-batch-size", type=positive_int, default=8)
    p.add_argument("--eval-every", type=positive_int, default=1, metavar="K",
                   help="evaluate on the val split after every K-th epoch and the last "
                        "(default 1: every epoch; the evaluations cost ~10%% of a short "
                        "epoch, and under mpiexec the other ranks wait for them)")


def _inference_arguments(p: argparse.ArgumentParser, models: tuple = DETECTORS) -> None:
    _common(p, models)
    pretrained = [m for m in models if m in PRETRAINED]
    p.add_argument("--weights", required=not pretrained, default=None,
                   help="a model.npz written by train-det"
                   + (f" (not for {', '.join(pretrained)}: published weights)" if pretrained
                      else ""))
    p.add_argument("--svd", type=_ranks, default=None, metavar="R6,R7",
                   help="Fast R-CNN: compress fc6/fc7 by truncated SVD to these ranks")


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    _common(p)
    p.add_argument("--train-images", type=positive_int, default=2000)
    p.add_argument("--epochs", type=positive_int, default=None,
                   help="default: the model's (train_det.DEFAULTS)")
    p.add_argument("--batch-size", type=positive_int, default=None,
                   help="default: the model's (train_det.DEFAULTS)")
    p.add_argument("--pretrain-epochs", type=nonnegative_int, default=None,
                   help="epochs of classification pre-training of the conv layers first "
                        "(YOLO v1, as the paper's ImageNet pre-training; 0: none)")
    p.add_argument("--optimizer", choices=["adam", "sgd"], default=None,
                   help="default: the model's (train_det.DEFAULTS)")
    p.add_argument("--lr", type=positive_float, default=None,
                   help="peak learning rate; default: the model's (train_det.DEFAULTS)")
    p.add_argument("--weight-decay", type=nonnegative_float, default=None,
                   help="default: the model's (train_det.DEFAULTS)")
    p.add_argument("--clip-grad-norm", type=positive_float, default=None)
    p.add_argument("--augment", choices=["flip", "ssd", "yolo", "yolo_d4", "none"],
                   default=None,
                   help="training augmentation: left-right flips (flip), SSD's pipeline "
                        "(ssd), YOLO v1's (yolo: scale, shift, exposure, saturation, flip; "
                        "yolo_d4: with all eight flips and rotations of the square) or "
                        "none; default: the model's (train_det.DEFAULTS)")
    p.add_argument("--out", default="runs/det", help="folder for log, checkpoints, pictures")
    p.add_argument("--resume", action="store_true",
                   help="continue from OUT/checkpoint.npz (refused if the settings differ)")
    p.add_argument("--force", action="store_true",
                   help="with --resume: continue even if the settings differ (a warning "
                        "lists the differences)")
    p.add_argument("--stop-after", type=positive_int, default=None, metavar="N",
                   help="stop after N epochs of this run, as if interrupted (resume later)")
    p.add_argument("--schedule", choices=["joint", "alternating"], default=None,
                   help="Faster/Mask R-CNN: approximate joint training (default) or the "
                        "paper's 4-step alternating training")
    p.add_argument("--stage-epochs", type=_four_epochs, default=None, metavar="E1,E2,E3,E4",
                   help="epochs of the 4 alternating steps (default: the model's)")
    p.add_argument("--no-pictures", action="store_true")
    add_data_parallel_arguments(p)


def train_command(args: argparse.Namespace) -> int:
    """``train-det``: train, then print the result and where the files are (also with
    ``--quiet``)."""
    from scratchvision.train_seg import run_files  # noqa: PLC0415
    result = train(args)
    out = Path(args.out)
    if "stopped_after" in result:
        print(f"{args.model}: stopped as asked (--stop-after); continue with --resume from "
              f"{out}")
    elif "val_map" in result:               # rank 0 (the others write nothing)
        print(f"{args.model}: val mAP@0.5 {result['val_map']:.4f} (VOC07 "
              f"{result['val_map07']:.4f}), COCO AP {result['val_coco_ap']:.4f}, "
              f"{result['ms_per_image']:.1f} ms/image", flush=True)
        print(run_files(out, () if args.no_pictures else
                        ("pr_curves.png", "detections.png", "training_curves.png")))
    return 0


def add_commands(sub) -> None:
    t = add_parser(sub, "train-det", help="train a detector on Shapes")
    add_train_arguments(t)
    t.set_defaults(func=train_command)
    e = add_parser(sub, "eval-det", help="evaluate saved detector weights on a Shapes split")
    _inference_arguments(e)
    e.add_argument("--split", choices=["val", "test"], default="val")
    e.add_argument("--metric", choices=["voc", "voc07", "coco"], default="voc",
                   help="which per-class AP to list (all three means are printed)")
    e.add_argument("--out", default=None, help="folder for pr_curves.png")
    e.set_defaults(func=eval_command)
    d = add_parser(sub, "detect", help="draw a detector's boxes on images; COCO results JSON")
    _inference_arguments(d, DETECTORS + PRETRAINED)
    src = d.add_mutually_exclusive_group(required=True)
    src.add_argument("--image", help="an image file (PNG/JPEG)")
    src.add_argument("--split", choices=["train", "val", "test"])
    d.add_argument("--images", type=positive_int, default=8, help="images of the split")
    d.add_argument("--score-thresh", type=probability, default=0.5,
                   help="boxes drawn above this score")
    d.add_argument("--export-gt", default=None, metavar="PATH",
                   help="also write the split's COCO ground truth JSON here")
    d.add_argument("--out", required=True, help="folder for pictures and detections.json")
    d.set_defaults(func=detect_command)
