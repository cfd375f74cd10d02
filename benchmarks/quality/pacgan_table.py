"""PacGAN Table 1 (Lin et al., 2018) redone with minigan: mode coverage on the 2-D ring and grid.

For each target (``ring8``: 8 Gaussians of std 0.01 on the unit circle; ``grid25``: 25 Gaussians of std 0.05 on
{-4, -2, 0, 2, 4}^2) and each model row, train ``--seeds`` independent runs, draw 2,500 samples from the final
generator with a fixed evaluation seed, and report mean ± standard deviation over the runs of

* **modes**: modes reached by at least one high-quality sample (HQ: within 3 std of its nearest mode);
* **HQ %**: fraction of high-quality samples;
* **reverse KL**: KL from the HQ samples' histogram over the modes to the uniform one (0 is perfect)

-- the metrics of ``minigan.metrics.toy_metrics``, the VEEGAN/PacGAN protocol. The published numbers are printed
beside them.

Model rows:

* ``GAN``, ``PacGAN2``, ``PacGAN4`` -- the paper's protocol where minigan has it: ``--arch pacgan`` (G: 2-D noise
  -> 4 x 400 (Dense, BatchNorm1d, ReLU) -> 2, as the paper's; D: 3 x 200 LeakyReLU(0.2) -> 1 logit), Adam(lr 1e-4,
  constant; beta1 0.8) for both players, packing degree 1, 2, 4, and 100 *packed* discriminator inputs per step
  (so 100 * m samples per step, as in the authors' released configuration; ``--batch-unit samples`` keeps 100
  samples instead). Differences from the paper, stated in every report: the paper's discriminator uses maxout
  units (5 pieces) where minigan's uses LeakyReLU; the paper trains 400 epochs of a fixed 100,000-sample set
  (about 400,000 steps) where minigan draws fresh samples every step and trains ``--steps`` steps (a 2-core
  budget, far fewer).
* ``best`` -- ``TrainConfig(dataset=...)`` with every training option at its default, i.e. exactly
  ``minigan train --dataset ring8`` (the defaults are read from ``minigan.train.DEFAULTS`` at run time, so this row
  follows them). Only the logging cadence (``sample_every``/``log_every``, which do not touch the training
  randomness) is set here.

Usage (from the repository root)::

    python benchmarks/quality/pacgan_table.py --quick                 # smoke test: 2 seeds, 300 steps
    python benchmarks/quality/pacgan_table.py --out benchmarks/quality/RESULTS.md \\
        --json pacgan.json --figure pacgan.png --curve                # the full table (see README for timings)

Each seed runs in its own process (``--jobs``), with one BLAS thread each.
"""

from __future__ import annotations

# One BLAS thread per run: the matrices are small, and runs go in parallel instead. Set before NumPy loads.
import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import datetime  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import shlex  # noqa: E402
import multiprocessing  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from concurrent.futures import ProcessPoolExecutor, as_completed  # noqa: E402
from multiprocessing import get_context  # noqa: E402
from pathlib import Path  # noqa: E402

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # run from a checkout without installing
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))  # so worker processes can import this module by name

import numpy as np  # noqa: E402

from minigan import data  # noqa: E402
from minigan.checkpoint import atomic_write  # noqa: E402
from minigan.evaluate import evaluate_run, generate_samples, load_generator  # noqa: E402
from minigan.train import (DEFAULTS, Run, TrainConfig, TrainingDiverged, cpu_model,  # noqa: E402
                           defaults_for, versions)
from workfolder import WorkFolder  # noqa: E402

DATASETS = ("ring8", "grid25")
ROWS = ("GAN", "PacGAN2", "PacGAN4", "best")
PACK = {"GAN": 1, "PacGAN2": 2, "PacGAN4": 4}

