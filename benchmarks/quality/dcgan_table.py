"""MNIST sample quality of ``--arch dcgan``, row by row, beside the same recipe in PyTorch (issue 11).

``mnist_table.py`` trains the ``mlp`` and ``seed`` rows; this script adds the DCGAN rows with the same protocol
(full MNIST training set less the 1,000 held-out Parzen images, 10,000 evaluation samples from noise seed 0,
``minigan.evaluate``'s metrics: classes covered, class KL, MNIST score, classifier FID, Parzen). Each row is one
process call, so long budgets can run one at a time in the background and the table is assembled at the end::

    python benchmarks/quality/dcgan_table.py row --steps 2000 --seed 0 --json /tmp/dcgan/s2000_seed0.json
    python benchmarks/quality/dcgan_table.py torch  # a Python with a CPU build of torch --steps 2000 --seed 0 --json /tmp/dcgan/t.json
    python benchmarks/quality/dcgan_table.py table /tmp/dcgan/*.json

``torch`` trains the same DCGAN in PyTorch: the layers of ``minigan.models.dcgan`` (widths 32/64, no bias before
batch norm, no batch norm in D), N(0, 0.02^2) weights and zero biases, Adam(2e-4, (0.5, 0.999)) with minigan's
linear decay over the second half, batch 64, the non-saturating loss, real and fake stacked into one D batch, and
the very same data batches (``Dataset.batch(k)``); samples drawn in eval mode, as minigan's are.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
for _p in (REPO, HERE):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

import numpy as np  # noqa: E402

from minigan import data, metrics  # noqa: E402
from minigan.evaluate import GOODFELLOW_PARZEN, evaluate_run  # noqa: E402
from minigan.train import DEFAULTS, Run, TrainConfig, cpu_model  # noqa: E402
from mnist_table import default_data_dir, evaluate_samples, format_table, train_torch_gan  # noqa: E402

EVAL_SAMPLES = metrics.PARZEN_SAMPLES  # 10,000


def _load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def run_minigan(steps: int, seed: int, data_dir, work: Path, n_eval: int) -> dict:
    """Train ``minigan train --dataset mnist --arch dcgan --steps steps --seed seed`` and evaluate it."""
    out = work / f"dcgan-{steps}-seed{seed}"
    if out.exists():
        shutil.rmtree(out)
    run = Run(TrainConfig(dataset="mnist", arch="dcgan", steps=steps, seed=seed, data_dir=data_dir), out,
              progress=False)
    load0, t0 = _load(), time.perf_counter()
    run.train()
    wall = time.perf_counter() - t0
    m = evaluate_run(out, n=n_eval, seed=0, data_dir=data_dir, quiet=True)
    m.pop("real_ceiling")
    c = run.config
    info = dict(model=f"minigan --arch dcgan, seed {seed}", source="minigan, arch dcgan", arch=c.arch, steps=c.steps,
                seed=seed, batch_size=c.batch_size, train_wall_s=wall, steps_per_s=c.steps / max(wall, 1e-9),
                load_start=load0, load_end=_load(), run_dir=str(out),
                logged=[{k: r[k] for k in ("step", "classes_covered", "mnist_score") if k in r}
                        for r in run.rows if "mnist_score" in r])
    return dict(train=info, metrics=m)


def torch_dcgan(noise_dim=100, widths=(32, 64)):
    """The ``minigan.models.dcgan`` architecture in PyTorch, with DCGAN's N(0, 0.02^2) init."""
    from torch import nn

    a, b = widths
    G = nn.Sequential(nn.Linear(noise_dim, b * 49, bias=False), nn.BatchNorm1d(b * 49), nn.ReLU(),
                      nn.Unflatten(1, (b, 7, 7)),
                      nn.ConvTranspose2d(b, a, 4, 2, 1, bias=False), nn.BatchNorm2d(a), nn.ReLU(),
                      nn.ConvTranspose2d(a, 1, 4, 2, 1), nn.Tanh(), nn.Flatten())
    D = nn.Sequential(nn.Unflatten(1, (1, 28, 28)), nn.Conv2d(1, a, 4, 2, 1), nn.LeakyReLU(0.2),
                      nn.Conv2d(a, b, 4, 2, 1), nn.LeakyReLU(0.2), nn.Flatten(), nn.Linear(b * 49, 1))
    for m in list(G.modules()) + list(D.modules()):
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return G, D


def run_torch(steps: int, seed: int, data_dir, n_eval: int) -> dict:
    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    torch.manual_seed(seed)
    d = DEFAULTS["image"]
    batch, lr, beta1, decay = d["batch_size"], d["lr_g"], d["beta1"], d["lr_decay"]
    G, D = torch_dcgan()
    ds = data.get_dataset("mnist", data_dir=data_dir, scale="tanh", seed=seed)  # minigan's batches
    load0 = _load()
    wall = train_torch_gan(G, D, ds, steps, batch=batch, lr=lr, betas=(beta1, 0.999), decay=decay, noise_dim=100,
                           seed=seed, name="torch DCGAN")
    G.eval()
    with torch.no_grad():
        z = torch.from_numpy(np.random.default_rng(0).standard_normal((n_eval, 100), dtype=np.float32))
        x = G(z).numpy().astype(np.float32)
    m = evaluate_samples(np.clip((x + 1) / 2, 0, 1), data_dir)
    info = dict(model=f"PyTorch DCGAN (same recipe), seed {seed}", source=f"torch {torch.__version__}",
                arch="dcgan (PyTorch)", steps=steps, seed=seed, batch_size=batch, train_wall_s=wall,
                steps_per_s=steps / max(wall, 1e-9), load_start=load0, load_end=_load())
    return dict(train=info, metrics=m)


def table(paths) -> str:
    rows = []
    for p in paths:
        r = json.loads(Path(p).read_text())
        rows.append((r["train"]["model"], r["train"]["source"], r["metrics"], r["train"]))
    rows.sort(key=lambda t: (t[3]["source"].startswith("torch"), t[3]["steps"], t[3]["seed"]))
    data_dir = default_data_dir()
    rows.append(("real data (ceiling)", "10,000 MNIST training images", metrics.real_ceiling(data_dir, parzen=True),
                 None))
    rows.append(("GAN, Goodfellow et al. 2014", "published (Parzen only)", dict(GOODFELLOW_PARZEN), None))
    return format_table(rows)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("what", choices=["row", "torch", "table"])
    p.add_argument("paths", nargs="*", help="table: the row JSON files")
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eval-samples", type=int, default=EVAL_SAMPLES)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--work", default=None, help="folder for the run folder (default: a temporary one, removed)")
    p.add_argument("--json", default=None, help="row / torch: where to write the row's numbers")
    args = p.parse_args(argv)
    data_dir = args.data_dir or default_data_dir()
    if args.what == "table":
        print(table(args.paths))
        return 0
    if args.what == "torch":
        result = run_torch(args.steps, args.seed, data_dir, args.eval_samples)
    else:
        work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="minigan-dcgan-"))
        try:
            result = run_minigan(args.steps, args.seed, data_dir, work, args.eval_samples)
        finally:
            if not args.work:
                shutil.rmtree(work, ignore_errors=True)
    result["meta"] = dict(cpu=cpu_model(), numpy=np.__version__, eval_samples=args.eval_samples, date=time.ctime())
    text = json.dumps(result, indent=1)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
