"""Re-create docs/DETECTION_RESULTS.md: train every detector on Shapes and tabulate box mAP.

    python docs/make_det_results.py --speed                # every run, then the speed table
    python docs/make_det_results.py --models fast_rcnn     # one run (the table keeps the rest)
    python docs/make_det_results.py --speed-only           # re-measure speed, rebuild tables
    python docs/make_det_results.py --table-only           # rebuild the tables from runs/

Each detector is trained by the public CLI in its own process, with the exact command in
the table: Shapes at 128 px, 2,000 train / 200 val images, seed 0, the 'small' preset and
the model's default schedule (``train_det.DEFAULTS``). Selective Search proposals are
computed once (and cached) before the first proposal-based model trains; their time is
listed separately. After Fast R-CNN trains, its fc6/fc7 are compressed by truncated SVD
at several ranks (the paper's section 3.1) and each variant is evaluated for mAP and
test-time speed. Results accumulate in runs/results/<run>/result.json.

Then every trained detector's test-time throughput is measured in one process, one model
after another on the quiet machine (``--speed-only`` re-measures without training): images
per second of ``predict`` at batch 1 and batch 8 on 48 val images (median of 3 passes after
one warm-up batch), network only; for the proposal-based models also end to end with
Selective Search (one thread) in front. The table of every detector and the
speed-accuracy plot (docs/detectors_speed_accuracy.png) are built from those figures.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = ROOT / "runs" / "results"
OUT = ROOT / "docs" / "DETECTION_RESULTS.md"
PLOT = ROOT / "docs" / "detectors_speed_accuracy.png"
SPEED = RUNS / "speed.json"
# run name -> (model, extra train-det flags); a run's folder is runs/results/<run>
RUN_SPECS = {"sliding_window": ("sliding_window", []), "rcnn": ("rcnn", []),
             "fast_rcnn": ("fast_rcnn", []),
             "faster_rcnn": ("faster_rcnn", []),
             "faster_rcnn_roi_align": ("faster_rcnn", ["--pooler", "roi_align"]),
             "faster_rcnn_alternating": ("faster_rcnn", ["--schedule", "alternating"]),
             "mask_rcnn": ("mask_rcnn", []),
             "mask_rcnn_roi_align_unaligned": ("mask_rcnn", ["--pooler", "roi_align_unaligned"]),
             "mask_rcnn_roi_pool": ("mask_rcnn", ["--pooler", "roi_pool"]),
             "yolo_v1": ("yolo_v1", ["--eval-every", "70", "--sync-bn"]), "ssd": ("ssd", []),
             "ssd_no_augmentation": ("ssd", ["--augment", "none"]),
             "mask_rcnn_nuclei": ("mask_rcnn", ["--data", "nuclei", "--epochs", "24"])}
# runs on the nuclei microscopy tiles: not in the Shapes tables
NUCLEI_RUNS = ("mask_rcnn_nuclei", "unet_nuclei")
# the segmenter on the same tiles (train-seg, U-Net's own domain)
UNET_NUCLEI = ["python", "-m", "scratchvision", "train-seg", "--data", "nuclei", "--model",
               "unet", "--size", "small", "--image-size", "128", "--seed", "0", "--epochs",
               "80", "--batch-size", "4", "--out", "runs/results/unet_nuclei", "--quiet"]
# runs trained data-parallel over the 2 cores (scratchvision.distributed, one Numba thread
# per rank): YOLO v1, the same model one process trains, more epochs in the same minutes
MPI_RANKS = {"yolo_v1": 2}
MODELS = tuple(RUN_SPECS)
SHAPES_RUNS = tuple(r for r in RUN_SPECS if r not in NUCLEI_RUNS)
TWO_STAGE = ("faster_rcnn", "faster_rcnn_roi_align", "faster_rcnn_alternating", "mask_rcnn",
             "mask_rcnn_roi_align_unaligned", "mask_rcnn_roi_pool")
TARGETS = {"sliding_window": 0.80, "rcnn": 0.85, "fast_rcnn": 0.90, "faster_rcnn": 0.92,
           "faster_rcnn_roi_align": 0.92, "faster_rcnn_alternating": 0.92, "mask_rcnn": 0.92,
           "mask_rcnn_roi_align_unaligned": None, "mask_rcnn_roi_pool": None,
           "yolo_v1": 0.85, "ssd": 0.90, "ssd_no_augmentation": None}
MASK_TARGET = 0.88          # Mask R-CNN's mask AP@0.5
PAPERS = {"sliding_window": "OverFeat (Sermanet et al. 2014)",
          "rcnn": "R-CNN (Girshick et al. 2014)", "fast_rcnn": "Fast R-CNN (Girshick 2015)",
          "faster_rcnn": "Faster R-CNN (Ren et al. 2015), joint training, RoIPool",
          "faster_rcnn_roi_align": "Faster R-CNN, joint training, RoIAlign",
          "faster_rcnn_alternating": "Faster R-CNN, 4-step alternating training, RoIPool",
          "mask_rcnn": "Mask R-CNN (He et al. 2017), RoIAlign (aligned)",
          "mask_rcnn_roi_align_unaligned": "Mask R-CNN, RoIAlign without the half-pixel "
                                           "offset",
          "mask_rcnn_roi_pool": "Mask R-CNN, RoIPool",
          "yolo_v1": "YOLO v1 (Redmon et al. 2016)", "ssd": "SSD (Liu et al. 2016)",
          "ssd_no_augmentation": "SSD without augmentation (the paper's ablation)"}
# ablation runs of the same detectors, left out of the plot (they would cover each other)
PLOT_SKIP = ("faster_rcnn_alternating", "mask_rcnn_roi_align_unaligned", "mask_rcnn_roi_pool")
SVD_RANKS = ((None, None), (128, 128), (64, 64), (32, 32), (16, 16))


# What was tried for YOLO v1 before the table's run (ad-hoc runs of train_det.train with
# the preset's fields overridden; val mAP@0.5 on the same split)
YOLO_NOTE = (
    "YOLO v1 reaches its target (mAP@0.5 {map:.4f} against 0.85) only with many epochs. Its "
    "last layer is fully connected, so each grid cell has its own weights and learns only "
    "from the objects centred in it: about 300 objects a cell at S = 4 from 2,000 images "
    "(77 at S = 8), against the paper's 16 k VOC images x 135 epochs. Tried, in order (val "
    "mAP@0.5): the first guess (S = 8, fc 256 wide, dropout 0.5, flips only, 10 epochs) "
    "0.130; three-epoch probes at S = 8, fc 1024 wide: dropout 0.5 0.044, no dropout 0.099, "
    "plus two epochs of classification pre-training of the conv layers on object and "
    "background crops (the paper's ImageNet stage) 0.187, the same at S = 4 0.203; then "
    "full runs with the paper's augmentation: 128 px input, 2 + 13 epochs (15.6 min) 0.483; "
    "64 px input (3.5x cheaper steps), 2 + 30 epochs, batches of 16, 0.723; the same with "
    "batches of 8 for 2 + 28 epochs, 0.733 at Adam's lr 1e-3; then, same schedule: flips "
    "only instead of the paper's augmentation 0.589 (training loss 0.32 against 1.07: it "
    "overfits without it, unlike SSD here), and the peak learning rate: 2e-3 0.806, 3e-3 "
    "0.800, 4e-3 0.769. The same schedule with one change each: Adam's weight decay 0 0.758 "
    "and 1e-3 0.773 (5e-4 kept); 5 epochs of pre-training and 25 of detection 0.728; the 1x1 "
    "reduction to 64 channels instead of 32 0.797, and with it a 2048-wide first fc 0.769; "
    "S = 6 0.761; batch norm after the first fc did not learn (mAP under 0.01 after 8 "
    "epochs; stopped). Each later run on one core (`taskset`, one thread, two side by side): "
    "the 28-epoch schedule again 0.778 (runs of one setting differ by ~0.03); on its weights "
    "200 training images score like the validation ones (0.784 against 0.790), so the model "
    "underfits rather than overfits; a score threshold of 0.001 or NMS at 0.6 adds at most "
    "0.006; recall at IoU 0.5 is 0.50 for objects under 16 px, 0.66 at 16-24 px and "
    "0.92-0.98 above 36 px. The paper's 7x7 stride-2 first conv on a 128 px input 0.679 "
    "after 20 epochs against 0.683 (stopped); no max pool after the last stage (an 8x8 map "
    "into the first fc) 0.765; all eight flips and rotations (`--augment yolo_d4`) behind "
    "after 6 epochs (0.189 against 0.233, stopped); **42 epochs instead of 28: 0.826** in "
    "16.6 min: the model is starved of epochs. So the step was made cheaper (a fused Adam, "
    "a 2x2 max-pool kernel, one-pass leaky ReLU: a step of 8 on one thread 119 -> 100 ms) "
    "and the batch doubled: 28 epochs of 16 at lr 4e-3 0.790, as good per epoch as batches "
    "of 8 for less time per image. Then data-parallel over the two cores (`mpiexec -n 2 ... "
    "--sync-bn`, one thread per rank): 2 + 34 epochs of 8 with the old step 0.804 (12.2 "
    "min); 2 + 52 epochs of 16 0.845 (COCO AP 0.435) in 15.4 min on a busy day (epochs of "
    "14-21 s); and the table's run, 2 + 70 epochs evaluated only at the end (`--eval-every "
    "70`), {map:.3f} (COCO AP {coco:.3f}) in {minutes:.1f} min, on a quieter day (~9.2 s an "
    "epoch of 2,000 images; on the busy day's epochs it would take 16-25 min). One process "
    "on both threads runs an epoch in ~13 s: the autograd bookkeeping and the augmentation "
    "of a step run on one thread, so two ranks keep both cores busier. Not tried: the "
    "paper's SGD schedule, a weight EMA.")


def command(run: str) -> list[str]:
    if run == "unet_nuclei":
        return list(UNET_NUCLEI)
    model, extra = RUN_SPECS[run]
    launch = ["mpiexec", "-n", str(MPI_RANKS[run])] if run in MPI_RANKS else []
    return [*launch, "python", "-m", "scratchvision", "train-det", "--model", model,
            "--size", "small", "--image-size", "128", "--train-images", "2000",
            "--val-images", "200", "--seed", "0", *extra, "--out", f"runs/results/{run}", "--quiet"]


def model_kwargs(run: str) -> dict:
    """The constructor arguments a run's flags imply (its ``--pooler``)."""
    extra = RUN_SPECS[run][1]
    return {"pooler": extra[extra.index("--pooler") + 1]} if "--pooler" in extra else {}