#: The paper's protocol for the GAN / PacGAN rows (Lin et al. 2018, section 5.1 and the authors' configuration).
PAPER = dict(arch="pacgan", lr=1e-4, beta1=0.8, lr_decay="none", batch=100)
#: Default step budget of the paper-protocol rows: what 2 cores can afford for the whole 10-seed table in about an
#: hour (see README.md). The paper trains about 400,000 steps.
DEFAULT_STEPS = 3000
QUICK_STEPS = 300
QUICK_SEEDS = 2
EVAL_SAMPLES = 2500

CITATION_PACGAN = ("Lin, Khetan, Fanti & Oh (2018), PacGAN: The power of two samples in generative adversarial "
                   "networks, NeurIPS, Table 1 (mean of 10 trials)")
CITATION_VEEGAN = ("Srivastava, Valkov, Russell, Gutmann & Sutton (2017), VEEGAN: Reducing mode collapse in GANs "
                   "using implicit variational learning, NeurIPS, Table 1")

#: Published means: (modes covered, HQ %, reverse KL or None).
PUBLISHED = {
    "ring8": {
        "GAN": (6.3, 98.2, 0.45),
        "PacGAN2": (7.9, 95.6, 0.07),
        "PacGAN4": (7.8, 95.9, 0.07),
        "VEEGAN": (8.0, 52.9, None),
    },
    "grid25": {
        "GAN": (17.3, 94.8, 0.70),
        "PacGAN2": (23.8, 91.3, 0.13),
        "PacGAN4": (24.8, 93.6, 0.04),
        "VEEGAN": (24.6, 40.0, None),
    },
}
NUM_MODES = {"ring8": 8, "grid25": 25}


# ============================================================================================== one run


def row_config(dataset: str, row: str, seed: int, steps: int | None, batch_unit: str = "packs") -> TrainConfig:
    """The ``TrainConfig`` of one table cell's run (without the logging cadence)."""
    if row == "best":
        cfg = TrainConfig(dataset=dataset, seed=seed)
        if steps is not None:
            cfg.steps = steps
        return cfg
    m = PACK[row]
    batch = PAPER["batch"] * m if batch_unit == "packs" else PAPER["batch"]
    return TrainConfig(dataset=dataset, arch=PAPER["arch"], steps=steps, batch_size=batch, lr_g=PAPER["lr"],
                       lr_d=PAPER["lr"], beta1=PAPER["beta1"], lr_decay=PAPER["lr_decay"], pack=m, seed=seed)


def resolved_steps(row: str, steps: int | None, best_steps: int | None) -> int:
    if row == "best":  # minigan's own 2-D default budget, as `minigan train --dataset D` uses
        return best_steps if best_steps is not None else DEFAULTS["2d"]["steps"]
    return steps if steps is not None else DEFAULT_STEPS


