"""Peak RSS of a short training loop, and whether memory grows from one step to the next.

The loop is what ``minigan train`` does per step: draw a real batch from a dataset held in memory, call
``GAN.train_step``, keep the returned floats. After a warm-up (optimizer state and cached targets are created
lazily, on the first steps), ``tracemalloc`` -- which sees NumPy's array buffers -- records the memory in use
after every step; a steady state shows as zero growth. ``ru_maxrss`` gives the process's peak resident set.

    python benchmarks/speed/bench_memory.py [--arch mlp] [--batch 128] [--steps 200] [--json PATH|-]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))  # run from a checkout without installing

from minigan import backend as mb  # noqa: E402
from minigan.gan import GAN  # noqa: E402
from minigan.models import NOISE_DIM, build_models  # noqa: E402
from minigan.optim import Adam  # noqa: E402


def _status_kib(field: str):
    """A ``VmXXX:`` line of /proc/self/status in KiB (Linux), or None."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def peak_rss_kib() -> int:
    """Peak resident set size of this process so far, in KiB.

    Linux's ``VmHWM`` when there is one: ``ru_maxrss`` survives ``exec``, so a process started from a big parent
    (the speed benchmark, with torch and jax loaded) would report the parent's peak. Elsewhere ``ru_maxrss``
    (KiB on Linux, bytes on macOS).
    """
    peak = _status_kib("VmHWM")
    if peak is None:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        peak = peak // 1024 if sys.platform == "darwin" else peak
    return peak


def _slope(values) -> float:
    """Least-squares growth per step."""
    return float(np.polyfit(np.arange(len(values)), values, 1)[0]) if len(values) > 1 else 0.0


def _half_change(values) -> float:
    """Median of the second half minus median of the first: growth, robust to single spikes."""
    half = len(values) // 2
    return float(np.median(values[half:]) - np.median(values[:half])) if half else 0.0


def measure(arch="mlp", batch=128, steps=200, warmup=20, backend="numpy", seed=0, threads=None):
    """Run the loop; return peak RSS, and the growth per step of the resident set and of traced memory.

    Three phases: ``warmup`` steps (optimizer state and cached targets are made lazily, on the first steps);
    ``steps`` steps reading the current RSS after each; ``steps`` more under ``tracemalloc`` (which has memory of
    its own, so it is not running while RSS is read). ``threads`` caps the BLAS threads (through threadpoolctl,
    when installed): memory does not depend on it, but a small run goes faster on one thread.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        threadpool_limits = None
    if threads is not None and threadpool_limits is not None:
        with threadpool_limits(limits=threads, user_api="blas"):
            return measure(arch, batch, steps, warmup, backend, seed)
    G, D = build_models(arch, 784, rng=seed)
    if backend != "numpy":
        G.to(backend), D.to(backend)
    gan = GAN(G, D, Adam(G.params(), 2e-4, (0.5, 0.999)), Adam(D.params(), 2e-4, (0.5, 0.999)), NOISE_DIM[arch],
              rng=seed + 1)
    rng = np.random.default_rng(seed)
    data = rng.random((8 * batch, 784), dtype=np.float32)  # a small in-memory "dataset"

    def batches():
        while True:
            order = rng.permutation(len(data))
            for i in range(0, len(data) - batch + 1, batch):
                yield mb.to_device(data[order[i:i + batch]], backend)

    source = batches()
    d_loss_sum = 0.0  # what a training loop keeps: running sums for its log, not every step's dict
    for _ in range(warmup):
        d_loss_sum += gan.train_step(next(source))["d_loss"]
    rss = np.zeros(steps, dtype=np.int64)
    for k in range(steps):
        d_loss_sum += gan.train_step(next(source))["d_loss"]
        rss[k] = _status_kib("VmRSS") or 0
    traced = np.zeros(steps, dtype=np.int64)  # made before tracing starts: a growing list would be traced too
    tracemalloc.start()
    # tracemalloc counts only what is allocated after it starts: an array made earlier and freed later lowers no
    # count, and one that outlives a step (the gradients GAN.train_step holds live two) is replaced by a traced one
    # only over the next steps. Two steps first, so every per-step array in the readings is a traced one.
    for _ in range(2):
        d_loss_sum += gan.train_step(next(source))["d_loss"]
    for k in range(steps):
        d_loss_sum += gan.train_step(next(source))["d_loss"]
        traced[k] = tracemalloc.get_traced_memory()[0]
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "arch": arch, "batch": batch, "steps": steps, "warmup": warmup, "backend": backend,
        "peak_rss_mib": peak_rss_kib() / 1024,
        "rss_first_kib": int(rss[0]), "rss_last_kib": int(rss[-1]), "rss_growth_kib_per_step": _slope(rss),
        "traced_first_bytes": int(traced[0]), "traced_last_bytes": int(traced[-1]),
        "traced_peak_bytes": int(traced_peak),
        "growth_bytes_per_step": _slope(traced),
        "median_change_bytes": _half_change(traced),
    }


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--arch", default="mlp", choices=["seed", "mlp"])
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--backend", default="numpy", choices=["numpy", "cupy"])
    p.add_argument("--threads", type=int, help="BLAS threads (default: the library's own choice)")
    p.add_argument("--quick", action="store_true", help="10 steps after 3 warm-up steps")
    p.add_argument("--json", metavar="PATH", help="write the result as JSON ('-': to stdout, nothing else printed)")
    args = p.parse_args(argv)
    steps, warmup = (10, 3) if args.quick else (args.steps, 20)
    result = measure(args.arch, args.batch, steps, warmup, args.backend, threads=args.threads)
    if args.json == "-":
        print(json.dumps(result))
        return result
    print(f"{args.arch} N={args.batch}, {warmup} warm-up steps, then {steps} steps twice: peak RSS "
          f"{result['peak_rss_mib']:.1f} MiB; RSS {result['rss_first_kib']:,} -> {result['rss_last_kib']:,} KiB "
          f"({result['rss_growth_kib_per_step']:+.2f} KiB/step); traced memory {result['traced_first_bytes']:,} -> "
          f"{result['traced_last_bytes']:,} B ({result['growth_bytes_per_step']:+.1f} B/step)")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