def nuclei_pictures(run: str) -> str:
    """Copy a nuclei run's picture of predictions beside the ground truth into docs/."""
    import shutil  # noqa: PLC0415
    source = RUNS / run / ("predictions.png" if run == "unet_nuclei" else "detections.png")
    target = ROOT / "docs" / f"nuclei_{run}.png"
    shutil.copyfile(source, target)
    return target.name


def measure_speed(runs, n_images: int = 48, passes: int = 3) -> dict:
    """Test-time images/s of each trained run at batch 1 and 8 (see the module docstring)."""
    import numpy as np  # noqa: PLC0415

    from scratchvision import nn  # noqa: PLC0415
    from scratchvision.data.shapes import Shapes  # noqa: PLC0415
    from scratchvision.nets import build_detector  # noqa: PLC0415
    from scratchvision.nets.detection import normalise, proposal_cache  # noqa: PLC0415
    from scratchvision.train_det import load_split, predict_split, time_proposals  # noqa: PLC0415
    u8, _ = load_split("val", 200, 128, 0, progress=False)
    x = normalise(u8)[:n_images]
    props = None
    out = {}
    for run in runs:
        weights = RUNS / run / "model.npz"
        if not weights.exists():
            continue
        model_name = RUN_SPECS[run][0]
        model = build_detector(model_name, Shapes.num_classes, "small", **model_kwargs(run))
        model.load_state_dict(nn.load(weights))
        model.eval()
        p = None
        if getattr(model, "uses_proposals", False):
            if props is None:
                props, _ = proposal_cache.load_or_compute(
                    proposal_cache.cache_key("val", 200, 128, 0), progress=False)
            p = props[:n_images]
        row = {"parameters": int(model.num_parameters())}
        for bs in (1, 8):
            predict_split(model, x[:bs], None if p is None else p[:bs], bs, "cpu")  # warm-up
            times = []
            for _ in range(passes):
                t0 = time.perf_counter()
                predict_split(model, x, p, bs, "cpu")
                times.append(time.perf_counter() - t0)
            row[f"images_per_s_batch{bs}"] = n_images / float(np.median(times))
        if p is not None:
            ss_ms = time_proposals(u8, "fast")
            row["proposal_ms"] = ss_ms
            for bs in (1, 8):
                net_s = 1.0 / row[f"images_per_s_batch{bs}"]
                row[f"end_to_end_images_per_s_batch{bs}"] = 1.0 / (net_s + ss_ms / 1000.0)
        out[run] = row
        print(run, {k: round(v, 2) for k, v in row.items()}, flush=True)
    return out