def cadence(steps: int, curve: bool) -> tuple[int, int]:
    """``(sample_every, log_every)``: 5 quality points with ``curve``, else only the final one."""
    sample_every = max(1, steps // 5) if curve else steps
    log_every = math.gcd(50, sample_every)  # quality is logged only on logging steps that are sample steps
    return sample_every, log_every


#: The settings that make two runs of a cell the same run (with the seed): a reused result must match them all.
RUN_KEY = ("dataset", "row", "seed", "steps", "batch_size", "pack", "arch", "lr", "beta1", "lr_decay")


def spec_key(spec: dict) -> tuple:
    """The ``RUN_KEY`` values a spec will train with (``None`` settings resolved as training resolves them)."""
    cfg = defaults_for(row_config(spec["dataset"], spec["row"], spec["seed"], spec["steps"], spec["batch_unit"]),
                       data.get_dataset(spec["dataset"]))
    resolved = dict(spec, batch_size=cfg.batch_size, pack=cfg.pack, arch=cfg.arch, lr=cfg.lr_g, beta1=cfg.beta1,
                    lr_decay=cfg.lr_decay, steps=cfg.steps)
    return tuple(resolved[k] for k in RUN_KEY)


def reusable_runs(path, eval_seed: int, versions_now: dict) -> dict:
    """``{RUN_KEY values: record}`` of the finished runs in an earlier ``--json`` file that can stand in for a new run:
    same evaluation seed and sample count, same minigan/NumPy versions, no error. Anything else is run again."""
    try:
        saved = json.loads(Path(path).read_text())
        meta, runs = saved["meta"], saved["runs"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise SystemExit(f"--reuse {path}: not a JSON file written by --json ({err}); run without --reuse") from err
    if meta.get("eval_seed") != eval_seed or meta.get("eval_samples") != EVAL_SAMPLES:
        print(f"--reuse {path}: evaluated with another seed or sample count; nothing reused", file=sys.stderr)
        return {}
    old = {k: meta.get("versions", {}).get(k) for k in ("minigan", "numpy")}
    if old != {k: versions_now.get(k) for k in old}:
        print(f"--reuse {path}: written by {old}, not {versions_now}; nothing reused", file=sys.stderr)
        return {}
    return {tuple(r[k] for k in RUN_KEY): r for r in runs if "error" not in r}


def run_one(spec: dict) -> dict:
    """Train one run, evaluate its final generator; return the per-seed result (plain JSON types)."""
    cfg = row_config(spec["dataset"], spec["row"], spec["seed"], spec["steps"], spec["batch_unit"])
    cfg.sample_every, cfg.log_every = cadence(spec["steps"], spec["curve"])
    out = Path(spec["out"])
    if out.exists():
        if not (out / "config.json").exists() and any(out.iterdir()):
            raise RuntimeError(f"{out} exists and is not a minigan run folder; choose another --work")
        shutil.rmtree(out)
    run = Run(cfg, out, progress=False)
    t0 = time.perf_counter()
    try:
        run.train()
    except TrainingDiverged as err:  # a failed seed is a result too: count it, do not lose the other runs
        return {"dataset": spec["dataset"], "row": spec["row"], "seed": spec["seed"], "steps": run.config.steps,
                "error": str(err), "train_wall_s": time.perf_counter() - t0, "run_dir": str(out)}
    wall = time.perf_counter() - t0
    t1 = time.perf_counter()
    result = evaluate_run(out, seed=spec["eval_seed"], quiet=True)
    eval_wall = time.perf_counter() - t1
    rec = {
        "dataset": spec["dataset"], "row": spec["row"], "seed": spec["seed"],
        "steps": run.config.steps, "batch_size": run.config.batch_size, "pack": run.config.pack,
        "arch": run.config.arch, "lr": run.config.lr_g, "beta1": run.config.beta1,
        "lr_decay": getattr(run.config, "lr_decay", "none"),
        "modes_covered": result["modes_covered"], "high_quality": result["high_quality"],
        "reverse_kl": result["reverse_kl"], "counts": result["counts"], "num_modes": result["num_modes"],
        "train_wall_s": wall, "eval_wall_s": eval_wall, "steps_per_s": run.config.steps / max(wall, 1e-9),
        "run_dir": str(out),
    }
    if spec["curve"]:
        rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line.strip()]
        rec["curve"] = [{k: r[k] for k in ("step", "modes_covered", "high_quality", "reverse_kl")}
                        for r in rows if "modes_covered" in r]
    if spec["want_samples"]:
        G, gcfg, _ = load_generator(out)
        rec["samples"] = generate_samples(G, gcfg, EVAL_SAMPLES, spec["eval_seed"]).tolist()
    return rec


# ============================================================================================== summaries


def mean_std(values) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof 1; 0 for a single value)."""
    v = np.asarray(values, dtype=np.float64)
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0


def summarise(records: list[dict]) -> dict:
    """``{(dataset, row): summary}`` over seeds."""
    groups: dict = {}
    for r in records:
        groups.setdefault((r["dataset"], r["row"]), []).append(r)
    out = {}
    for key, all_runs in groups.items():
        rs = [r for r in all_runs if "error" not in r]
        if not rs:
            out[key] = {"seeds": 0, "failed": len(all_runs), "steps": all_runs[0]["steps"]}
            continue
        out[key] = {
            "seeds": len(rs), "failed": len(all_runs) - len(rs), "steps": rs[0]["steps"],
            "batch_size": rs[0]["batch_size"], "pack": rs[0]["pack"],
            "arch": rs[0]["arch"], "lr": rs[0]["lr"], "beta1": rs[0]["beta1"], "lr_decay": rs[0]["lr_decay"],
            "modes": mean_std([r["modes_covered"] for r in rs]),
            "hq": mean_std([100 * r["high_quality"] for r in rs]),
            "rkl": mean_std([r["reverse_kl"] for r in rs]),
            "wall": mean_std([r["train_wall_s"] for r in rs]),
            "steps_per_s": mean_std([r["steps_per_s"] for r in rs]),
        }
    return out


def _pm(ms, digits: int) -> str:
    return f"{ms[0]:.{digits}f} ± {ms[1]:.{digits}f}"


def _row_label(row: str) -> str:
    if row == "best":
        return "minigan best (defaults)"
    return f"minigan {row}"


def format_table(summary: dict, datasets, rows) -> str:
    """Markdown: per dataset, each published row beside minigan's, then VEEGAN and minigan's best."""
    head = ("| data | model | source | runs | steps | batch (samples) | modes | HQ % | reverse KL | train s/run |\n"
            "|---|---|---|---|---|---|---|---|---|---|")
    lines = [head]
    for ds in datasets:
        k = NUM_MODES[ds]
        for row in rows:
            if row in PUBLISHED[ds]:
                modes, hq, rkl = PUBLISHED[ds][row]
                lines.append(f"| {ds} | {row} | Lin et al. 2018 | 10 | ~400k | {PAPER['batch']} x {PACK[row]} | "
                             f"{modes:.1f}/{k} | {hq:.1f} | {rkl:.2f} | - |")
            if row == "best":
                modes, hq, _ = PUBLISHED[ds]["VEEGAN"]
                lines.append(f"| {ds} | VEEGAN | Srivastava et al. 2017 | 10 | - | - | {modes:g}/{k} | {hq:.1f} | "
                             "n/a | - |")
            s = summary.get((ds, row))
            if s is None:
                continue
            if not s["seeds"]:
                lines.append(f"| {ds} | {_row_label(row)} | minigan | 0 (all {s['failed']} diverged) | {s['steps']} "
                             "| - | - | - | - | - |")
                continue
            runs = f"{s['seeds']}" + (f" (+{s['failed']} diverged)" if s["failed"] else "")
            source = "minigan, arch pacgan" if row != "best" else f"minigan, arch {s['arch']}"
            lines.append(f"| {ds} | {_row_label(row)} | {source} | {runs} | {s['steps']} | "
                         f"{s['batch_size']} (pack {s['pack']}) | {_pm(s['modes'], 1)}/{k} | {_pm(s['hq'], 1)} | "
                         f"{_pm(s['rkl'], 3)} | {s['wall'][0]:.0f} |")
    return "\n".join(lines)


def curve_table(records: list[dict], datasets, row: str = "best") -> str:
    """Markdown: quality against steps (mean ± std over seeds) for one row, from the runs' metrics.jsonl."""
    lines = ["| data | step | modes | HQ % | reverse KL |", "|---|---|---|---|---|"]
    for ds in datasets:
        rs = [r for r in records if r["dataset"] == ds and r["row"] == row and r.get("curve")]
        if not rs:
            continue
        steps = sorted({p["step"] for r in rs for p in r["curve"]})
        for step in steps:
            pts = [p for r in rs for p in r["curve"] if p["step"] == step]
            lines.append(f"| {ds} | {step} | {_pm(mean_std([p['modes_covered'] for p in pts]), 1)}"
                         f"/{NUM_MODES[ds]} | {_pm(mean_std([100 * p['high_quality'] for p in pts]), 1)} | "
                         f"{_pm(mean_std([p['reverse_kl'] for p in pts]), 3)} |")
    return "\n".join(lines)


