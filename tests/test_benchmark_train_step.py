"""``benchmarks/train_step.py`` without its peers: the quick run times all four models
(U-Net, FCN-8s, Faster R-CNN, SSD) with scratchvision alone, and the summary reports each
detector row's ratio to the 2x goal, or why its torchvision peer is absent."""
from benchmarks import train_step
from benchmarks.harness import Row


def test_quick_run_without_peers(monkeypatch):
    monkeypatch.setattr(train_step, "try_import", lambda name: None)
    rows = train_step.run(quick=True)
    assert [r.case.split()[0] for r in rows] == ["unet", "fcn8s", "faster_rcnn", "ssd"]
    assert all(r.impl == "scratchvision" and not r.peer and r.seconds > 0 for r in rows)
    text = train_step.summary(rows).splitlines()
    assert len(text) == 2
    for line, name in zip(text, ("faster_rcnn (tiny", "ssd (tiny")):
        assert line.startswith(name) and "no torchvision peer (PyTorch is not installed)" in line


def test_summary_ratio_and_parameter_counts():
    case = "ssd (small, 10 params) step b16 128x128"
    ours = Row(case, "scratchvision", 3.0, extra={"params": 10})
    peer = Row(case, "torchvision", 1.0, peer=True, extra={"params": 10})
    line = train_step.summary([ours, peer])
    assert line == (f"{case}: 3.00x torchvision (PyTorch CPU) (goal <= 2x: NOT met); "
                    "params 10 vs 10 (equal)")
    seg = train_step.summary([Row("unet", "scratchvision", 1.0),
                              Row("unet", "torch", 1.0, peer=True)])
    assert seg == "unet: 1.00x PyTorch CPU (goal <= 2x: met)"