def plot_speed_accuracy(results: dict, speed: dict, path: Path) -> Path:
    """mAP@0.5 against end-to-end test images/s at batch 1 (log axis), one point per run."""
    import matplotlib  # noqa: PLC0415
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for run, r in results.items():
        if run not in speed or run in PLOT_SKIP:
            continue
        sp = speed[run]
        ips = sp.get("end_to_end_images_per_s_batch1", sp["images_per_s_batch1"])
        ax.scatter([ips], [r["val_map"]], s=40 + r["parameters"] / 2e4)
        ax.annotate(run, (ips, r["val_map"]), textcoords="offset points", xytext=(6, 4),
                    fontsize=9)
    ax.set_xscale("log")
    ax.set_xlabel("test images / s, batch 1, 2-core CPU (with Selective Search for "
                  "R-CNN / Fast R-CNN)")
    ax.set_ylabel("box mAP@0.5 (Shapes val)")
    ax.set_title("Every detector on Shapes 128 px: speed against accuracy "
                 "(marker area ~ parameters)", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def every_detector_table(results: dict, speed: dict) -> list[str]:
    """The lecture's comparison: one row per run, accuracy, speed, size, training time."""
    lines = ["", "## Every detector, one machine", "",
             "| model | mAP@0.5 | COCO AP@[.5:.95] | images/s batch 1 | images/s batch 8 | "
             "with Selective Search, batch 1 / 8 | parameters | training min |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for run, r in results.items():
        sp = speed.get(run)
        train_min = r["minutes"] + r.get("finish_minutes", 0.0) + r.get("pretrain_minutes", 0.0)
        if sp is None:
            cells = "| | |"
        else:
            e2e = ""
            if "end_to_end_images_per_s_batch1" in sp:
                e2e = (f"{sp['end_to_end_images_per_s_batch1']:.1f} / "
                       f"{sp['end_to_end_images_per_s_batch8']:.1f}")
            cells = (f"{sp['images_per_s_batch1']:.1f} | {sp['images_per_s_batch8']:.1f} | "
                     f"{e2e} |")
        lines.append(f"| {run} | {r['val_map']:.4f} | {r['val_coco_ap']:.4f} | {cells} "
                     f"{r['parameters']:,} | {train_min:.1f} |")
    lines += ["", "images/s: `predict` on 48 val images of 128x128, median of 3 passes after a "
              "warm-up, measured in one process one model after another "
              "(`python docs/make_det_results.py --speed-only`); network only, then for "
              "R-CNN and Fast R-CNN also with their Selective Search (one thread, median "
              "ms per image) in front. Training minutes include R-CNN's second stage and "
              "YOLO's classification pre-training. YOLO v1's preset resizes every image to "
              "64 px before its network (the others run at 128 px), part of its speed. The "
              "two SSD rows are the same network, so the gap between their images/s is the "
              "noise of this measurement on the shared 2-core machine.", "",
              "![speed against accuracy](detectors_speed_accuracy.png)", "",
              "The plot leaves out the ablation runs (alternating training, the other RoI "
              "layers of Mask R-CNN), which sit among their main runs."]
    return lines


def svd_table(weights: Path) -> list[dict]:
    """mAP and ms/image of the trained Fast R-CNN with fc6/fc7 truncated to each rank."""
    import numpy as np  # noqa: PLC0415

    from scratchvision import nn  # noqa: PLC0415
    from scratchvision.data.shapes import Shapes  # noqa: PLC0415
    from scratchvision.eval.detection import evaluate_detections  # noqa: PLC0415
    from scratchvision.nets import build_detector  # noqa: PLC0415
    from scratchvision.nets.detection import normalise, proposal_cache  # noqa: PLC0415
    from scratchvision.train_det import load_split, predict_split, time_predict  # noqa: PLC0415
    u8, targets = load_split("val", 200, 128, 0, progress=False)
    x = normalise(u8)
    props, _ = proposal_cache.load_or_compute(proposal_cache.cache_key("val", 200, 128, 0),
                                              progress=False)
    rows = []
    for r6, r7 in SVD_RANKS:
        model = build_detector("fast_rcnn", Shapes.num_classes, "small")
        model.load_state_dict(nn.load(weights))
        if r6 is not None:
            model.compress_fc(r6, r7)
        preds = predict_split(model, x, props, 8, "cpu")
        m = evaluate_detections(preds, targets, [t["image_id"] for t in targets],
                                [(128, 128)] * len(x), Shapes.classes)
        ms = float(np.median([time_predict(model, x, props, "cpu") for _ in range(3)]))
        head = model.roi_heads.box_head
        fc_params = sum(p.numel() for p in (*head.fc6.parameters(), *head.fc7.parameters()))
        rows.append({"ranks": "full" if r6 is None else f"{r6} / {r7}", "map": m["map"],
                     "ms": ms, "fc_parameters": int(fc_params)})
    return rows


def table() -> str:
    lines = ["# Detection results on Shapes", "",
             "Built-in Shapes data (circles, rectangles, triangles on textured backgrounds; "
             "3 classes), 128x128, 2,000 train / 200 val images, seed 0. Trained on the "
             "2-core CPU with scratchvision's own kernels and autograd; box AP by the "
             "project's evaluators (VOC devkit rules, COCOeval rules). Re-create with "
             "`python docs/make_det_results.py`.", "",
             "| model | paper | parameters | epochs | train min | other stage min | "
             "mAP@0.5 (VOC area) | VOC07 | COCO AP@[.5:.95] | target | met | ms/image | "
             "proposals ms/image |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|"]
    results = {}
    for model in SHAPES_RUNS:
        path = RUNS / model / "result.json"
        if not path.exists():
            continue
        r = json.loads(path.read_text())
        results[model] = r
        target = TARGETS[model]
        met = "" if target is None else "yes" if r["val_map"] >= target else "**no**"
        prop = r.get("proposal_ms_per_image")
        second = r.get("finish_minutes", 0.0) + r.get("pretrain_minutes", 0.0)
        lines.append(
            f"| {model} | {PAPERS[model]} | {r['parameters']:,} | {r['epochs']} | "
            f"{r['minutes']:.1f} | {second:.1f} | {r['val_map']:.4f} | "
            f"{r['val_map07']:.4f} | {r['val_coco_ap']:.4f} | "
            f"{'' if target is None else f'{target:.2f}'} | {met} | "
            f"{r['ms_per_image']:.1f} | {'' if prop is None else f'{prop:.0f}'} |")
    lines += ["", "Per-class AP@0.5 (VOC area):", "",
              "| model | circle | rectangle | triangle |", "|---|---:|---:|---:|"]
    for model, r in results.items():
        ap = r["val_ap"]
        lines.append(f"| {model} | {ap['circle']:.4f} | {ap['rectangle']:.4f} | "
                     f"{ap['triangle']:.4f} |")
    if "rcnn" in results and "fast_rcnn" in results:
        a, b = results["rcnn"]["ms_per_image"], results["fast_rcnn"]["ms_per_image"]
        lines += ["", f"At test time Fast R-CNN's network takes {b:.1f} ms per image against "
                      f"R-CNN's {a:.1f} ms: {a / b:.1f}x faster (the paper: 146x with VGG16 at "
                      "600 px and 2,000 proposals; here R-CNN warps only ~130 proposals to "
                      "32 px, so its per-window cost is small, and the gap is narrow)."]
    rc = results.get("rcnn", {})
    if "softmax_val_map" in rc:
        lines += ["", f"R-CNN scored by the fine-tuned softmax instead of the SVMs (the "
                      f"paper's section 3 comparison): mAP {rc['softmax_val_map']:.4f} "
                      f"(SVMs + box regression: {rc['val_map']:.4f})."]
    lines += two_stage_section(results)
    if "yolo_v1" in results:
        r = results["yolo_v1"]
        lines += ["", YOLO_NOTE.format(map=r["val_map"], coco=r["val_coco_ap"],
                                       minutes=r["minutes"] + r["pretrain_minutes"])]
    ssd, plain = results.get("ssd"), results.get("ssd_no_augmentation")
    if ssd and plain:
        lines += ["", f"SSD's data augmentation (the paper's table 2 ablation; photometric "
                      f"distortion, zoom out, min-IoU crops, flips): mAP@0.5 {ssd['val_map']:.4f} "
                      f"with it, {plain['val_map']:.4f} without (same schedule, "
                      f"{plain['epochs']} epochs); COCO AP {ssd['val_coco_ap']:.4f} against "
                      f"{plain['val_coco_ap']:.4f}. The paper gains 8.8 points on VOC07 "
                      f"with it, over ~100 k iterations; here the budget is {ssd['epochs']} "
                      f"passes over 2,000 images, and the augmented images (zoomed out to "
                      f"smaller objects, cropped, recoloured) are harder to fit in it: the "
                      f"last epoch's training loss was {ssd['history'][-1]['loss']:.2f} "
                      f"with it, {plain['history'][-1]['loss']:.2f} without. Without it "
                      f"val mAP held up to the last epochs ("
                      + ", ".join(f"{h['val_map']:.3f}" for h in plain["history"][-3:])
                      + "), so there was little overfitting for the augmentation to prevent."]
    svd = results.get("fast_rcnn", {}).get("svd")
    if svd:
        lines += ["", "Fast R-CNN at test time with fc6/fc7 compressed by truncated SVD "
                      "(section 3.1), same weights, same proposals:", "",
                  "| ranks fc6 / fc7 | fc parameters | mAP@0.5 | ms/image |",
                  "|---|---:|---:|---:|"]
        for row in svd:
            lines.append(f"| {row['ranks']} | {row['fc_parameters']:,} | {row['map']:.4f} | "
                         f"{row['ms']:.1f} |")
        lines += ["", "Accuracy holds down to rank 32 (a seventh of the fc weights). The time "
                      "barely moves: with ~130 RoIs per image the fc layers are a small part "
                      "of the work (the conv layers and RoI pooling dominate), unlike the "
                      "paper's 2,000 RoIs and 4,096-wide layers; these ms are medians of 3 "
                      "passes over 50 images and vary by about 20 % from run to run."]
    if SPEED.exists():
        lines += every_detector_table(results, json.loads(SPEED.read_text()))
    lines += nuclei_section()
    lines += ["", "Commands:", ""]
    for model, r in results.items():
        lines.append(f"- {model}: `{' '.join(r.get('command', command(model)))}`")
    for run in NUCLEI_RUNS:
        if (RUNS / run / "result.json").exists():
            lines.append(f"- {run}: `{' '.join(command(run))}`")
    lines += ["", "Train minutes: the training loop's wall-clock time (data generation and "
              "proposals excluded); other stage: R-CNN's feature caching, SVMs with hard "
              "negative mining and box regressors after the loop, YOLO v1's "
              "classification pre-training of its conv layers before it. ms/image: median "
              "time of `predict` on "
              "one 128x128 image, Selective Search excluded (listed beside it, one "
              "thread: proposal computation comes before the network in R-CNN and Fast "
              "R-CNN alike). Selective Search of all 2,200 images took "
              f"{_proposal_minutes(results)} with 2 worker processes, once, cached for "
              "both proposal-based models. Pictures and curves of each run are in "
              "runs/results/<model>/ (not committed; `runs/` is ignored)."]
    return "\n".join(lines) + "\n"


def _met(value: float, target: float | None) -> str:
    return "" if target is None else "yes" if value >= target else "**no**"


def two_stage_section(results: dict) -> list[str]:
    """Faster and Mask R-CNN: schedules, poolers, box and mask AP against the targets."""
    runs = [r for r in TWO_STAGE if r in results]
    if not runs:
        return []
    lines = ["", "## Faster R-CNN and Mask R-CNN", "",
             "| run | schedule | pooler | epochs | train min | box mAP@0.5 | box COCO AP | "
             "mask AP@0.5 | mask AP@[.5:.95] | targets met | ms/image |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---|---:|"]
    for run in runs:
        r = results[run]
        s = r.get("settings", {})
        pooler = s.get("pooler") or ("roi_align" if r["model"] == "mask_rcnn" else "roi_pool")
        mask = r.get("val_mask_ap50")
        met = [_met(r["val_map"], TARGETS.get(run))]
        if mask is not None and run == "mask_rcnn":
            met.append(_met(mask, MASK_TARGET))
        schedule = r.get("schedule", "joint")
        if schedule == "alternating":
            schedule += " " + "+".join(str(e) for e in s.get("stage_epochs", []))
        lines.append(
            f"| {run} | {schedule} | {pooler} | {r['epochs']} | {r['minutes']:.1f} | "
            f"{r['val_map']:.4f} | {r['val_coco_ap']:.4f} | "
            f"{'' if mask is None else f'{mask:.4f}'} | "
            f"{'' if mask is None else format(r['val_mask_ap'], '.4f')} | "
            f"{' / '.join(m for m in met if m)} | {r['ms_per_image']:.1f} |")
    lines += ["", "Targets: box mAP@0.5 >= 0.92 (VOC area, as every row above), Mask R-CNN's "
              "mask AP@0.5 >= 0.88 (COCO's AP50 on the masks: mask IoU >= 0.5, 101-point "
              "interpolation). Box COCO AP and the mask numbers come from the project's "
              "COCOeval (`eval/coco.py`, pycocotools' rules). ms/image: median `predict` "
              "time on one 128x128 image, RPN and (for Mask R-CNN) mask paste-back "
              "included; Faster R-CNN needs no Selective Search in front. These runs "
              "were trained two at a time, each on one core with one thread "
              "(`taskset -c N`, `NUMBA_NUM_THREADS=1`): a Faster R-CNN step of 4 images "
              "took 0.26 s that way and 0.23 s with both cores, so a run's minutes are "
              "within ~10 % of a run alone on the machine. The ms/image were timed while "
              "the other core trained, so they are noisier than the every-detector table's "
              "(the two RoIAlign Mask R-CNN rows are the same network: 50 and 38 ms)."]
    abl = [r for r in ("mask_rcnn_roi_pool", "mask_rcnn_roi_align_unaligned", "mask_rcnn")
           if r in results]
    if len(abl) > 1:
        lines += ["", "The Mask R-CNN paper's RoI layer ablation (its table 2c), same "
                  "schedule, the layer changed in both the box and the mask branch:", "",
                  "| RoI layer | mask AP@0.5 | mask AP@0.75 | mask AP@[.5:.95] | box AP@[.5:.95] |",
                  "|---|---:|---:|---:|---:|"]
        names = {"mask_rcnn_roi_pool": "RoIPool (quantised bins, max)",
                 "mask_rcnn_roi_align_unaligned": "RoIAlign, aligned=False",
                 "mask_rcnn": "RoIAlign, aligned=True"}
        for run in abl:
            r = results[run]
            segm = r.get("val_segm", {})
            lines.append(f"| {names[run]} | {r['val_mask_ap50']:.4f} | "
                         f"{segm.get('AP75', float('nan')):.4f} | {r['val_mask_ap']:.4f} | "
                         f"{r['val_coco_ap']:.4f} |")
        if "mask_rcnn_roi_pool" in results and "mask_rcnn" in results:
            a, b = results["mask_rcnn_roi_pool"], results["mask_rcnn"]
            lines += ["", f"RoIPool's quantisation costs little at IoU 0.5 (mask AP "
                      f"{a['val_mask_ap50']:.3f} against {b['val_mask_ap50']:.3f}) and much at "
                      f"stricter overlaps (AP75 {a['val_segm']['AP75']:.3f} against "
                      f"{b['val_segm']['AP75']:.3f}, AP@[.5:.95] {a['val_mask_ap']:.3f} against "
                      f"{b['val_mask_ap']:.3f}): on a stride-8 map a rounded bin edge moves the "
                      "mask by up to 4 pixels, a large part of a 12-64 pixel shape. The boxes "
                      f"lose too (box COCO AP {a['val_coco_ap']:.3f} against "
                      f"{b['val_coco_ap']:.3f}); Faster R-CNN shows the same (table above: "
                      "RoIAlign lifts box COCO AP from "
                      + (f"{results['faster_rcnn']['val_coco_ap']:.3f} to "
                         f"{results['faster_rcnn_roi_align']['val_coco_ap']:.3f}"
                         if "faster_rcnn" in results and "faster_rcnn_roi_align" in results
                         else "(not run)")
                      + " at an unchanged mAP@0.5). With or without the half-pixel offset "
                      "RoIAlign scores the same here (within 0.005): the offset moves every "
                      "sample by the same half feature cell in training and testing alike, a "
                      "constant shift the heads can absorb (our reading; not measured "
                      "further)."]
    alt = results.get("faster_rcnn_alternating")
    if alt:
        steps = {}
        for h in alt["history"]:
            steps[h["step"]] = h
        parts = []
        for k, h in sorted(steps.items()):
            metric = (f"proposal recall@0.5 {h['val_recall']:.3f}" if "val_recall" in h
                      else f"mAP@0.5 {h['val_map']:.3f}")
            parts.append(f"step {k}: {metric}")
        lines += ["", "4-step alternating training, the end of each step: " + "; ".join(parts)
                  + ". (Step 1: backbone + RPN; 2: a fresh backbone + detector head on the "
                  "frozen step-1 proposals; 3: RPN head on the frozen step-2 backbone; 4: "
                  "detector head on the step-3 proposals.)"]
    return lines


def nuclei_section() -> list[str]:
    """Mask R-CNN and U-Net on the stardist nuclei tiles."""
    mr, un = (RUNS / "mask_rcnn_nuclei" / "result.json", RUNS / "unet_nuclei" / "result.json")
    if not (mr.exists() or un.exists()):
        return []
    lines = ["", "## Real data: nuclei in fluorescence microscopy", "",
             "The 2-D nuclei image and its instance masks shipped in the `stardist==0.9.2` "
             "wheel (512x512, 125 nuclei, BSD-3; `data/nuclei.py`): columns x < 384 train, "
             "x >= 384 validate. 128x128 tiles: 35 overlapping training tiles (stride 64; "
             "train-det also takes each tile's 8 flips and rotations, 280 images), 4 "
             "validation tiles holding 33 nucleus instances. Nuclei are the one class.", ""]
    if mr.exists():
        r = json.loads(mr.read_text())
        lines += ["| Mask R-CNN (small) | mask AP@0.5 | mask AP@[.5:.95] | box AP@0.5 (VOC) | "
                  "box COCO AP | epochs | train min |", "|---|---:|---:|---:|---:|---:|---:|",
                  f"| val tiles | {r['val_mask_ap50']:.4f} | {r['val_mask_ap']:.4f} | "
                  f"{r['val_map']:.4f} | {r['val_coco_ap']:.4f} | {r['epochs']} | "
                  f"{r['minutes']:.1f} |", "",
                  "![Mask R-CNN on the validation tiles: predictions beside the ground truth]"
                  "(nuclei_mask_rcnn_nuclei.png)", ""]
    if un.exists():
        r = json.loads(un.read_text())
        lines += ["| U-Net (small) | foreground IoU | mIoU | epochs | train min |",
                  "|---|---:|---:|---:|---:|",
                  f"| val tiles | {r['val_foreground_iou']:.4f} | {r['val_miou']:.4f} | "
                  f"{r['epochs']} | {r['minutes']:.1f} |", "",
                  "![U-Net on the validation tiles: image, ground truth, prediction]"
                  "(nuclei_unet_nuclei.png)"]
    return lines


def _proposal_minutes(results: dict) -> str:
    s = max((r.get("proposal_seconds", 0.0) for r in results.values()), default=0.0)
    return f"{s / 60:.1f} min" if s else "(cached before these runs)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="*", default=list(MODELS) + ["unet_nuclei"],
                        choices=list(MODELS) + ["unet_nuclei"])
    parser.add_argument("--table-only", action="store_true", help="rebuild the table only")
    parser.add_argument("--speed", action="store_true",
                        help="after training, measure every trained run's test speed")
    parser.add_argument("--speed-only", action="store_true",
                        help="re-measure every trained run's test speed, then the table")
    args = parser.parse_args()
    if not (args.table_only or args.speed_only):
        for model in args.models:
            cmd = command(model)
            print(" ".join(cmd), flush=True)
            t0 = time.time()
            if cmd[0] == "mpiexec":      # the venv's (the mpich wheel's), this Python, and
                launcher = str(Path(sys.executable).with_name("mpiexec"))   # one thread a rank
                argv = [launcher, *cmd[1:3], "-genv", "NUMBA_NUM_THREADS", "1", sys.executable,
                        *cmd[4:]]
            else:
                argv = [sys.executable] + cmd[1:]
            subprocess.run(argv, cwd=ROOT, check=True)
            path = RUNS / model / "result.json"
            r = json.loads(path.read_text())
            r["command"] = cmd
            r["wall_minutes_with_data"] = (time.time() - t0) / 60
            if model == "fast_rcnn":
                r["svd"] = svd_table(RUNS / model / "model.npz")
            if model in NUCLEI_RUNS:
                r["pictures"] = nuclei_pictures(model)
            path.write_text(json.dumps(r, indent=1))
    if args.speed or args.speed_only:
        SPEED.write_text(json.dumps(measure_speed(SHAPES_RUNS), indent=1))
    OUT.write_text(table())
    if SPEED.exists():
        results = {run: json.loads((RUNS / run / "result.json").read_text())
                   for run in SHAPES_RUNS if (RUNS / run / "result.json").exists()}
        plot_speed_accuracy(results, json.loads(SPEED.read_text()), PLOT)
    print(OUT.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