def save_figure(records: list[dict], datasets, rows, path) -> None:
    """One PNG: a scatter of seed 0's 2,500 evaluation samples per (dataset, row), true modes as red crosses."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    cells = {(r["dataset"], r["row"]): r for r in records if "samples" in r}
    fig = Figure(figsize=(3.2 * len(rows), 3.3 * len(datasets)), dpi=100)
    axes = np.atleast_2d(fig.subplots(len(datasets), len(rows), squeeze=False))
    for i, ds in enumerate(datasets):
        modes = data.get_dataset(ds).modes
        lim = float(np.abs(modes).max()) * 1.5
        for j, row in enumerate(rows):
            ax = axes[i, j]
            r = cells.get((ds, row))
            if r is not None:
                x = np.asarray(r["samples"])
                ax.scatter(x[:, 0], x[:, 1], s=2, alpha=0.4, color="tab:blue")
                ax.set_title(f"{ds} {row} (seed {r['seed']}): {r['modes_covered']}/{r['num_modes']} modes, "
                             f"{100 * r['high_quality']:.0f}% HQ", fontsize=7)
            ax.scatter(modes[:, 0], modes[:, 1], s=30, marker="x", color="tab:red")
            ax.set_xlim(-lim, lim)
            ax.set_ylim(-lim, lim)
            ax.set_aspect("equal")
            ax.tick_params(labelsize=6)
    fig.tight_layout()
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_bytes(buffer.getvalue())


# ============================================================================================== driver


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="PacGAN Table 1 (ring8 / grid25 mode coverage) with minigan, beside the "
                                            "published numbers.")
    p.add_argument("--seeds", type=int, default=None, help=f"runs per row (default 10; {QUICK_SEEDS} with --quick)")
    p.add_argument("--steps", type=int, default=None,
                   help=f"step budget of the GAN/PacGAN rows (default {DEFAULT_STEPS}; {QUICK_STEPS} with --quick)")
    p.add_argument("--best-steps", type=int, default=None,
                   help="step budget of the 'best' row (default: minigan's own default, "
                        f"{DEFAULTS['2d']['steps']}; {QUICK_STEPS} with --quick)")
    p.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    p.add_argument("--rows", nargs="+", default=list(ROWS), choices=ROWS)
    p.add_argument("--batch-unit", choices=("packs", "samples"), default="packs",
                   help="packs (default): 100 packed D inputs per step = 100*m samples, as the authors' code; "
                        "samples: 100 samples per step whatever m")
    p.add_argument("--quick", action="store_true", help=f"smoke test: {QUICK_SEEDS} seeds, {QUICK_STEPS} steps "
                                                        "(not the protocol; labelled as such)")
    p.add_argument("--jobs", type=int, default=2, help="runs in parallel, one process and one BLAS thread each")
    p.add_argument("--eval-seed", type=int, default=0, help="seed of the 2,500 evaluation noise vectors")
    p.add_argument("--work", default=None, help="folder for the run folders (default: a temporary folder)")
    p.add_argument("--keep", action="store_true", help="keep the run folders (default: delete them at the end)")
    p.add_argument("--json", default=None, metavar="PATH", help="write the per-seed results as JSON")
    p.add_argument("--figure", default=None, metavar="PATH", help="write a PNG of seed 0's samples per cell")
    p.add_argument("--curve", action="store_true",
                   help="log quality at 5 points during each run and print the curve of the 'best' row")
    p.add_argument("--out", default=None, metavar="PATH", help="write the report (markdown) to PATH")
    p.add_argument("--reuse", default=None, metavar="JSON",
                   help="take finished runs from an earlier --json file instead of training them again, where "
                        "every setting, the evaluation seed and the minigan/NumPy versions match (seed 0 is always "
                        "re-run when --figure needs its samples); with --json the same path, an interrupted table "
                        "continues where it stopped")
    return p.parse_args(argv)


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill``, a job scheduler, a container stopping), turned into the orderly stop Ctrl-C gets."""


