"""Re-create docs/RESULTS.md: train every segmenter on Shapes and tabulate val mIoU.

    python docs/make_results.py                  # all six models, the table's settings
    python docs/make_results.py --models unet    # one model (the table keeps the others)

Each model is trained by the public CLI in its own process, with the exact command
recorded in the table: Shapes at 128 px, 2,000 train / 200 val images, seed 0, the 'small'
preset, the epochs below (chosen so each run stays within 15 minutes on a 2-core CPU).
Results accumulate in runs/results/<model>/result.json; the table is rebuilt from all of
them.
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
EPOCHS = {"fcn32s": 18, "fcn16s": 18, "fcn8s": 18, "deconvnet": 9, "dilated": 16, "unet": 6}
TARGETS = {"fcn32s": 0.75, "fcn16s": 0.85, "fcn8s": 0.90, "deconvnet": 0.90, "dilated": 0.90,
           "unet": 0.90}


def command(model: str, epochs: int) -> list[str]:
    return ["python", "-m", "scratchvision", "train-seg", "--model", model, "--size", "small",
            "--image-size", "128", "--train-images", "2000", "--val-images", "200",
            "--seed", "0", "--epochs", str(epochs), "--out", f"runs/results/{model}", "--quiet"]


def table() -> str:
    lines = ["# Segmentation results on Shapes", "",
             "Built-in Shapes data (circles, rectangles, triangles on textured backgrounds; "
             "4 classes with background), 128x128, 2,000 train / 200 val images, seed 0. "
             "Trained on the CPU with scratchvision's own kernels and autograd. "
             "Re-create with `python docs/make_results.py`.", "",
             "| model | parameters | epochs | minutes | val mIoU | target | met | command |",
             "|---|---:|---:|---:|---:|---:|---|---|"]
    results = {}
    for model in EPOCHS:
        path = RUNS / model / "result.json"
        if not path.exists():
            continue
        r = json.loads(path.read_text())
        results[model] = r
        cmd = " ".join(r.get("command", command(model, r["epochs"]))[1:])
        met = "yes" if r["val_miou"] >= TARGETS[model] else "no"
        lines.append(f"| {model} | {r['parameters']:,} | {r['epochs']} | {r['minutes']:.1f} | "
                     f"{r['val_miou']:.4f} | {TARGETS[model]:.2f} | {met} | `python {cmd}` |")
    if all(m in results for m in ("fcn32s", "fcn16s", "fcn8s")):
        a, b, c = (results[m]["val_miou"] for m in ("fcn32s", "fcn16s", "fcn8s"))
        lines += ["", f"FCN ordering 32s < 16s < 8s: {a:.4f} < {b:.4f} < {c:.4f}: "
                  f"{'reproduced' if a < b < c else 'NOT reproduced'}."]
    lines += ["", "Minutes are the wall-clock time of the training loop (data generation "
              "excluded) on the 2-core development machine; short test runs shared the machine "
              "for part of some runs. Per-epoch curves are in runs/results/<model>/log.jsonl "
              "(not committed; `runs/` is ignored)."]
    unet = ROOT / "runs" / "results" / "unet_nuclei" / "result.json"
    if unet.exists():
        r = json.loads(unet.read_text())
        lines += ["", f"On real data, stardist's fluorescence image of cell nuclei (U-Net's "
                  f"own domain; `--data nuclei`, 4 validation tiles of 128 px): U-Net "
                  f"foreground IoU {r['val_foreground_iou']:.4f}, mIoU {r['val_miou']:.4f} "
                  f"after {r['epochs']} epochs ({r['minutes']:.1f} min), beside Mask R-CNN's "
                  "instance masks on the same tiles in [DETECTION_RESULTS.md]"
                  "(DETECTION_RESULTS.md#real-data-nuclei-in-fluorescence-microscopy), made by "
                  "`python docs/make_det_results.py --models unet_nuclei mask_rcnn_nuclei`."]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="*", default=list(EPOCHS), choices=list(EPOCHS))
    parser.add_argument("--table-only", action="store_true", help="rebuild the table only")
    args = parser.parse_args()
    if not args.table_only:
        for model in args.models:
            cmd = command(model, EPOCHS[model])
            print(" ".join(cmd), flush=True)
            t0 = time.time()
            subprocess.run([sys.executable] + cmd[1:], cwd=ROOT, check=True)
            path = RUNS / model / "result.json"
            r = json.loads(path.read_text())
            r["command"] = cmd
            r["wall_minutes_with_data"] = (time.time() - t0) / 60
            path.write_text(json.dumps(r, indent=1))
            print(f"{model}: val mIoU {r['val_miou']:.4f} in {r['minutes']:.1f} min", flush=True)
            (ROOT / "docs" / "RESULTS.md").write_text(table())
    (ROOT / "docs" / "RESULTS.md").write_text(table())
    print(table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
