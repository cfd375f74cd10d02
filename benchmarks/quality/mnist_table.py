"""MNIST sample quality of minigan's image GANs, beside real data and Goodfellow et al. (2014).

Trains, on the MNIST training set (the first 59,000 images: the last 1,000 are the held-out Parzen validation
set),

* ``default`` -- ``minigan train --dataset mnist``: the ``mlp`` GAN with every option at its default (read from
  ``minigan.train.DEFAULTS`` at run time);
* ``seed`` -- ``minigan train --dataset mnist --arch seed``: the classic 100-256-784 MLP GAN;
* with ``--torch-reference`` (needs PyTorch): the same ``seed`` recipe written in PyTorch -- same layers, Glorot
  uniform weights and zero biases, Adam(2e-4, betas (0.5, 0.999)) with minigan's image learning-rate schedule
  (linear decay over the second half), batch 64, the non-saturating loss, data in [0, 1] and a sigmoid output,
  the same number of steps and the very same data batches -- as evidence that the hand-written engine learns as
  well as an autograd framework does;

then measures every generator with ``minigan.evaluate`` (10,000 samples: digit classes covered, class KL,
MNIST score, classifier FID, Parzen-window log-likelihood with sigma chosen on 1,000 held-out images) and prints
a markdown table with the real-data ceiling (``minigan.metrics.real_ceiling``) and Goodfellow et al.'s published
Parzen estimate of 225 ± 2 nats.

Usage (from the repository root)::

    python benchmarks/quality/mnist_table.py --quick                       # smoke test, NOT the protocol
    python benchmarks/quality/mnist_table.py --torch-reference --out benchmarks/quality/MNIST_RESULTS.md

``--quick`` trains a few dozen steps and evaluates 1,000 samples: its Parzen numbers use a 1,000-sample window,
which is *not* the protocol (10,000), and are labelled so.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import datetime  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import shlex  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # run from a checkout without installing
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))  # for workfolder.py beside this file

import numpy as np  # noqa: E402

from minigan import __version__, data, metrics  # noqa: E402
from minigan.evaluate import GOODFELLOW_PARZEN, evaluate_run  # noqa: E402
from minigan import train as mtrain  # noqa: E402
from minigan.train import DEFAULTS, Run, TrainConfig, cpu_model, defaults_of, versions  # noqa: E402
from workfolder import WorkFolder  # noqa: E402

ROWS = ("default", "seed")
QUICK_STEPS = 30
QUICK_SAMPLES = 1000
PROTOCOL_SAMPLES = metrics.PARZEN_SAMPLES  # 10,000
CITATION = ("Goodfellow et al. (2014), Generative adversarial nets, NeurIPS, Table 1: Parzen window-based "
            "log-likelihood on MNIST, 225 ± 2")


def default_data_dir() -> str | None:
    """``$MINIGAN_DATA_DIR``, else ``../shared/data/mnist`` beside the repository if it exists, else None."""
    env = os.environ.get("MINIGAN_DATA_DIR")
    if env:
        return env
    shared = REPO.parent / "shared" / "data" / "mnist"
    return str(shared) if shared.is_dir() else None


def mnist_available(data_dir) -> bool:
    """Whether the four MNIST files are found without downloading."""
    return all(any((d / name).is_file() for d in data.search_dirs("mnist", data_dir)) for name in data.ALL_FILES)


# ============================================================================================== runs


def train_minigan(row: str, steps: int | None, seed: int, data_dir, out: Path) -> dict:
    cfg = TrainConfig(dataset="mnist", seed=seed, data_dir=data_dir)  # every training option at its default
    if row == "seed":
        cfg.arch = "seed"
    if steps is not None:
        cfg.steps = steps
    if out.exists():
        shutil.rmtree(out)
    run = Run(cfg, out, progress=False)
    t0 = time.perf_counter()
    run.train()
    wall = time.perf_counter() - t0
    c = run.config
    return dict(arch=c.arch, steps=c.steps, batch_size=c.batch_size, lr=c.lr_g, beta1=c.beta1,
                lr_decay=getattr(c, "lr_decay", "none"), train_wall_s=wall,
                steps_per_s=c.steps / max(wall, 1e-9), run_dir=str(out))


def train_torch_gan(G, D, ds, steps: int, *, batch: int, lr: float, betas, decay: str, noise_dim: int, seed: int,
                    name: str) -> float:
    """Train torch modules G and D as ``GAN.train_step`` does, on minigan's batch stream ``ds``; return wall seconds.

    Written as a competent PyTorch user would: D on ``cat(real, fake)`` with the fakes made under ``no_grad``, one
    BCE-with-logits per half, D frozen (``requires_grad_(False)``) for the non-saturating G step,
    ``zero_grad(set_to_none=True)``, and minigan's learning-rate schedule applied to both optimizers every step.
    """
    import torch
    from torch import nn

    opt_g = torch.optim.Adam(G.parameters(), lr=lr, betas=betas)
    opt_d = torch.optim.Adam(D.parameters(), lr=lr, betas=betas)
    bce = nn.BCEWithLogitsLoss()
    ones, zeros = torch.ones(batch, 1), torch.zeros(batch, 1)
    gen = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    for k in range(steps):
        for group in opt_g.param_groups + opt_d.param_groups:
            group["lr"] = lr * mtrain.lr_factor(k, steps, decay)
        real = torch.from_numpy(ds.batch(k, batch))
        with torch.no_grad():
            fake = G(torch.randn(batch, noise_dim, generator=gen))
        logits = D(torch.cat([real, fake]))
        d_loss = bce(logits[:batch], ones) + bce(logits[batch:], zeros)
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        for p in D.parameters():
            p.requires_grad_(False)
        g_loss = bce(D(G(torch.randn(batch, noise_dim, generator=gen))), ones)
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        for p in D.parameters():
            p.requires_grad_(True)
        if not (torch.isfinite(d_loss) and torch.isfinite(g_loss)):
            raise RuntimeError(f"{name} diverged at step {k + 1}")
    return time.perf_counter() - t0


def train_torch_seed(steps: int, seed: int, data_dir, n_samples: int, eval_seed: int) -> tuple[dict, np.ndarray]:
    """The ``seed`` GAN recipe in PyTorch on minigan's own batch stream; returns (info, samples in [0, 1])."""
    import torch
    from torch import nn

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    torch.manual_seed(seed)
    base = TrainConfig(dataset="mnist", arch="seed")
    d = defaults_of("image", "seed")
    batch, lr, beta1 = d["batch_size"], d["lr_g"], d["beta1"]
    decay = d.get("lr_decay", "none")  # follow minigan's learning-rate schedule, if the defaults have one
    beta2, noise_dim = base.beta2, 100

    def dense(a, b):
        layer = nn.Linear(a, b)
        nn.init.xavier_uniform_(layer.weight)
        nn.init.zeros_(layer.bias)
        return layer

    G = nn.Sequential(dense(noise_dim, 256), nn.ReLU(), dense(256, 784), nn.Sigmoid())
    D = nn.Sequential(dense(784, 256), nn.LeakyReLU(0.2), dense(256, 1))
    ds = data.get_dataset("mnist", data_dir=data_dir, scale="sigmoid", seed=seed)  # same batches as minigan's run
    wall = train_torch_gan(G, D, ds, steps, batch=batch, lr=lr, betas=(beta1, beta2), decay=decay,
                           noise_dim=noise_dim, seed=seed, name="torch reference")

    with torch.no_grad():
        z = torch.randn(n_samples, noise_dim, generator=torch.Generator().manual_seed(eval_seed))
        x = G(z).numpy().astype(np.float32)
    info = dict(arch="seed (PyTorch)", steps=steps, batch_size=batch, lr=lr, beta1=beta1, lr_decay=decay,
                train_wall_s=wall,
                steps_per_s=steps / max(wall, 1e-9), torch=torch.__version__)
    return info, np.clip(x, 0, 1)