def _raise_terminated(signum, frame):
    raise Terminated(f"stopped by signal {signum}")


def _stop_workers() -> None:
    """Stop this process's worker processes now. Ctrl-C reaches the whole process group, so the workers get it
    too; SIGTERM reaches this process alone, and workers left running would be orphans training for hours."""
    children = multiprocessing.active_children()
    for child in children:
        child.terminate()
    for child in children:
        child.join(timeout=10)
        if child.is_alive():
            child.kill()
            child.join()


def main(argv=None) -> int:
    try:
        previous = signal.signal(signal.SIGTERM, _raise_terminated)
    except ValueError:  # not the main thread (e.g. called from a test runner's worker thread): no handler
        previous = None
    try:
        return _main(argv)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _main(argv=None) -> int:
    args = parse_args(argv)
    argv_list = sys.argv[1:] if argv is None else list(argv)
    seeds = args.seeds if args.seeds is not None else (QUICK_SEEDS if args.quick else 10)
    steps = args.steps if args.steps is not None else (QUICK_STEPS if args.quick else None)
    best_steps = args.best_steps if args.best_steps is not None else (QUICK_STEPS if args.quick else None)
    datasets = list(dict.fromkeys(args.datasets))
    rows = [r for r in ROWS if r in args.rows]
    if seeds < 1 or args.jobs < 1:
        raise SystemExit("--seeds and --jobs must be >= 1")

    # an unreadable --reuse file stops the script here, before any folder is made
    old_runs = reusable_runs(args.reuse, args.eval_seed, versions()) if args.reuse else {}
    work = WorkFolder(args.work, args.keep, "minigan-pacgan-")
    specs = []
    for ds in datasets:
        for row in rows:
            n = resolved_steps(row, steps, best_steps)
            for seed in range(seeds):
                specs.append(dict(dataset=ds, row=row, seed=seed, steps=n, batch_unit=args.batch_unit,
                                  curve=args.curve, eval_seed=args.eval_seed,
                                  want_samples=bool(args.figure) and seed == 0,
                                  out=str(work.run(f"{ds}-{row}-seed{seed}"))))
    # the most expensive runs first, so the last ones to finish are short
    cost = {"GAN": 1.0, "PacGAN2": 1.5, "PacGAN4": 2.2, "best": 1.25}
    specs.sort(key=lambda s: -s["steps"] * cost[s["row"]])

    started = time.perf_counter()
    records = []
    paper_steps = resolved_steps("GAN", steps, best_steps)
    best_n = resolved_steps("best", steps, best_steps)
    meta = dict(command=_command(argv_list), date=_now(), cpu=cpu_model(), cpu_count=os.cpu_count(),
                jobs=args.jobs, seeds=seeds, steps_paper_rows=paper_steps, steps_best=best_n,
                quick=args.quick, batch_unit=args.batch_unit, eval_seed=args.eval_seed, eval_samples=EVAL_SAMPLES,
                versions=versions(), defaults_2d=DEFAULTS["2d"])

    def save_json(complete: bool) -> None:
        """Write every result so far (atomically): an interrupted table loses nothing, and --reuse continues it."""
        if args.json:
            clean = [{k: v for k, v in r.items() if k != "samples"} for r in records]
            body = {"meta": dict(meta, complete=complete, total_wall_s=time.perf_counter() - started),
                    "published": PUBLISHED, "runs": clean}
            atomic_write(args.json, lambda f: f.write(json.dumps(body, indent=1).encode()))

    reused = 0
    if args.reuse:
        todo = []
        for spec in specs:
            rec = old_runs.get(spec_key(spec))
            if rec is not None and not spec["want_samples"] and (rec.get("curve") or not spec["curve"]):
                records.append(dict(rec, reused=True))
                reused += 1
            else:
                todo.append(spec)
        specs = todo
        print(f"--reuse {args.reuse}: {reused} run(s) taken from it, {len(specs)} to train", file=sys.stderr)
    meta["reused_runs"] = args.reused = reused
    total = len(specs) + reused

    def report(rec):
        records.append(rec)
        save_json(complete=False)
        if "error" in rec:
            print(f"[{len(records)}/{total}] {rec['dataset']} {rec['row']} seed {rec['seed']}: DIVERGED "
                  f"({rec['error']})", file=sys.stderr, flush=True)
            return
        print(f"[{len(records)}/{total}] {rec['dataset']} {rec['row']} seed {rec['seed']}: "
              f"{rec['modes_covered']}/{rec['num_modes']} modes, {100 * rec['high_quality']:.1f}% HQ, "
              f"rKL {rec['reverse_kl']:.3f}; {rec['steps']} steps in {rec['train_wall_s']:.1f} s "
              f"({rec['steps_per_s']:.1f} steps/s)", file=sys.stderr, flush=True)

    with work:  # removes the run folders at the end, unless --keep
        if args.jobs == 1:
            for spec in specs:
                report(run_one(spec))
        else:
            with ProcessPoolExecutor(max_workers=args.jobs, mp_context=get_context("spawn")) as pool:
                futures = [pool.submit(run_one, spec) for spec in specs]
                try:
                    for fut in as_completed(futures):
                        report(fut.result())
                except BaseException:  # a bug, Ctrl-C or SIGTERM: start nothing more, stop what runs
                    pool.shutdown(wait=False, cancel_futures=True)
                    _stop_workers()
                    pool.shutdown(wait=True)
                    raise
    total_wall = time.perf_counter() - started

    order = {(d, r, s): i for i, (d, r, s) in enumerate((d, r, s) for d in datasets for r in rows
                                                           for s in range(seeds))}
    records.sort(key=lambda r: order[(r["dataset"], r["row"], r["seed"])])
    summary = summarise(records)
    table = format_table(summary, datasets, rows)
    if args.quick:
        label = (f"QUICK SMOKE RUN ({seeds} seed(s), {paper_steps} steps for GAN/PacGAN rows, {best_n} for best): "
                 "format check only, NOT the protocol")
    else:
        label = f"{seeds} seed(s) per row; GAN/PacGAN rows {paper_steps} steps, best row {best_n} steps"
        if seeds < 10:
            label = f"SHORT RUN, fewer seeds than the paper's 10 trials: {label}"
    print(f"\n{label}\n")
    print(table)
    curve = None
    if args.curve and "best" in rows:
        curve = curve_table(records, datasets, "best")
        print("\nQuality against steps, minigan best (mean ± std over seeds; logged by training on 2,500 samples of "
              "its own evaluation noise):\n")
        print(curve)
    print(f"\ntotal wall time {total_wall:.0f} s with --jobs {args.jobs}", file=sys.stderr)

    if args.figure:
        save_figure(records, datasets, rows, args.figure)
        print(f"wrote {args.figure}", file=sys.stderr)
    if args.json:
        save_json(complete=True)
        print(f"wrote {args.json}", file=sys.stderr)
    if args.out:
        text = report_markdown(label, table, curve, summary, argv_list, args, seeds, paper_steps, best_n, total_wall)
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)
        print(f"wrote {args.out}", file=sys.stderr)
    if args.keep:
        print(f"run folders kept in {work.path}", file=sys.stderr)
    return 0


