"""A/B of two checkouts of minigan in one process: the same ``GAN.train_step``, in interleaved blocks of steps.

This machine's speed drifts by 10-20% within minutes, more than most single changes buy, so two benchmark runs (or
even alternating processes) cannot see a 3% change. Here both versions are imported side by side, as the packages
``ab_base`` and ``ab_head``; each builds the same GAN from the same seeds, and blocks of ``--block`` steps alternate,
the order flipping every round. Each round gives one ratio head / base of its two block medians; the report is the
median of those paired ratios and the number of rounds the head won, next to each version's median step.

It then says whether the two versions' models are still equal, bit for bit, after the same number of steps: a
speed change that claims to be exact shows it here too.

    git worktree add ../minigan-base main~3      # the version to compare against
    python benchmarks/speed/ab_step.py --base ../minigan-base --arch seed mlp --batch 128 256

Both checkouts must import their own modules relatively (``from . import ...``), as minigan does.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_step import BETAS, DATA_DIM, LR, make_real  # noqa: E402
from profile_step import cpu_name, set_threads  # noqa: E402

SEED = 0


def load_checkout(name: str, root: Path):
    """The ``minigan`` package under ``root`` imported as the package ``name`` (its submodules as ``name.*``)."""
    init = root / "minigan" / "__init__.py"
    if not init.is_file():
        raise SystemExit(f"ab_step: {root} is not a minigan checkout (no minigan/__init__.py there)")
    for loaded in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
        del sys.modules[loaded]  # a checkout loaded before under this name (a second call in one process)
    spec = importlib.util.spec_from_file_location(name, init, submodule_search_locations=[str(init.parent)])
    package = importlib.util.module_from_spec(spec)
    sys.modules[name] = package
    spec.loader.exec_module(package)
    return package


def build_gan(package, arch: str):
    """The seeded GAN of ``bench_step.py`` from one checkout: same models, Adam and noise seed."""
    models = importlib.import_module(package.__name__ + ".models")
    optim = importlib.import_module(package.__name__ + ".optim")
    gan = importlib.import_module(package.__name__ + ".gan")
    G, D = models.build_models(arch, DATA_DIM, rng=SEED)
    return gan.GAN(G, D, optim.Adam(G.params(), LR, BETAS), optim.Adam(D.params(), LR, BETAS),
                   models.NOISE_DIM[arch], rng=SEED + 1)


def same_models(a, b) -> bool:
    """Every parameter of G and D equal bit for bit between two GANs."""
    pairs = [(p, q) for m, n in ((a.G, b.G), (a.D, b.D)) for p, q in zip(m.params(), n.params())]
    return len(pairs) == len(a.G.params()) + len(a.D.params()) and all(
        p.data.shape == q.data.shape and p.data.tobytes() == q.data.tobytes() for p, q in pairs)


def compare(versions: dict, arch: str, n: int, rounds: int, block: int, warmup: int, clock) -> dict:
    gans = {name: build_gan(package, arch) for name, package in versions.items()}
    real = make_real(arch, n, SEED)  # bench_step.py's fixed real batch
    for gan in gans.values():
        for _ in range(warmup):
            gan.train_step(real)
    blocks = {name: [] for name in gans}
    for r in range(rounds):
        for name in (("base", "head") if r % 2 == 0 else ("head", "base")):
            times = []
            for _ in range(block):
                t0 = clock()
                gans[name].train_step(real)
                times.append(clock() - t0)
            blocks[name].append(statistics.median(times))
    paired = [h / b for h, b in zip(blocks["head"], blocks["base"])]
    return {"arch": arch, "batch": n, "base_ms": 1e3 * statistics.median(blocks["base"]),
            "head_ms": 1e3 * statistics.median(blocks["head"]), "paired_ratio": statistics.median(paired),
            "head_won": sum(p < 1 for p in paired), "rounds": rounds,
            "same_models": same_models(gans["base"], gans["head"]), "steps": warmup + rounds * block}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True, type=Path, help="the checkout to compare against")
    parser.add_argument("--head", type=Path, default=HERE.parent.parent, help="default: this checkout")
    parser.add_argument("--arch", nargs="+", default=["seed", "mlp"], choices=["seed", "mlp"])
    parser.add_argument("--batch", nargs="+", type=int, default=[128])
    parser.add_argument("--threads", type=int, default=2, help="BLAS threads (default 2); 0: leave as is")
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--block", type=int, default=5, help="steps per version per round")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                        help="cpu: this thread's CPU time, meaningful with --threads 1 only")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON")
    args = parser.parse_args(argv)
    blas = set_threads(args.threads) if args.threads else "threads left as they are"
    clock = time.thread_time if args.clock == "cpu" else time.perf_counter
    versions = {"base": load_checkout("ab_base", args.base.resolve()),
                "head": load_checkout("ab_head", args.head.resolve())}
    print(f"CPU: {cpu_name()}; NumPy {np.__version__}; BLAS: {blas}")
    print(f"base {args.base}, head {args.head}; {args.rounds} rounds of {args.block} steps each, {args.clock} clock")
    print("| arch | N | base ms | head ms | head / base (paired median) | rounds head won | same models after |")
    print("|---:|---:|---:|---:|---:|---:|:---|")
    rows = []
    for arch in args.arch:
        for n in args.batch:
            row = compare(versions, arch, n, args.rounds, args.block, args.warmup, clock)
            rows.append(row)
            print(f"| {arch} | {n} | {row['base_ms']:.2f} | {row['head_ms']:.2f} | {row['paired_ratio']:.3f} | "
                  f"{row['head_won']}/{row['rounds']} | {'yes' if row['same_models'] else 'NO'}, "
                  f"{row['steps']} steps |", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"cpu": cpu_name(), "blas": blas, "rows": rows}, indent=1))
    return rows


if __name__ == "__main__":
    main()
