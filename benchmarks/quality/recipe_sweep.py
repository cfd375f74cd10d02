"""Recipe sweep for the default main job: sample quality of the ``mlp`` GAN on the bundled digits, as a function of
the number of steps, the EMA decay of G's weights, the learning-rate schedule and the batch size.

One training run per (steps, batch, decay start, seed). Each run trains exactly as ``minigan train`` does (the same
``Run``: models, optimizers, data batches and noise from the seed; the lr multiplier of every step), while it keeps
several weight averages of G at once (``--emas``), so one run measures every EMA decay. Every ``--eval-every``
steps, and at the end, the live G and each average draw samples from a fixed noise set and are scored with the
project's classifier: *confident* % (max class probability >= ``metrics.CONFIDENT_THRESHOLD``), classes covered,
class KL to uniform, MNIST score and classifier FID against the 10,000 MNIST test images.

The lr schedule ``--decay-start s``: constant, then linearly towards 0 from step ``s * steps`` on, reaching 0 one
step past the end: ``min(1, (1 - k / steps) / (1 - s))``. ``s = 0.5`` is ``--lr-decay linear``; ``s = 1`` is
``--lr-decay none``, a constant rate.

Results go to ``--json`` (one JSON object per line, appended as each evaluation finishes, so a killed sweep keeps
what it measured); ``--markdown`` turns such files into the table of benchmarks/quality/RECIPE.md::

    OPENBLAS_NUM_THREADS=1 python benchmarks/quality/recipe_sweep.py --steps 14000 --seeds 0 1 2 --json r.jsonl
    python benchmarks/quality/recipe_sweep.py --markdown r.jsonl > table.md
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections import defaultdict  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from minigan import data, metrics  # noqa: E402
from minigan.ema import WeightAverage  # noqa: E402
from minigan.train import Run, TrainConfig  # noqa: E402


def lr_multiplier(step: int, total: int, decay_start: float) -> float:
    """Constant, then linear towards 0 from ``decay_start * total`` (0.5: ``lr_factor(..., "linear")``; 1: constant
    throughout, ``lr_factor(..., "none")``)."""
    if decay_start >= 1.0:
        return 1.0
    return min(1.0, (1.0 - step / total) / (1.0 - decay_start))


class Scorer:
    """The classifier metrics of a generator on a fixed noise set; the test images' feature Gaussian computed once."""

    def __init__(self, noise_dim: int, n: int, seed: int = 12345, data_dir=None):
        self.classifier = metrics.load_classifier()
        test, _ = data.load_mnist("test", data_dir=data_dir)
        test01 = test.reshape(len(test), -1).astype(np.float32) / np.float32(255)
        self.test_stats = metrics.gaussian_stats(self.classifier.features(test01))
        self.z = np.random.default_rng(seed).standard_normal((n, noise_dim), dtype=np.float32)

    def __call__(self, G, n: int | None = None) -> dict:
        z = self.z[:n]
        x = np.concatenate([G.forward(z[i:i + 2500]) for i in range(0, len(z), 2500)])  # (n, 784) in [-1, 1]
        for m in G.modules():
            m._cache = None
        images01 = np.clip((x + 1) / 2, 0, 1).astype(np.float32)
        probs = self.classifier.probs(images01)
        counts = metrics.class_histogram(probs.argmax(axis=1))
        fid = metrics.frechet_distance(*metrics.gaussian_stats(self.classifier.features(images01)), *self.test_stats)
        return {"n": len(z), "confident": metrics.confident_fraction(probs), "classes": metrics.classes_covered(counts),
                "class_kl": metrics.histogram_kl_to_uniform(counts), "mnist_score": metrics.mnist_score(probs),
                "fid": fid}


def sweep_one(steps, batch, decay_start, seed, emas, eval_every, eval_n, final_n, scorer, out_json, tag, lr=None):
    with tempfile.TemporaryDirectory(prefix="recipe-") as tmp:
        run = Run(TrainConfig(dataset="digits", arch="mlp", steps=steps, batch_size=batch, seed=seed,
                              lr_g=lr, lr_d=lr, lr_decay="linear"), Path(tmp), progress=False)
    cfg, gan = run.config, run.gan
    averages = {d: WeightAverage(gan.G, d) for d in emas}
    train_s, t0 = 0.0, time.perf_counter()
    for k in range(steps):
        factor = lr_multiplier(k, steps, decay_start)
        gan.g_optimizer.lr, gan.d_optimizer.lr = cfg.lr_g * factor, cfg.lr_d * factor
        gan.train_step([run.dataset.batch(k, batch)])
        for avg in averages.values():
            avg.update(gan.G)
        step = k + 1
        if step % eval_every == 0 or step == steps:
            train_s += time.perf_counter() - t0
            n = final_n if step == steps else eval_n
            gan.G.eval()
            results = {"live": scorer(gan.G, n)}
            gan.G.train()
            results.update({f"ema{d}": scorer(avg.model, n) for d, avg in averages.items()})
            for sampler, r in results.items():
                row = dict(tag=tag, steps=steps, batch=batch, lr=cfg.lr_g, decay_start=decay_start, seed=seed,
                           step=step, sampler=sampler, final=step == steps, train_s=round(train_s, 1),
                           steps_per_s=round(step / train_s, 2), loadavg=round(os.getloadavg()[0], 2), **r)
                with open(out_json, "a") as f:
                    f.write(json.dumps(row) + "\n")
            best = max(results.items(), key=lambda kv: kv[1]["confident"])
            print(f"[{tag} seed {seed}] step {step}/{steps} {step / train_s:.1f} steps/s load "
                  f"{os.getloadavg()[0]:.2f}: live conf {results['live']['confident']:.3f}; best {best[0]} conf "
                  f"{best[1]['confident']:.3f} cls {best[1]['classes']} kl {best[1]['class_kl']:.3f} score "
                  f"{best[1]['mnist_score']:.2f} fid {best[1]['fid']:.2f}", flush=True)
            t0 = time.perf_counter()