def _command(argv_list) -> str:
    return shlex.join(["python", "benchmarks/quality/pacgan_table.py", *argv_list])


def _now() -> str:
    return datetime.datetime.now().astimezone().isoformat(timespec="seconds")


def report_markdown(label, table, curve, summary, argv_list, args, seeds, paper_steps, best_n, total_wall) -> str:
    best_defaults = ", ".join(f"{k}={v}" for k, v in DEFAULTS["2d"].items())
    speeds = "\n".join(
        f"| {ds} | {row} | {s['batch_size']} | {s['pack']} | {s['steps_per_s'][0]:.1f} | {s['wall'][0]:.1f} |"
        for (ds, row), s in summary.items() if s["seeds"])
    v = versions()
    parts = [
        "# PacGAN Table 1 with minigan: ring8 and grid25 mode coverage",
        "",
        f"**{label}.**",
        "",
        f"- command: `{_command(argv_list)}`",
        f"- date: {_now()}",
        f"- machine: {cpu_model()}, {os.cpu_count()} logical CPUs; {args.jobs} run(s) in parallel, one BLAS thread "
        "each",
        f"- software: minigan {v['minigan']}, NumPy {v['numpy']}, Python {v['python']}",
        f"- step budget: GAN/PacGAN rows {paper_steps} steps (the paper: ~400,000); best row {best_n} steps",
        f"- total wall time: {total_wall:.0f} s"
        + (f" for the runs trained now; {args.reused} run(s) were taken from `{args.reuse}` (trained earlier with "
           "the same settings, evaluation seed and minigan/NumPy versions; their s/run are as measured then)"
           if getattr(args, "reused", 0) else ""),
        f"- evaluation: {EVAL_SAMPLES} samples of the final generator from noise seed {args.eval_seed}; mean ± sample "
        f"std over {seeds} seed(s)",
        "",
        table,
        "",
        "Published rows: " + CITATION_PACGAN + "; VEEGAN row: " + CITATION_VEEGAN + " (no reverse KL reported).",
        "",
        "How the minigan rows were trained:",
        "",
        f"- GAN / PacGAN2 / PacGAN4: `--arch pacgan` (G 2-D noise -> 4 x 400 (Dense, BatchNorm1d, ReLU) -> 2 as in the "
        f"paper, D 3 x 200 LeakyReLU(0.2) -> 1), Adam lr {PAPER['lr']:g} for both players (constant: no decay), "
        f"beta1 {PAPER['beta1']}, "
        + ("100 packed D inputs per step (100 x m samples), as in the authors' configuration" if args.batch_unit ==
           "packs" else "100 samples per step whatever the packing degree")
        + ", non-saturating loss.",
        "- Not as in the paper: LeakyReLU instead of the paper's 5-piece maxout units in D; fresh samples every step "
        "instead of 400 epochs of a fixed 100,000-point set; **far fewer steps**. Samples for evaluation are drawn "
        "with G in eval mode (batch norm's running statistics).",
        f"- minigan best: `TrainConfig(dataset=...)` with all training options at their defaults ({best_defaults}), "
        "i.e. `minigan train --dataset <data>`; only the logging cadence is set by the script.",
        "",
        "Speed per run (train only, mean over seeds):",
        "",
        "| data | row | batch | pack | steps/s | train s/run |",
        "|---|---|---|---|---|---|",
        speeds,
    ]
    if curve:
        parts += ["", "Quality against steps, minigan best: mean ± std over seeds of the quality each run logs in its "
                  "metrics.jsonl (2,500 samples from the run's own noise seed, so the last point differs slightly "
                  "from the table's evaluation).", "", curve]
    return "\n".join(parts) + "\n"


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Terminated:
        print("\npacgan_table: terminated (SIGTERM); workers stopped, run folders removed unless --keep, --json "
              "holds every run finished before", file=sys.stderr)
        sys.exit(128 + signal.SIGTERM)