def evaluate_samples(x01: np.ndarray, data_dir) -> dict:
    """The metrics ``evaluate_run`` computes for an image run, for samples made outside minigan."""
    train, _ = data.load_mnist("train", data_dir=data_dir)
    test, _ = data.load_mnist("test", data_dir=data_dir)
    to01 = lambda a: a.reshape(len(a), -1).astype(np.float32) / np.float32(255)  # noqa: E731
    return metrics.image_metrics(x01, real_test01=to01(test), real_train01=to01(train), parzen=True)


# ============================================================================================== table


def _fmt(r: dict, key: str) -> str:
    if key not in r or r[key] is None:
        return "-"
    v = r[key]
    return {"classes_covered": lambda: f"{v}/10", "class_kl": lambda: f"{v:.4f}", "mnist_score": lambda: f"{v:.2f}",
            "confident": lambda: f"{100 * v:.1f}", "fid": lambda: f"{v:.2f}"}[key]()


def format_table(rows: list[tuple[str, str, dict, dict | None]]) -> str:
    """rows: (model, source, metrics, training info or None)."""
    lines = ["| model | source | steps | train s | steps/s | classes | class KL | MNIST score | confident % | FID | "
             "Parzen LL (nats) | Parzen window |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, source, m, info in rows:
        if "parzen_ll" in m:
            parzen = f"{m['parzen_ll']:.1f} ± {m['parzen_se']:.1f}"
            n = m.get("parzen_samples")
            if n is None:
                window = "10,000 (paper)"
            elif n < PROTOCOL_SAMPLES:
                window = f"{n:,} (quick: NOT the protocol)"
            else:
                window = f"{n:,}"
        else:
            parzen, window = "-", "-"
        steps = f"{info['steps']}" if info else "-"
        wall = f"{info['train_wall_s']:.0f}" if info else "-"
        speed = f"{info['steps_per_s']:.1f}" if info else "-"
        cells = [name, source, steps, wall, speed] + [_fmt(m, k) for k in
                                                      ("classes_covered", "class_kl", "mnist_score", "confident",
                                                       "fid")]
        lines.append("| " + " | ".join(cells + [parzen, window]) + " |")
    return "\n".join(lines)


# ============================================================================================== driver


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="MNIST quality of minigan's image GANs beside real data and "
                                            "Goodfellow et al. (2014).")
    p.add_argument("--data-dir", default=None,
                   help="folder with the MNIST .gz files (default: $MINIGAN_DATA_DIR, else ../shared/data/mnist "
                        "beside the repository if present, else minigan's cache)")
    p.add_argument("--steps", type=int, default=None,
                   help=f"generator steps per run (default: minigan's default, {DEFAULTS['image']['steps']}; "
                        f"{QUICK_STEPS} with --quick)")
    p.add_argument("--rows", nargs="+", default=list(ROWS), choices=ROWS)
    p.add_argument("--seed", type=int, default=0, help="training seed")
    p.add_argument("--eval-seed", type=int, default=0, help="noise seed of the evaluation samples")
    p.add_argument("--torch-reference", action="store_true",
                   help="also train the seed recipe in PyTorch and evaluate it the same way")
    p.add_argument("--quick", action="store_true",
                   help=f"smoke test: {QUICK_STEPS} steps, {QUICK_SAMPLES:,} evaluation samples (labelled: not the "
                        "protocol)")
    p.add_argument("--work", default=None, help="folder for the run folders (default: a temporary folder)")
    p.add_argument("--keep", action="store_true", help="keep the run folders")
    p.add_argument("--json", default=None, metavar="PATH", help="write all numbers as JSON")
    p.add_argument("--out", default=None, metavar="PATH", help="write the report (markdown) to PATH")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    argv_list = sys.argv[1:] if argv is None else list(argv)
    data_dir = args.data_dir or default_data_dir()
    steps = args.steps if args.steps is not None else (QUICK_STEPS if args.quick else None)
    n_eval = QUICK_SAMPLES if args.quick else PROTOCOL_SAMPLES
    if args.torch_reference and importlib.util.find_spec("torch") is None:
        raise SystemExit("--torch-reference needs PyTorch (pip install torch)")

    started = time.perf_counter()
    table_rows, raw = [], {}
    with WorkFolder(args.work, args.keep, "minigan-mnist-") as work:
        labels = {"default": "minigan default (mlp)", "seed": "minigan --arch seed"}
        for row in [r for r in ROWS if r in args.rows]:
            out = work.run(f"mnist-{row}-seed{args.seed}")
            info = train_minigan(row, steps, args.seed, data_dir, out)
            print(f"{labels[row]}: {info['steps']} steps in {info['train_wall_s']:.0f} s "
                  f"({info['steps_per_s']:.1f} steps/s); evaluating {n_eval:,} samples...", file=sys.stderr,
                  flush=True)
            t0 = time.perf_counter()
            m = evaluate_run(out, n=n_eval, seed=args.eval_seed, data_dir=data_dir, quiet=True)
            info["eval_wall_s"] = time.perf_counter() - t0
            ceiling = m.pop("real_ceiling")
            raw[row] = dict(train=info, metrics=m)
            table_rows.append((labels[row], f"minigan, arch {info['arch']}", m, info))
        if args.torch_reference:
            n_steps = steps if steps is not None else DEFAULTS["image"]["steps"]
            info, x = train_torch_seed(n_steps, args.seed, data_dir, n_eval, args.eval_seed)
            print(f"PyTorch seed reference: {n_steps} steps in {info['train_wall_s']:.0f} s "
                  f"({info['steps_per_s']:.1f} steps/s); evaluating...", file=sys.stderr, flush=True)
            t0 = time.perf_counter()
            m = evaluate_samples(x, data_dir)
            info["eval_wall_s"] = time.perf_counter() - t0
            raw["torch_seed"] = dict(train=info, metrics=m)
            table_rows.append(("PyTorch reference (seed recipe)", f"torch {info['torch']}", m, info))
    ceiling = metrics.real_ceiling(data_dir, parzen=True)
    raw["real_ceiling"] = ceiling
    table_rows.append(("real data (ceiling)", "10,000 MNIST training images", ceiling, None))
    table_rows.append(("GAN, Goodfellow et al. 2014", "published (Parzen only)", dict(GOODFELLOW_PARZEN), None))
    total = time.perf_counter() - started

    used_steps = steps if steps is not None else DEFAULTS["image"]["steps"]
    label = (f"QUICK SMOKE RUN ({used_steps} steps, {n_eval:,} evaluation samples): format check only, NOT the "
             "protocol" if args.quick else
             f"{used_steps} steps per run, seed {args.seed}, {n_eval:,} evaluation samples (the protocol)")
    table = format_table(table_rows)
    print(f"\n{label}\n")
    print(table)
    print(f"\ntotal wall time {total:.0f} s", file=sys.stderr)

    command = shlex.join(["python", "benchmarks/quality/mnist_table.py", *argv_list])
    date = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    if args.json:
        meta = dict(command=command, date=date, cpu=cpu_model(), cpu_count=os.cpu_count(), steps=used_steps,
                    quick=args.quick, eval_samples=n_eval, seed=args.seed, eval_seed=args.eval_seed,
                    data_dir=data_dir, total_wall_s=total, defaults_image=DEFAULTS["image"],
                    defaults_by_arch={arch: defaults_of("image", arch) for arch in ("mlp", "seed")},
                    versions=versions())
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"meta": meta, "results": raw}, indent=1))
        print(f"wrote {args.json}", file=sys.stderr)
    if args.out:
        defaults = "; ".join(f"{arch}: " + ", ".join(f"{k}={v}" for k, v in defaults_of("image", arch).items()
                                                    if k != "arch")
                             for arch in ("mlp", "seed"))
        text = "\n".join([
            "# MNIST sample quality: minigan beside real data and Goodfellow et al. (2014)",
            "",
            f"**{label}.**",
            "",
            f"- command: `{command}`",
            f"- date: {date}",
            f"- machine: {cpu_model()}, {os.cpu_count()} logical CPUs, one BLAS thread",
            f"- software: minigan {__version__}, NumPy {np.__version__}, Python {platform.python_version()}"
            + (f", PyTorch {raw['torch_seed']['train']['torch']}" if "torch_seed" in raw else ""),
            f"- training: the first 59,000 MNIST training images, {used_steps} generator steps, seed {args.seed}; "
            f"the defaults each minigan row ran with: {defaults}",
            f"- evaluation: {n_eval:,} samples from noise seed {args.eval_seed}; Parzen sigma chosen on the last "
            "1,000 training images (held out of training), log-likelihood of the 10,000 test images",
            f"- total wall time: {total:.0f} s",
            "",
            table,
            "",
            f"Published row: {CITATION}. Parzen-window estimates are unreliable in 784 dimensions (Theis et al. "
            "2016): they are shown because they are the published anchor, not as a ranking.",
            "",
            "Training times: minigan's include its own logging (sample grids, checkpoints and classifier checks "
            "every `sample_every` steps); the PyTorch reference's are the bare loop on one thread.",
            "",
        ])
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)
        print(f"wrote {args.out}", file=sys.stderr)
    if args.keep:
        print(f"run folders kept in {work.path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
