"""``minigan`` on the command line: ``train``, ``sample``, ``evaluate`` and ``assign``.

    minigan train                                  # the default run: an MLP GAN on the bundled digits
    minigan train --dataset ring8 --out runs/ring  # minigan's best configuration for the 8-Gaussian ring
    minigan train --resume runs/ring --steps 10000 # continue that run, exactly
    minigan sample runs/ring/checkpoint.npz -n 64 --npy samples.npy
    minigan evaluate runs/ring
    minigan assign make a1 course/a1                # classroom assignments: see docs/teaching.md
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

from . import __version__
from .backend import BACKENDS
from .data import DATASET_NAMES
from .models import ARCHS


def _number(kind, low, high=None, low_open=False, high_open=True):
    """An argparse ``type`` that parses ``kind`` (int or float) and checks its range, so a bad value is reported
    as ``argument --steps: expected an integer >= 1, got '0'`` before any work starts."""
    bounds = f"{'>' if low_open else '>='} {low}" + ("" if high is None else f" and {'<' if high_open else '<='} {high}")
    what = f"{'an integer' if kind is int else 'a number'} {bounds}"

    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if (value is None or not math.isfinite(value) or value < low or (low_open and value == low)
                or (high is not None and (value > high or (high_open and value == high)))):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    parse.__name__ = what  # argparse names the type in some messages
    return parse


_COUNT = _number(int, 1)  # steps, batch size, ...
_SEED = _number(int, 0)
_RATE = _number(float, 0, low_open=True)  # learning rates, epochs
_FRACTION = _number(float, 0, 1)  # beta1, label smoothing: [0, 1)
_STD = _number(float, 0)


def _train_parser(sub):
    p = sub.add_parser("train", help="train a GAN and write pictures, metrics and a checkpoint into a run folder",
                       description="Train a GAN. Unset options take the dataset's defaults (see README).")
    p.add_argument("--dataset", default=None, choices=DATASET_NAMES, help="digits (bundled, default), mnist, fashion-mnist, ring8, grid25, "
                                                   "moons, spiral")
    p.add_argument("--arch", default=None, choices=ARCHS, help="mlp (images, default), seed (the classic 100-256-784 MLP), "
                                                "dcgan (convolutional, images), toy (2-D, default), pacgan")
    steps = p.add_mutually_exclusive_group()
    steps.add_argument("--steps", type=_COUNT, default=None, help="total generator steps of the run")
    steps.add_argument("--epochs", type=_RATE, default=None, help="passes over the data instead of --steps")
    p.add_argument("--batch-size", type=_COUNT, default=None)
    p.add_argument("--lr-g", type=_RATE, default=None, help="generator Adam learning rate")
    p.add_argument("--lr-d", type=_RATE, default=None, help="discriminator Adam learning rate")
    p.add_argument("--beta1", type=_FRACTION, default=None, help="Adam beta1 (0.5 as in DCGAN by default)")
    p.add_argument("--lr-decay", choices=["none", "linear"], default=None,
                   help="learning-rate schedule: none, or linear (constant, then linearly towards 0 over the "
                        "second half; the last step runs at 2/steps of the rate)")
    p.add_argument("--ema", type=_FRACTION, default=None, metavar="DECAY",
                   help="draw samples (pictures, quality numbers, checkpoint sampling) from an exponential moving "
                        "average of G's weights with this decay (default for the mlp GAN on images: 0.9995, about "
                        "the last 2,000 steps); 0 switches it off")
    p.add_argument("--loss", choices=["nonsaturating", "minimax"], default=None,
                   help="generator loss: nonsaturating -E[log D(G(z))] (default) or minimax E[log(1-D(G(z)))]")
    p.add_argument("--d-steps", type=_COUNT, default=None, help="discriminator steps per generator step")
    p.add_argument("--label-smoothing", type=_FRACTION, default=None, help="one-sided: real targets 1-s")
    p.add_argument("--instance-noise", type=_STD, default=None, help="std of Gaussian noise on D's inputs")
    p.add_argument("--pack", type=_COUNT, default=None, help="PacGAN packing degree m (D judges m samples at once)")
    p.add_argument("--backend", default=None, type=str.lower, choices=BACKENDS, help="numpy (default), cupy, or auto; also $MINIGAN_BACKEND")
    p.add_argument("--seed", type=_SEED, default=None)
    p.add_argument("--out", default=None, help="run folder (default runs/<dataset>-<arch>-<time>)")
    p.add_argument("--resume", default=None, metavar="DIR", help="continue the run in DIR from its checkpoint")
    p.add_argument("--sample-every", type=_COUNT, default=None, help="steps between sample grids and checkpoints")
    p.add_argument("--log-every", type=_COUNT, default=None, help="steps between metrics.jsonl rows")
    p.add_argument("--data-dir", default=None, help="folder with the MNIST/Fashion-MNIST .gz files "
                                                    "(else $MINIGAN_DATA_DIR, then the cache, then download)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _cmd_train(args) -> int:
    from . import train as T

    given = {k: v for k, v in vars(args).items()
             if v is not None and k in {f.name for f in T.fields(T.TrainConfig)}}
    try:
        if args.resume:
            if args.out:
                raise ValueError("--resume continues a run in its own folder; --out cannot be combined with it")
            out = T.resume(args.resume, overrides=given, progress=not args.no_progress)
        else:
            config = T.TrainConfig(**given)
            out = Path(args.out) if args.out else Path("runs") / (
                f"{config.dataset}-{config.arch or 'default'}-{time.strftime('%Y%m%d-%H%M%S')}")
            if (out / T.CHECKPOINT).exists():
                raise ValueError(f"{out} already holds a run; continue it with --resume {out}, or pick another --out")
            out = T.train(config, out, progress=not args.no_progress)
    except KeyboardInterrupt:
        return 130
    print(f"done: pictures in {out / 'samples.png'} and {out / 'samples'}/, curves in {out / 'losses.png'}, "
          f"checkpoint {out / T.CHECKPOINT}")
    return 0


def _cmd_sample(args) -> int:
    from . import backend, data, plot
    from .evaluate import generate_samples, load_generator

    G, cfg, path = load_generator(args.checkpoint, backend.resolve(args.backend))
    x = generate_samples(G, cfg, args.n, args.seed)
    out = Path(args.out) if args.out else path.parent / f"sample_{args.n}_seed{args.seed}.png"
    if cfg["data_kind"] == "image":
        plot.save_image_grid(x.reshape(-1, 28, 28), out, title=f"{cfg['dataset']}, {len(x)} samples")
    else:
        modes = {"ring8": data.ring8_modes, "grid25": data.grid25_modes}.get(cfg["dataset"])
        plot.save_scatter(x, out, modes=modes() if modes else None, title=f"{cfg['dataset']}, {len(x)} samples")
    print(f"wrote {out}")
    if args.npy:
        from .checkpoint import atomic_write

        atomic_write(args.npy, lambda f: np.save(f, x, allow_pickle=False))
        print(f"wrote {args.npy}: {x.shape} float32 in the data's own scale")
    return 0


def _cmd_evaluate(args) -> int:
    from .evaluate import evaluate_run

    evaluate_run(args.run, n=args.n, seed=args.seed, data_dir=args.data_dir, backend_name=args.backend)
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="minigan", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"minigan {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    _train_parser(sub)
    s = sub.add_parser("sample", help="draw samples from a saved generator")
    s.add_argument("checkpoint", help="a run folder or its checkpoint.npz")
    s.add_argument("-n", type=_COUNT, default=64, help="number of samples (default 64)")
    s.add_argument("--seed", type=_SEED, default=0)
    s.add_argument("--out", default=None, help="PNG path (default: beside the checkpoint)")
    s.add_argument("--npy", default=None, help="also save the raw samples as an (n, features) .npy")
    s.add_argument("--backend", default=None, type=str.lower, choices=BACKENDS)
    e = sub.add_parser("evaluate", help="measure a trained generator against the real data")
    e.add_argument("run", help="a run folder or its checkpoint.npz")
    e.add_argument("-n", type=_COUNT, default=None, help="samples to draw (default 2,500 for 2-D, 10,000 for images)")
    e.add_argument("--seed", type=_SEED, default=0)
    e.add_argument("--data-dir", default=None)
    e.add_argument("--backend", default=None, type=str.lower, choices=BACKENDS)
    from .assignments import cli as assign_cli

    assign_cli.add_parser(sub)
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # argparse printed the usage and "argument --x: ..." (or --help / --version)
        return stop.code
    handlers = {"train": _cmd_train, "sample": _cmd_sample, "evaluate": _cmd_evaluate, "assign": assign_cli.run}
    try:
        return handlers[args.command](args)
    except Exception as err:  # user-facing errors: one clear line, no traceback
        from .backend import BackendError
        from .checkpoint import CheckpointError
        from .data import DatasetError
        from .train import TrainingDiverged

        if isinstance(err, (BackendError, CheckpointError, DatasetError, TrainingDiverged, ValueError, OSError)):
            print(f"minigan {args.command}: error: {err}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