def markdown(paths) -> str:
    """Final rows of the sweep files, grouped by recipe and sampler: mean ± sd over seeds, and the seeds."""
    rows = [json.loads(line) for p in paths for line in Path(p).read_text().splitlines() if line.strip()]
    groups = defaultdict(list)
    for r in rows:
        if r["final"]:
            groups[(r["steps"], r["batch"], r.get("lr", 2e-4), r["decay_start"], r["sampler"])].append(r)
    out = ["| steps | batch | lr | decay from | sampler | seeds | confident % | classes | class KL | MNIST score | FID | "
           "steps/s (load) |", "|" + "---|" * 12]

    def ms(values, scale=1.0, fmt=".1f"):
        v = np.asarray(values, dtype=float) * scale
        return f"{v.mean():{fmt}} ± {v.std(ddof=1):{fmt}}" if len(v) > 1 else f"{v[0]:{fmt}}"

    for (steps, batch, lr, start, sampler), rs in sorted(groups.items()):
        rs = sorted(rs, key=lambda r: r["seed"])
        out.append(f"| {steps} | {batch} | {lr:g} | {start} | {sampler} | {','.join(str(r['seed']) for r in rs)} | "
                   f"{ms([r['confident'] for r in rs], 100)} | {min(r['classes'] for r in rs)}-"
                   f"{max(r['classes'] for r in rs)} | {ms([r['class_kl'] for r in rs], fmt='.3f')} | "
                   f"{ms([r['mnist_score'] for r in rs], fmt='.2f')} | {ms([r['fid'] for r in rs], fmt='.1f')} | "
                   f"{np.mean([r['steps_per_s'] for r in rs]):.1f} ({np.mean([r['loadavg'] for r in rs]):.1f}) |")
    return "\n".join(out)


def curve_markdown(paths) -> str:
    """Confident % (mean over seeds) at every evaluated step of each recipe, one column per sampler.

    Within a run the lr schedule is tied to its total length, so step 12,000 of a 16,000-step run is *not* a
    12,000-step run (whose lr would have decayed further): the curve shows how each sampler tracks the live G.
    """
    rows = [json.loads(line) for p in paths for line in Path(p).read_text().splitlines() if line.strip()]
    recipes = sorted({(r["steps"], r["batch"], r["decay_start"], r.get("lr", 2e-4)) for r in rows})
    out = []
    for recipe in recipes:
        rs = [r for r in rows if (r["steps"], r["batch"], r["decay_start"], r.get("lr", 2e-4)) == recipe]
        samplers = sorted({r["sampler"] for r in rs}, key=lambda name: (name != "live", name))
        seeds = sorted({r["seed"] for r in rs})
        out += [f"\n{recipe[0]} steps, batch {recipe[1]}, lr {recipe[3]:g}, decay from {recipe[2]}; confident % (FID), mean over "
                f"seeds {','.join(map(str, seeds))}:\n",
                "| step | " + " | ".join(samplers) + " |", "|" + "---|" * (len(samplers) + 1)]
        for step in sorted({r["step"] for r in rs}):
            cells = []
            for name in samplers:
                hit = [r for r in rs if r["step"] == step and r["sampler"] == name]
                cells.append(f"{100 * np.mean([r['confident'] for r in hit]):.1f} "
                             f"({np.mean([r['fid'] for r in hit]):.1f})" if hit else "-")
            out.append(f"| {step} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, nargs="+", default=[14000])
    p.add_argument("--batch-size", type=int, nargs="+", default=[64])
    p.add_argument("--decay-start", type=float, nargs="+", default=[0.5])
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--lr", type=float, nargs="+", default=[None],
                   help="Adam learning rate of G and D (default: minigan train's image default)")
    p.add_argument("--emas", type=float, nargs="*", default=[0.999, 0.9995, 0.9999])
    p.add_argument("--eval-every", type=int, default=2000)
    p.add_argument("--eval-n", type=int, default=2000, help="samples per intermediate evaluation")
    p.add_argument("--final-n", type=int, default=10000, help="samples at the last step (the MNIST table's count)")
    p.add_argument("--json", default="recipe_sweep.jsonl", help="append result rows here")
    p.add_argument("--data-dir", default=None, help="folder with the MNIST test files (else $MINIGAN_DATA_DIR, cache)")
    p.add_argument("--tag", default="sweep")
    p.add_argument("--markdown", nargs="+", default=None, metavar="JSONL", help="print the table of these files")
    args = p.parse_args(argv)
    if args.markdown:
        print(markdown(args.markdown))
        print(curve_markdown(args.markdown))
        return 0
    scorer = Scorer(noise_dim=100, n=max(args.eval_n, args.final_n), data_dir=args.data_dir)
    for seed in args.seeds:
        for steps in args.steps:
            for batch in args.batch_size:
                for start in args.decay_start:
                    for lr in args.lr:
                        sweep_one(steps, batch, start, seed, args.emas, args.eval_every, args.eval_n, args.final_n,
                                  scorer, args.json, args.tag, lr=lr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
