"""Re-create docs/DETECTION_RESULTS.md: train every detector on Shapes and tabulate box mAP.

    python docs/make_det_results.py                        # all three, the table's settings
    python docs/make_det_results.py --models fast_rcnn     # one model (the table keeps the rest)
    python docs/make_det_results.py --table-only           # rebuild the table from runs/

Each detector is trained by the public CLI in its own process, with the exact command in
the table: Shapes at 128 px, 2,000 train / 200 val images, seed 0, the 'small' preset and
the model's default schedule (``train_det.DEFAULTS``). Selective Search proposals are
computed once (and cached) before the first proposal-based model trains; their time is
listed separately. After Fast R-CNN trains, its fc6/fc7 are compressed by truncated SVD
at several ranks (the paper's section 3.1) and each variant is evaluated for mAP and
test-time speed. Results accumulate in runs/results/<model>/result.json.
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
MODELS = ("sliding_window", "rcnn", "fast_rcnn")
TARGETS = {"sliding_window": 0.80, "rcnn": 0.85, "fast_rcnn": 0.90}
PAPERS = {"sliding_window": "OverFeat (Sermanet et al. 2014)",
          "rcnn": "R-CNN (Girshick et al. 2014)", "fast_rcnn": "Fast R-CNN (Girshick 2015)"}
SVD_RANKS = ((None, None), (128, 128), (64, 64), (32, 32), (16, 16))


def command(model: str) -> list[str]:
    return ["python", "-m", "scratchvision", "train-det", "--model", model, "--size", "small",
            "--image-size", "128", "--train-images", "2000", "--val-images", "200",
            "--seed", "0", "--out", f"runs/results/{model}", "--quiet"]


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
             "| model | paper | parameters | epochs | train min | 2nd stage min | "
             "mAP@0.5 (VOC area) | VOC07 | COCO AP@[.5:.95] | target | met | ms/image | "
             "proposals ms/image |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|"]
    results = {}
    for model in MODELS:
        path = RUNS / model / "result.json"
        if not path.exists():
            continue
        r = json.loads(path.read_text())
        results[model] = r
        met = "yes" if r["val_map"] >= TARGETS[model] else "**no**"
        prop = r.get("proposal_ms_per_image")
        lines.append(
            f"| {model} | {PAPERS[model]} | {r['parameters']:,} | {r['epochs']} | "
            f"{r['minutes']:.1f} | {r.get('finish_minutes', 0):.1f} | {r['val_map']:.4f} | "
            f"{r['val_map07']:.4f} | {r['val_coco_ap']:.4f} | {TARGETS[model]:.2f} | {met} | "
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
    lines += ["", "Commands:", ""]
    for model, r in results.items():
        lines.append(f"- {model}: `{' '.join(r.get('command', command(model)))}`")
    lines += ["", "Train minutes: the training loop's wall-clock time (data generation and "
              "proposals excluded); 2nd stage: R-CNN's feature caching, SVMs with hard "
              "negative mining and box regressors. ms/image: median time of `predict` on "
              "one 128x128 image, Selective Search excluded (listed beside it, one "
              "thread: proposal computation comes before the network in R-CNN and Fast "
              "R-CNN alike). Selective Search of all 2,200 images took "
              f"{_proposal_minutes(results)} with 2 worker processes, once, cached for "
              "both proposal-based models. Pictures and curves of each run are in "
              "runs/results/<model>/ (not committed; `runs/` is ignored)."]
    return "\n".join(lines) + "\n"


def _proposal_minutes(results: dict) -> str:
    s = max((r.get("proposal_seconds", 0.0) for r in results.values()), default=0.0)
    return f"{s / 60:.1f} min" if s else "(cached before these runs)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="*", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--table-only", action="store_true", help="rebuild the table only")
    args = parser.parse_args()
    if not args.table_only:
        for model in args.models:
            cmd = command(model)
            print(" ".join(cmd), flush=True)
            t0 = time.time()
            subprocess.run([sys.executable] + cmd[1:], cwd=ROOT, check=True)
            path = RUNS / model / "result.json"
            r = json.loads(path.read_text())
            r["command"] = cmd
            r["wall_minutes_with_data"] = (time.time() - t0) / 60
            if model == "fast_rcnn":
                r["svd"] = svd_table(RUNS / model / "model.npz")
            path.write_text(json.dumps(r, indent=1))
    OUT.write_text(table())
    print(OUT.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
