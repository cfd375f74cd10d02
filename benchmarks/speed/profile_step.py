"""Where the time of one ``GAN.train_step`` goes, per category (issue 13).

Two measurements per case (architecture, batch N), in one process:

1. **Instrumented step.** The real ``GAN.train_step`` runs with a wall-clock timer around ``Dense.forward`` /
   ``Dense.backward``, every activation module's ``forward`` / ``forward_inplace`` / ``backward``, the two GAN losses,
   ``Adam.step`` and ``GAN.sample_noise``. The timers cost ~0.3 us each (~40 a step) and are patched in here only.
   The step's time not inside any of them is **Python + rest**: the step's own Python (checks, ``zero_grad``,
   loops), the concatenation of real and fake, the probabilities and statistics, and the timers themselves.
2. **The Dense time split by replaying its NumPy calls.** Every Dense call of one step is recorded (shapes, which
   products it ran), then replayed in isolation: the products into preallocated outputs (**GEMM**: the same floor
   as ``bench_step.py --refs gemm``), the bias add and the bias-gradient sum (**bias**). What the layers spent
   beyond those is **allocation + layer Python**: allocating each product's output (and the page faults that
   come with it), the input checks, the cache, and the gradient accumulation.

Medians over ``--steps`` steps; the uninstrumented step is timed too, so the instrumentation's cost shows.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE PYTHONPATH=. python benchmarks/speed/profile_step.py
    ... profile_step.py --arch seed --batch 128 --threads 1 --steps 100
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))  # run from a checkout without installing
sys.path.insert(0, str(HERE))

from bench_step import cpu_model, make_real, usable_cores, vector_extensions  # noqa: E402
from minigan import gan as gan_module  # noqa: E402
from minigan import nn  # noqa: E402
from minigan.gan import GAN  # noqa: E402
from minigan.models import NOISE_DIM, build_models  # noqa: E402
from minigan.optim import Adam  # noqa: E402

LR, BETAS = 2e-4, (0.5, 0.999)
CATEGORIES = ("GEMM", "bias", "alloc+layer Python", "activations", "loss", "Adam", "noise", "Python + rest")


CLOCK = time.perf_counter  # --clock cpu: time.thread_time


def set_threads(n: int) -> str:
    """Limit BLAS threads (threadpoolctl if present, else OpenBLAS's own call); return what the BLAS reports."""
    try:
        from threadpoolctl import threadpool_info, threadpool_limits
        threadpool_limits(limits=n, user_api="blas")
        info = [d for d in threadpool_info() if d.get("user_api") == "blas"]
        return ", ".join(f"{d.get('internal_api')} {d.get('version')} {d.get('architecture')} "
                         f"{d.get('num_threads')} threads" for d in info)
    except ImportError:
        pass
    import ctypes
    import glob
    libs = glob.glob(os.path.join(os.path.dirname(np.__file__), "..", "numpy.libs", "libscipy_openblas*.so"))
    if not libs:
        return "unknown BLAS (install threadpoolctl)"
    lib = ctypes.CDLL(libs[0])
    prefix = "scipy_openblas_set_num_threads64_" if hasattr(lib, "scipy_openblas_set_num_threads64_") else None
    if prefix is None:
        return "OpenBLAS (thread control not found)"
    getattr(lib, prefix)(n)
    lib.scipy_openblas_get_corename64_.restype = ctypes.c_char_p
    lib.scipy_openblas_get_config64_.restype = ctypes.c_char_p
    threads = lib.scipy_openblas_get_num_threads64_()
    return (f"{lib.scipy_openblas_get_config64_().decode().strip()}, kernel "
            f"{lib.scipy_openblas_get_corename64_().decode()}, {threads} threads")


def cpu_name() -> str:
    """The processor, the vector extensions that pick the BLAS kernel, and the cores this process may use (as
    ``bench_step.py`` reports them)."""
    return f"{cpu_model()} ({vector_extensions()}), {usable_cores()} CPUs"


def make_gan(arch, n, seed=0):
    G, D = build_models(arch, 784, rng=seed)
    gan = GAN(G, D, Adam(G.params(), lr=LR, betas=BETAS), Adam(D.params(), lr=LR, betas=BETAS), NOISE_DIM[arch],
              rng=seed + 1)
    return gan, make_real(arch, n, seed)  # bench_step.py's real batch


class Timers:
    """Wall-clock totals per category, collected by wrappers patched onto the engine's classes."""

    def __init__(self):
        self.total = dict.fromkeys(CATEGORIES, 0.0)
        self.dense_time = 0.0
        self.record = None  # list of Dense calls while recording one step
        self.depth = 0  # a timed call inside another is not counted twice
        self.saved = []

    def wrap(self, owner, attr, category):
        original = owner.__dict__[attr] if attr in owner.__dict__ else getattr(owner, attr)
        self.saved.append((owner, attr, owner.__dict__.get(attr)))
        timers = self

        def timed(*args, **kwargs):
            if timers.depth:
                return original(*args, **kwargs)
            timers.depth += 1
            t0 = CLOCK()
            try:
                return original(*args, **kwargs)
            finally:
                dt = CLOCK() - t0
                timers.depth -= 1
                if category == "dense":
                    timers.dense_time += dt
                else:
                    timers.total[category] += dt

        setattr(owner, attr, timed)

    def restore(self):
        for owner, attr, value in reversed(self.saved):
            if value is None:
                delattr(owner, attr)
            else:
                setattr(owner, attr, value)
        self.saved = []


def install(timers: Timers):
    dense_forward, dense_backward = nn.Dense.forward, nn.Dense.backward

    def recording_forward(self, x):
        if timers.record is not None:
            timers.record.append(("fwd", x.shape, self.W.data.shape, self.b is not None))
        return dense_forward(self, x)

    def recording_backward(self, dy, need_input_grad=True):
        if timers.record is not None:
            x = self._cache[0]
            timers.record.append(("bwd", x.shape, self.W.data.shape, self.b is not None and self.b.requires_grad,
                                  self.W.requires_grad, need_input_grad))
        return dense_backward(self, dy, need_input_grad)

    timers.saved.append((nn.Dense, "forward", nn.Dense.__dict__["forward"]))
    timers.saved.append((nn.Dense, "backward", nn.Dense.__dict__["backward"]))
    nn.Dense.forward, nn.Dense.backward = recording_forward, recording_backward
    timers.wrap(nn.Dense, "forward", "dense")
    timers.wrap(nn.Dense, "backward", "dense")
    for cls in (nn._Elementwise, nn.LeakyReLU):
        for attr in ("forward", "forward_inplace", "backward"):
            timers.wrap(cls, attr, "activations")
    timers.wrap(gan_module, "discriminator_loss", "loss")
    timers.wrap(gan_module, "generator_loss", "loss")
    timers.wrap(Adam, "step", "Adam")
    timers.wrap(GAN, "sample_noise", "noise")


def replay(record, repeats):
    """Median seconds of (GEMM, bias) for the recorded Dense calls of one step, replayed in isolation."""
    rng = np.random.default_rng(1)
    gemm, bias = [], []

    def arr(*shape):
        return rng.standard_normal(shape, dtype=np.float32)

    for entry in record:
        if entry[0] == "fwd":
            _, (rows, i), (_, o), has_b = entry
            gemm.append((arr(rows, i), arr(i, o), np.empty((rows, o), np.float32)))
            if has_b:
                bias.append(("add", np.zeros((rows, o), np.float32), arr(o)))  # not empty: garbage may hold NaN
        else:
            _, (rows, i), (_, o), db, dW, dx = entry
            dy = arr(rows, o)
            if dW:
                gemm.append((arr(rows, i).T, dy, np.empty((i, o), np.float32)))
            if db:
                bias.append(("sum", dy, np.empty(o, np.float32)))
            if dx:
                gemm.append((dy, arr(i, o).T, np.empty((rows, i), np.float32)))

    def run_gemm():
        for a, b, out in gemm:
            np.matmul(a, b, out=out)

    def run_bias():
        for kind, a, b in bias:
            if kind == "add":
                a += b
            else:
                a.sum(axis=0, out=b)

    out = []
    for fn in (run_gemm, run_bias):
        fn()
        times = []
        for _ in range(repeats):
            t0 = CLOCK()
            fn()
            times.append(CLOCK() - t0)
        out.append(statistics.median(times))
    return out


def profile_case(arch, n, steps, warmup=10):
    gan, real = make_gan(arch, n)
    for _ in range(warmup):
        gan.train_step(real)
    plain = []
    for _ in range(steps):
        t0 = CLOCK()
        gan.train_step(real)
        plain.append(CLOCK() - t0)

    timers = Timers()
    install(timers)
    try:
        timers.record = []
        gan.train_step(real)
        record, timers.record = timers.record, None
        rows = []
        for _ in range(steps):
            timers.total = dict.fromkeys(CATEGORIES, 0.0)
            timers.dense_time = 0.0
            t0 = CLOCK()
            gan.train_step(real)
            step = CLOCK() - t0
            rows.append((step, timers.dense_time, dict(timers.total)))
    finally:
        timers.restore()
    gemm, bias = replay(record, max(steps, 20))
    step = statistics.median(r[0] for r in rows)
    dense = statistics.median(r[1] for r in rows)
    cats = {c: statistics.median(r[2][c] for r in rows) for c in ("activations", "loss", "Adam", "noise")}
    cats["GEMM"], cats["bias"] = gemm, bias
    cats["alloc+layer Python"] = max(dense - gemm - bias, 0.0)
    cats["Python + rest"] = max(step - dense - sum(cats[c] for c in ("activations", "loss", "Adam", "noise")), 0.0)
    return statistics.median(plain), step, cats


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", nargs="+", default=["seed", "mlp"], choices=["seed", "mlp"])
    parser.add_argument("--batch", nargs="+", type=int, default=[64, 128, 256])
    parser.add_argument("--threads", nargs="+", type=int, default=[2, 1], help="BLAS threads; 0: leave as is")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                        help="cpu: this thread's CPU time (time.thread_time), which a busy machine inflates far less "
                             "than wall time; only meaningful with --threads 1 (BLAS worker threads are not counted)")
    args = parser.parse_args(argv)
    global CLOCK
    CLOCK = time.thread_time if args.clock == "cpu" else time.perf_counter
    print(f"CPU: {cpu_name()}; NumPy {np.__version__}; load {os.getloadavg()[0]:.2f}")
    rows = []
    header = ("| threads | arch | N | step ms | instr. ms | " + " | ".join(CATEGORIES) + " | GEMM share |")
    for threads in args.threads:
        print(f"BLAS: {set_threads(threads) if threads else 'threads left as they are'}")
        print(header)
        print("|" + "---:|" * (len(CATEGORIES) + 6))
        for arch in args.arch:
            for n in args.batch:
                plain, step, cats = profile_case(arch, n, args.steps)
                cells = " | ".join(f"{cats[c] * 1e3:.2f}" for c in CATEGORIES)
                print(f"| {threads} | {arch} | {n} | {plain * 1e3:.2f} | {step * 1e3:.2f} | {cells} | "
                      f"{cats['GEMM'] / plain:.0%} |", flush=True)
                rows.append({"threads": threads, "arch": arch, "batch": n, "step": plain, "instrumented": step,
                             **cats})
    print(f"load after: {os.getloadavg()[0]:.2f}")
    return rows


if __name__ == "__main__":
    main()
