"""Autograd engine cost: an MLP training step and the per-op Python overhead.

MLP: batch 64, 784-256-256-10, ReLU, cross-entropy, SGD with momentum; one step is
forward + backward + update. Compared with the same step written by hand in raw NumPy
(the floor for an engine over NumPy: same GEMMs, no graph) and with PyTorch CPU.
Per-op overhead: forward + backward of one op on an 8-element tensor, where the arithmetic
is negligible and what is timed is the engine's bookkeeping, in microseconds.
"""
from __future__ import annotations

import numpy as np

from benchmarks.harness import Row, timed_row, try_import


def _mlp_data(rng, batch=64):
    x = rng.standard_normal((batch, 784)).astype(np.float32)
    y = rng.integers(0, 10, batch)
    sizes = [(784, 256), (256, 256), (256, 10)]
    ws = [(rng.standard_normal((o, i)) / np.sqrt(i)).astype(np.float32) for i, o in sizes]
    bs = [np.zeros(o, np.float32) for _, o in sizes]
    return x, y, ws, bs


def _scratchvision_step(x, y, ws, bs):
    import scratchvision as sv
    from scratchvision import nn
    model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
                          nn.Linear(256, 10))
    for lin, w, b in zip([model[0], model[2], model[4]], ws, bs):
        lin.weight.data[...] = w
        lin.bias.data[...] = b
    opt = nn.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    xt = sv.tensor(x)

    def step():
        loss = sv.functional.cross_entropy(model(xt), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return step


def _numpy_step(x, y, ws, bs):
    ws = [w.copy() for w in ws]
    bs = [b.copy() for b in bs]
    vel = [np.zeros_like(p) for p in ws + bs]

    def step():
        h1 = np.maximum(x @ ws[0].T + bs[0], 0)
        h2 = np.maximum(h1 @ ws[1].T + bs[1], 0)
        z = h2 @ ws[2].T + bs[2]
        z = z - z.max(1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(1, keepdims=True)
        p[np.arange(len(y)), y] -= 1
        gz = p / len(y)
        gw3, gb3 = gz.T @ h2, gz.sum(0)
        g2 = (gz @ ws[2]) * (h2 > 0)
        gw2, gb2 = g2.T @ h1, g2.sum(0)
        g1 = (g2 @ ws[1]) * (h1 > 0)
        gw1, gb1 = g1.T @ x, g1.sum(0)
        for param, g, v in zip(ws + bs, [gw1, gw2, gw3, gb1, gb2, gb3], vel):
            v *= 0.9
            v += g
            param -= 0.01 * v
    return step


def _torch_step(torch, x, y, ws, bs):
    torch.set_num_threads(max(1, torch.get_num_threads()))
    model = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(),
                                torch.nn.Linear(256, 256), torch.nn.ReLU(),
                                torch.nn.Linear(256, 10))
    with torch.no_grad():
        for lin, w, b in zip([model[0], model[2], model[4]], ws, bs):
            lin.weight.copy_(torch.from_numpy(w))
            lin.bias.copy_(torch.from_numpy(b))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    def step():
        loss = torch.nn.functional.cross_entropy(model(xt), yt)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return step


OPS = {
    "add": (lambda a, b: a + b, 2),
    "mul": (lambda a, b: a * b, 2),
    "exp": (lambda a: a.exp(), 1),
    "relu": (lambda a: a.relu(), 1),
    "sum": (lambda a: a.sum(), 1),
    "matmul": (lambda a, b: a @ b, 2),
    "getitem": (lambda a: a[1:3], 1),
    "reshape": (lambda a: a.reshape(4, 2), 1),
}


def _op_case(fn, nargs, make, backward):
    def run():
        args = make(nargs)
        out = fn(*args)
        if backward:
            out.sum().backward()
    return run


def run(quick: bool = False) -> list[Row]:
    rng = np.random.default_rng(0)
    torch = try_import("torch")
    rows: list[Row] = []
    repeat = 5 if quick else 50
    x, y, ws, bs = _mlp_data(rng)
    flops = 3 * 2 * 64 * (784 * 256 + 256 * 256 + 256 * 10)  # fwd + 2 GEMMs in bwd
    case = "MLP step b64 784-256-256-10"
    rows.append(timed_row(case, "scratchvision", _scratchvision_step(x, y, ws, bs),
                          work=flops, work_unit="GFLOP/s", repeat=repeat, warmup=3))
    rows.append(timed_row(case, "raw numpy (by hand)", _numpy_step(x, y, ws, bs),
                          work=flops, work_unit="GFLOP/s", repeat=repeat, warmup=3))
    if torch is not None:
        rows.append(timed_row(case, "torch", _torch_step(torch, x, y, ws, bs), peer=True,
                              work=flops, work_unit="GFLOP/s", repeat=repeat, warmup=3))

    import scratchvision as sv
    small = rng.standard_normal((8,)).astype(np.float32)
    mat = rng.standard_normal((8, 8)).astype(np.float32)
    for name, (fn, nargs) in OPS.items():
        shape = mat if name == "matmul" else small
        case = f"op overhead fwd+bwd: {name} (8 elems)"

        def make_sv(n, shape=shape):
            return [sv.tensor(shape, requires_grad=True) for _ in range(n)]
        rows.append(timed_row(case, "scratchvision", _op_case(fn, nargs, make_sv, True),
                              repeat=200 if not quick else 5, warmup=5, note="µs = engine cost"))
        if torch is not None:
            def make_t(n, shape=shape):
                return [torch.tensor(shape, requires_grad=True) for _ in range(n)]
            rows.append(timed_row(case, "torch", _op_case(fn, nargs, make_t, True), peer=True,
                                  repeat=200 if not quick else 5, warmup=5))
        def make_np(n, shape=shape):
            return [shape.copy() for _ in range(n)]
        np_fn = {"exp": lambda a: np.exp(a), "relu": lambda a: np.maximum(a, 0),
                 "sum": lambda a: a.sum(), "reshape": lambda a: a.reshape(4, 2)}.get(name, fn)
        rows.append(timed_row(case, "raw numpy fwd only",
                              lambda np_fn=np_fn, make_np=make_np, nargs=nargs: np_fn(
                                  *make_np(nargs)), repeat=200 if not quick else 5, warmup=5))
    return rows


def summary(rows: list[Row]) -> str:
    by = {(r.case, r.impl): r.seconds for r in rows}
    case = "MLP step b64 784-256-256-10"
    lines = []
    if (case, "torch") in by:
        ratio = by[(case, "scratchvision")] / by[(case, "torch")]
        lines.append(f"MLP training step: {ratio:.2f}x PyTorch CPU (goal <= 1.5x: "
                     f"{'met' if ratio <= 1.5 else 'NOT met'}); "
                     f"{by[(case, 'scratchvision')] / by[(case, 'raw numpy (by hand)')]:.2f}x "
                     "the hand-written NumPy step.")
    overheads = [r.seconds * 1e6 for r in rows if r.case.startswith("op overhead")
                 and r.impl == "scratchvision"]
    if overheads:
        lines.append(f"Per-op fwd+bwd cost on 8-element tensors: median "
                     f"{np.median(overheads):.1f} µs (range {min(overheads):.1f}-"
                     f"{max(overheads):.1f} µs) including tensor creation and backward().")
    return "\n".join(lines)
