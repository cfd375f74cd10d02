"""``minigan evaluate``: load a trained generator, draw samples with a fixed seed, measure them, write eval.json.

2-D runs (ring8, grid25) get the PacGAN/VEEGAN mode metrics on 2,500 samples; image runs (digits, mnist) get the
classifier-based metrics and the Parzen estimate on 10,000 samples, printed beside the same numbers for real data
(the ceiling) and Goodfellow et al.'s published Parzen figure.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from . import backend, data, metrics, models
from .checkpoint import CheckpointError, atomic_write, check_weight_average, load_checkpoint

GOODFELLOW_PARZEN = {"parzen_ll": 225.0, "parzen_se": 2.0}  # Goodfellow et al. 2014, Table 1, MNIST


def load_generator(checkpoint, backend_name: str | None = None):
    """``(generator, config, checkpoint path)`` rebuilt from a run folder or its checkpoint.npz, in eval mode.

    A run that kept a weight average of G (``--ema``) samples with the averaged weights, as its own pictures and
    quality numbers did; otherwise G's own weights are used."""
    ckpt = load_checkpoint(checkpoint)
    cfg = ckpt["config"]
    missing = [k for k in ("arch", "data_dim", "noise_dim", "pack", "data_kind", "dataset") if k not in cfg]
    if missing:
        raise CheckpointError(f"checkpoint {ckpt['path']}: its config lacks {missing}; it was not written by "
                              "`minigan train`")
    G, _ = models.build_models(cfg["arch"], cfg["data_dim"], rng=0, noise_dim=cfg["noise_dim"], pack=cfg["pack"])
    check_weight_average(ckpt, cfg.get("ema"))  # configs from before weight averaging have no "ema": none kept
    averaged = {k: v for k, v in ckpt["G_ema"].items() if k != "updates"}
    try:
        G.load_state_dict(averaged or ckpt["G"])
    except ValueError as err:
        raise CheckpointError(f"checkpoint {ckpt['path']}: the generator's weights do not fit its {cfg['arch']} "
                              f"architecture: {err}") from None
    return G.to(backend.resolve(backend_name)).eval(), cfg, ckpt["path"]  # eval: batch norm's running statistics


def generate_samples(G, cfg, n: int, seed: int = 0, batch: int = 2500) -> np.ndarray:
    """n samples in the data's own scale: images as (n, 784) intensities in [0, 1], 2-D points as they are."""
    rng = np.random.default_rng(seed)
    where = backend.backend_of(G.params()[0].data)
    chunks = []
    for start in range(0, n, batch):
        z = rng.standard_normal((min(batch, n - start), cfg["noise_dim"]), dtype=np.float32)
        chunks.append(backend.to_numpy(G.forward(backend.to_device(z, where))))
    x = np.concatenate(chunks)  # (n, d)
    if cfg["data_kind"] == "image":
        x = np.clip((x + 1) / 2 if cfg["data_scale"] == "tanh" else x, 0, 1)
    return x.astype(np.float32)


def evaluate_run(run, n: int | None = None, seed: int = 0, data_dir=None, backend_name: str | None = None,
                 parzen: bool = True, quiet: bool = False) -> dict:
    """Measure the generator saved in ``run``; print a table and write ``eval.json`` beside the checkpoint."""
    G, cfg, path = load_generator(run, backend_name)
    dataset = cfg["dataset"]
    if cfg["data_kind"] == "2d":
        ds = data.get_dataset(dataset)
        if ds.modes is None:
            raise ValueError(f"{dataset} has no discrete modes to count; evaluate works on ring8 and grid25")
        x = generate_samples(G, cfg, n or 2500, seed)
        result = metrics.toy_metrics(x, ds.modes, ds.sigma)
        rows = {f"this run (step {load_checkpoint(path)['step']})": result}
    else:
        if dataset not in ("digits", "mnist"):
            raise ValueError(f"the image metrics use an MNIST classifier; they mean nothing for {dataset}")
        x = generate_samples(G, cfg, n or 10_000, seed)
        train, _ = data.load_mnist("train", data_dir=data_dir)
        test, _ = data.load_mnist("test", data_dir=data_dir)
        to01 = lambda a: a.reshape(len(a), -1).astype(np.float32) / np.float32(255)  # noqa: E731
        result = metrics.image_metrics(x, real_test01=to01(test), real_train01=to01(train), parzen=parzen)
        ceiling = metrics.real_ceiling(data_dir, parzen=parzen)
        rows = {f"this run (step {load_checkpoint(path)['step']})": result, "real data (ceiling)": ceiling}
        if parzen:
            rows["Goodfellow et al. 2014"] = GOODFELLOW_PARZEN
        result = dict(result, real_ceiling=ceiling)
    result.update(checkpoint=str(path), seed=seed, dataset=dataset, arch=cfg["arch"])
    out = Path(path).parent / "eval.json"
    atomic_write(out, lambda f: f.write(json.dumps(result, indent=1).encode()))
    if not quiet:
        print(metrics.format_table(rows))
        print(f"\nwrote {out}")
    return result
