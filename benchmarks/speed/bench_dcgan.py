"""The DCGAN step (``--arch dcgan``) against PyTorch eager on the same architecture and against its GEMM floor.

Contenders, each one full training step at batch N (float32, Adam(2e-4, (0.5, 0.999)), the same data batch):

* ``minigan`` -- ``GAN.train_step(real)``, the public API, exactly as ``minigan train`` calls it.
* ``torch``   -- the same G and D in PyTorch eager (``benchmarks/quality/dcgan_table.torch_dcgan``), written as a
  competent user would: D on ``cat(real, G(z).detach())`` computed under ``no_grad``, D frozen with
  ``requires_grad_(False)`` for the G step, ``zero_grad(set_to_none=True)``, ``torch.optim.Adam(foreach=True)``.
  Runs under an interpreter that has torch (``--torch-python``, default this one; e.g. a venv with a CPU
  build of torch and the same NumPy).
* ``gemm``    -- the GEMM floor: only the matrix products of one step, on the step's shapes (contiguous operands,
  preallocated outputs): G forward at N and D forward at 2N, D's weight gradients and its input gradients but the
  first layer's (D step); G and D forward at N, D's input gradients (all layers, D frozen), G's weight gradients
  and its input gradients but the first layer's (G step). A convolution is one GEMM of its im2col matrix.

Two protocols, both alternating so a noisy neighbour slows everyone alike (the machine is shared):

* ``--mode rounds``: minigan and the floor in one process; torch in a second, long-lived worker process; the
  contenders take turns in ``--rounds`` rounds of ``steps / rounds`` steps, the order rotating each round.
* ``--mode processes``: each implementation in a fresh process of its own per round (no shared allocator, BLAS or
  OpenMP pools), rotating the order; each process warms up, then times its block.

``--profile``: where minigan's step time goes, by exclusive timers on the real step (a timer's time excludes the
timers nested in it): im2col, col2im, conv/dense layers (their GEMMs, bias adds and layout work; the GEMM floor
beside it says how much is GEMM), batch norm, elementwise (activations, reshapes), Adam, and the rest of the step
(losses, noise, stacking real and fake, Python).

``--memory``: peak resident memory of a process that builds the DCGAN and trains ``--steps`` steps at batch N.

    python benchmarks/speed/bench_dcgan.py --threads 2 --batch 64 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent


def _set_threads(n: int) -> None:
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(n)


if __name__ == "__main__":  # thread counts must be set before NumPy loads its BLAS
    for i, a in enumerate(sys.argv):
        if a == "--threads" and i + 1 < len(sys.argv):
            _set_threads(int(sys.argv[i + 1]))
        elif a.startswith("--threads="):
            _set_threads(int(a.split("=", 1)[1]))

sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks" / "quality"))

import numpy as np  # noqa: E402

LR, BETAS = 2e-4, (0.5, 0.999)
NOISE = 100


def real_batch(n, seed=0):
    return np.tanh(np.random.default_rng(seed).standard_normal((n, 784))).astype(np.float32)  # (N, 784)


# ---------------------------------------------------------------------------------------------- contenders


class Minigan:
    name = "minigan"

    def __init__(self, n, seed=0):
        from minigan import models, optim
        from minigan.gan import GAN

        G, D = models.build_models("dcgan", 784, rng=np.random.default_rng(seed))
        self.gan = GAN(G, D, optim.Adam(G.params(), LR, BETAS), optim.Adam(D.params(), LR, BETAS), NOISE, rng=seed)
        self.real = real_batch(n, seed)

    def step(self):
        self.gan.train_step(self.real)


def gemm_shapes(n):
    """``[(m, k, n)]`` of every matrix product in one DCGAN step at batch n (see the module docstring)."""
    from minigan import models
    from minigan.nn import Conv2d, ConvTranspose2d, Dense

    G, D = models.build_models("dcgan", 784, rng=0)

    def layers(model, rows):
        """Per weighted layer: (forward, dW, dx) products as (m, k, n) at ``rows`` examples."""
        out, shape = [], (rows, NOISE) if model is G else (rows, 784)
        for m in model:
            if isinstance(m, Dense):
                out.append(((rows, m.in_features, m.out_features), (m.in_features, rows, m.out_features),
                            (rows, m.out_features, m.in_features)))
            elif isinstance(m, Conv2d):
                kk = m.kernel_size[0] * m.kernel_size[1]
                _, _, oh, ow = m.output_shape(shape)
                cols = oh * ow * rows
                out.append(((m.out_channels, m.in_channels * kk, cols), (m.out_channels, cols, m.in_channels * kk),
                            (m.in_channels * kk, m.out_channels, cols)))
            elif isinstance(m, ConvTranspose2d):
                kk = m.kernel_size[0] * m.kernel_size[1]
                cols = shape[2] * shape[3] * rows
                out.append(((m.out_channels * kk, m.in_channels, cols), (m.in_channels, cols, m.out_channels * kk),
                            (m.in_channels, m.out_channels * kk, cols)))
            shape = m.output_shape(shape)
        return out

    g_n, d_2n, d_n = layers(G, n), layers(D, 2 * n), layers(D, n)
    shapes = [f for f, _, _ in g_n] + [f for f, _, _ in d_2n]  # D step: G forward, D forward on real + fake
    shapes += [w for _, w, _ in d_2n] + [x for _, _, x in d_2n[1:]]  # D's dW, dx but the first layer's
    shapes += [f for f, _, _ in g_n] + [f for f, _, _ in d_n]  # G step: forward through G and D
    shapes += [x for _, _, x in d_n]  # D frozen: dx of every layer, down to the fakes
    shapes += [w for _, w, _ in g_n] + [x for _, _, x in g_n[1:]]  # G's dW, dx but the first layer's
    return shapes


class GemmFloor:
    name = "gemm"

    def __init__(self, n, seed=0):
        rng = np.random.default_rng(seed)
        self.ops = [(rng.standard_normal((m, k), dtype=np.float32), rng.standard_normal((k, c), dtype=np.float32),
                     np.empty((m, c), np.float32)) for m, k, c in gemm_shapes(n)]

    def step(self):
        for a, b, out in self.ops:
            np.matmul(a, b, out=out)


class Torch:
    name = "torch"

    def __init__(self, n, seed=0):
        import torch
        from dcgan_table import torch_dcgan

        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
        torch.manual_seed(seed)
        self.torch = torch
        self.G, self.D = torch_dcgan()
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=LR, betas=BETAS, foreach=True)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=LR, betas=BETAS, foreach=True)
        self.bce = torch.nn.BCEWithLogitsLoss()
        self.n = n
        self.ones, self.zeros = torch.ones(n, 1), torch.zeros(n, 1)
        self.real = torch.from_numpy(real_batch(n, seed))

    def step(self):
        torch, n = self.torch, self.n
        with torch.no_grad():
            fake = self.G(torch.randn(n, NOISE))
        logits = self.D(torch.cat([self.real, fake]))
        d_loss = self.bce(logits[:n], self.ones) + self.bce(logits[n:], self.zeros)
        self.opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        self.opt_d.step()
        self.D.requires_grad_(False)
        g_loss = self.bce(self.D(self.G(torch.randn(n, NOISE))), self.ones)
        self.opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        self.opt_g.step()
        self.D.requires_grad_(True)
        return float(d_loss), float(g_loss)  # read back, as minigan's train_step does


CONTENDERS = {"minigan": Minigan, "gemm": GemmFloor, "torch": Torch}


def time_steps(c, steps):
    out = []
    for _ in range(steps):
        t0 = time.perf_counter()
        c.step()
        out.append(time.perf_counter() - t0)
    return out


# ---------------------------------------------------------------------------------------------- worker process


def worker(args) -> int:
    """A contender in this process. ``--block S``: warm up, time S steps, print the ms list as JSON. Without it:
    serve blocks on stdin (one line per block: the number of steps) for the rounds protocol."""
    c = CONTENDERS[args.worker](args.batch)
    time_steps(c, args.warmup)
    if args.block:
        print(json.dumps([1e3 * t for t in time_steps(c, args.block)]), flush=True)
        return 0
    print("ready", flush=True)
    for line in sys.stdin:
        steps = int(line)
        time.sleep(args.settle)
        time_steps(c, 1)
        print(json.dumps([1e3 * t for t in time_steps(c, steps)]), flush=True)
    return 0


def _worker_cmd(name, args, block=0):
    python = args.torch_python if name == "torch" else sys.executable
    cmd = [python, str(Path(__file__).resolve()), "--worker", name, "--batch", str(args.batch), "--threads",
           str(args.threads), "--warmup", str(args.warmup), "--settle", str(args.settle)]
    return cmd + (["--block", str(block)] if block else [])


# ---------------------------------------------------------------------------------------------- protocols


def run_rounds(args) -> dict:
    """minigan and gemm in this process, torch in a worker; alternating blocks."""
    local = {name: CONTENDERS[name](args.batch) for name in ("minigan", "gemm")}
    for c in local.values():
        time_steps(c, args.warmup)
    proc = None
    if "torch" in args.contenders:
        proc = subprocess.Popen(_worker_cmd("torch", args), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
    names = [n for n in ("minigan", "gemm", "torch") if n in args.contenders]
    times = {n: [] for n in names}
    per = max(1, args.steps // args.rounds)
    for r in range(args.rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            if name == "torch":
                proc.stdin.write(f"{per}\n")
                proc.stdin.flush()
                times[name] += json.loads(proc.stdout.readline())
            else:
                time.sleep(args.settle)
                time_steps(local[name], 1)
                times[name] += [1e3 * t for t in time_steps(local[name], per)]
    if proc:
        proc.stdin.close()
        proc.wait()
    return times


def run_processes(args) -> dict:
    names = [n for n in ("minigan", "gemm", "torch") if n in args.contenders]
    times = {n: [] for n in names}
    per = max(1, args.steps // args.rounds)
    for r in range(args.rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            done = subprocess.run(_worker_cmd(name, args, block=per), capture_output=True, text=True, check=True)
            times[name] += json.loads(done.stdout.strip().splitlines()[-1])
    return times


# ---------------------------------------------------------------------------------------------- profile


def profile(args) -> dict:
    """Exclusive time per category inside ``GAN.train_step`` (ms per step, median over steps)."""
    from minigan import functional as F
    from minigan import nn, optim

    c = Minigan(args.batch)
    cats = {"im2col": [(F, "im2col")], "col2im": [(F, "col2im")],
            "conv/dense layers": [(k, m) for k in (nn.Conv2d, nn.ConvTranspose2d, nn.Dense) for m in
                                  ("forward", "backward")],
            "batch norm": [(k, m) for k in (nn.BatchNorm1d, nn.BatchNorm2d) for m in ("forward", "backward")],
            "elementwise": [(k, m) for k in (nn._Elementwise, nn.LeakyReLU, nn.Reshape, nn.Flatten)
                            for m in ("forward", "forward_inplace", "backward")],
            "Adam": [(optim.Adam, "step")]}
    totals = {k: 0.0 for k in cats}
    stack = []  # [category, start, time spent in nested timers]
    originals = []

    def wrap(owner, attr, cat):
        fn = owner.__dict__[attr]
        originals.append((owner, attr, fn))

        def timed(*a, **k):
            stack.append([cat, time.perf_counter(), 0.0])
            try:
                return fn(*a, **k)
            finally:
                cat_, t0, nested = stack.pop()
                spent = time.perf_counter() - t0
                totals[cat_] += spent - nested
                if stack:
                    stack[-1][2] += spent

        setattr(owner, attr, timed)

    for cat, places in cats.items():
        for owner, attr in places:
            if attr in owner.__dict__:
                wrap(owner, attr, cat)
    try:
        time_steps(c, args.warmup)
        rows, walls = [], []
        for _ in range(args.steps):
            for k in totals:
                totals[k] = 0.0
            t0 = time.perf_counter()
            c.step()
            walls.append(time.perf_counter() - t0)
            rows.append(dict(totals))
    finally:
        for owner, attr, fn in originals:
            setattr(owner, attr, fn)
    med = {k: 1e3 * float(np.median([r[k] for r in rows])) for k in totals}
    wall = 1e3 * float(np.median(walls))
    med["rest of the step"] = wall - sum(med.values())
    floor = GemmFloor(args.batch)
    time_steps(floor, 3)
    med_gemm = 1e3 * float(np.median(time_steps(floor, args.steps)))
    return {"step_ms": wall, "categories_ms": med, "gemm_floor_ms": med_gemm}


def memory(args) -> dict:
    c = Minigan(args.batch)
    time_steps(c, args.steps)
    with open("/proc/self/status") as f:
        status = {line.split(":")[0]: int(line.split()[1]) for line in f if line.startswith(("VmHWM", "VmRSS"))}
    return {"peak_rss_mib": status["VmHWM"] / 1024, "rss_mib": status["VmRSS"] / 1024, "steps": args.steps}


# ---------------------------------------------------------------------------------------------- main


def summarise(times) -> dict:
    out = {}
    for name, ts in times.items():
        a = np.asarray(ts)
        out[name] = {"median_ms": float(np.median(a)), "p10_ms": float(np.percentile(a, 10)), "steps": len(a)}
    if "minigan" in out:
        for ref in ("torch", "gemm"):
            if ref in out:
                out[f"minigan/{ref}"] = out["minigan"]["median_ms"] / out[ref]["median_ms"]
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--threads", type=int, default=2, help="BLAS/OpenMP threads (torch: set_num_threads)")
    p.add_argument("--steps", type=int, default=60, help="timed steps per contender (all rounds together)")
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--settle", type=float, default=0.2, help="seconds of sleep before each block")
    p.add_argument("--mode", choices=["rounds", "processes", "both"], default="both")
    p.add_argument("--contenders", nargs="+", default=["minigan", "gemm", "torch"])
    p.add_argument("--torch-python", default=sys.executable,
                   help="the Python that runs the torch contender (default: this one)")
    p.add_argument("--profile", action="store_true", help="only the per-category profile of minigan's step")
    p.add_argument("--memory", action="store_true", help="only the peak memory of a training process")
    p.add_argument("--json", default=None)
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    p.add_argument("--block", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        return worker(args)
    from minigan.train import cpu_model

    result = {"cpu": cpu_model(), "numpy": np.__version__, "threads": args.threads, "batch": args.batch,
              "load_before": os.getloadavg()}
    if args.profile:
        result["profile"] = profile(args)
    elif args.memory:
        result["memory"] = memory(args)
    else:
        for mode in (["rounds", "processes"] if args.mode == "both" else [args.mode]):
            times = run_rounds(args) if mode == "rounds" else run_processes(args)
            result[mode] = summarise(times)
    result["load_after"] = os.getloadavg()
    text = json.dumps(result, indent=1)
    print(text)
    if args.json:
        Path(args.json).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
