"""The training run behind ``minigan train``: settings, the run folder, logging, pictures, checkpoints, resume.

The GAN step itself lives in ``minigan.gan``; this module only orchestrates. A run folder holds

* ``config.json``  -- every setting, the seed, library versions and the backend;
* ``metrics.jsonl`` -- one JSON row per logged step (losses, D outputs, speed, quality at sample steps);
* ``samples/step_XXXXXX.png`` -- samples from one *fixed* noise batch, so the pictures show G changing, not z
  (drawn, like the quality numbers, by the exponential moving average of G's weights when ``ema`` is on);
* ``samples.png``, ``losses.png`` -- the final picture and the curves;
* ``checkpoint.npz`` -- everything needed to continue bit for bit (see ``minigan.checkpoint``).

Exact resume works because nothing random is hidden: the data batch of step k is a pure function of
``(seed, k)`` (``Dataset.batch``), and the noise generator's state is saved with the weights and Adam moments.
"""

from __future__ import annotations

import json
import math
import platform
import signal
import sys
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from . import __version__, backend, data, models, optim, plot
from .checkpoint import (CheckpointError, NonFiniteWeights, atomic_write, check_weight_average, load_checkpoint,
                         save_checkpoint)
from .ema import WeightAverage
from .gan import GAN

CHECKPOINT = "checkpoint.npz"


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite; the last good checkpoint is kept."""


@dataclass
class TrainConfig:
    """Every setting of a run. ``None`` means "the default for this dataset" (see ``defaults_for``)."""

    dataset: str = "digits"
    arch: str | None = None
    steps: int | None = None
    epochs: float | None = None
    batch_size: int | None = None
    lr_g: float | None = None
    lr_d: float | None = None
    beta1: float | None = None
    beta2: float = 0.999
    lr_decay: str | None = None
    ema: float | None = None
    loss: str = "nonsaturating"
    d_steps: int = 1
    label_smoothing: float = 0.0
    instance_noise: float = 0.0
    pack: int | None = None
    noise_dim: int | None = None
    backend: str = "numpy"
    seed: int = 0
    sample_every: int | None = None
    log_every: int = 50
    data_dir: str | None = None


#: Defaults per kind of data. Images: the ``mlp`` GAN with DCGAN's beta1 and four times its learning rate (8e-4, in
#: ``ARCH_DEFAULTS``), sized to finish in about three minutes on a 2-core machine (README); the linear decay over the
#: second half takes the salt-and-pepper noise out of the digits, and the samples come from the moving average of
#: G's weights (decay 0.9995: about the last 2,000 steps), which the classifier reads confidently 3-4 points more
#: often than the last step's G on every seed measured. At a fixed budget of 7,000 steps the learning rate counted
#: most: 72% confident at 4e-4, 75% at 6e-4 and 8e-4; 1e-3 reads about as well through the average but its live G
#: degrades (benchmarks/quality/RECIPE.md).
#: 2-D: minigan's best configuration for the PacGAN ring/grid benchmark -- the narrow ``toy`` networks, packing
#: pairs against mode collapse, a high learning rate to find the modes, then a linear decay to settle on them
#: (benchmarks/quality/RESULTS.md has the curves); about 3 minutes on one core.
DEFAULTS = {
    "image": dict(arch="mlp", steps=7000, batch_size=64, lr_g=2e-4, lr_d=2e-4, beta1=0.5, lr_decay="linear", ema=0.0,
                  pack=1, sample_every=1000),
    "2d": dict(arch="toy", steps=20000, batch_size=512, lr_g=1e-3, lr_d=1e-3, beta1=0.5, lr_decay="linear", ema=0.0,
               pack=2, sample_every=1000),
}


#: Defaults of one architecture on one kind of data that differ from the kind's. ``mlp`` on images: the learning rate
#: and weight average its recipe was tuned with (the other image architectures keep DCGAN's 2e-4 and no average,
#: the settings their rows were measured with; ``--ema 0.9995`` turns the average on for them).
#: ``dcgan``: a step costs ~4x an ``mlp`` step (~90 ms at batch 64 on one core); its strokes are blotchy at 2,000
#: steps (3 minutes) and clean and connected by 6,000 (MNIST_RESULTS.md, last section).
ARCH_DEFAULTS = {("image", "mlp"): dict(lr_g=8e-4, lr_d=8e-4, ema=0.9995),
                 ("image", "dcgan"): dict(steps=6000, sample_every=1000)}


# Settings that define the run; a resumed run must keep them (or it would not continue the same run).
_FIXED_ON_RESUME = ("dataset", "arch", "batch_size", "lr_g", "lr_d", "beta1", "beta2", "lr_decay", "ema", "loss",
                    "d_steps", "label_smoothing", "instance_noise", "pack", "noise_dim", "seed")


def defaults_of(kind: str, arch: str | None = None) -> dict:
    """The default settings for a kind of data (``"image"``, ``"2d"``) and an architecture (None: the kind's own):
    ``DEFAULTS[kind]`` with that architecture's ``ARCH_DEFAULTS`` on top."""
    arch = arch or DEFAULTS[kind]["arch"]
    return {**DEFAULTS[kind], "arch": arch, **ARCH_DEFAULTS.get((kind, arch), {})}


def defaults_for(config: TrainConfig, dataset: data.Dataset) -> TrainConfig:
    """Fill the ``None`` settings from ``defaults_of`` the dataset's kind; turn ``epochs`` into ``steps``."""
    filled = asdict(config)
    for key, value in defaults_of(dataset.kind, filled["arch"]).items():
        if filled.get(key) is None:
            filled[key] = value
    if filled["noise_dim"] is None:
        filled["noise_dim"] = models.NOISE_DIM[filled["arch"]]
    if config.epochs is not None:
        if dataset.num_examples is None:
            raise ValueError(f"--epochs needs a finite dataset; {dataset.name} is sampled fresh: use --steps")
        per_epoch = dataset.batches_per_epoch(filled["batch_size"])
        filled["steps"] = max(1, math.ceil(config.epochs * per_epoch / filled["d_steps"]))
    return TrainConfig(**filled)


LR_DECAYS = ("none", "linear")


def lr_factor(step: int, total: int, decay: str) -> float:
    """The learning-rate multiplier at ``step`` (0-based) of ``total``.

    ``"none"``: 1 throughout. ``"linear"``: ``min(1, 2 (1 - step / total))``: 1 for the first half, then a straight
    line towards 0, which it would reach at step ``total``, one past the end: the last step (``total - 1``) runs at
    ``2 / total`` of the base rate, so no step is spent at a learning rate of 0. The small late steps let the
    generator settle onto sharp modes instead of orbiting them. A pure function of the step, so resuming an
    interrupted run keeps the schedule (extending ``--steps`` stretches what is left of it).
    """
    if decay == "none":
        return 1.0
    if decay == "linear":
        return min(1.0, 2.0 * (1.0 - step / total))
    raise ValueError(f"unknown lr decay {decay!r}: choose one of {', '.join(LR_DECAYS)}")


def cpu_model() -> str:
    """The processor's name as /proc/cpuinfo gives it (else what ``platform`` knows), for benchmark reports."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def versions(backend_name: str = "numpy") -> dict:
    out = {"minigan": __version__, "numpy": np.__version__, "python": platform.python_version()}
    if backend_name == "cupy":
        out["cupy"] = backend.get_xp("cupy").__version__
    return out


class Run:
    """One training run in one folder: builds everything from a config, trains, saves, resumes."""

    def __init__(self, config: TrainConfig, out: Path, progress: bool = True):
        self.backend = backend.resolve(config.backend)
        probe = data.get_dataset(config.dataset, data_dir=config.data_dir, seed=config.seed)
        config = defaults_for(config, probe)
        scale = models.OUTPUT_SCALE[config.arch]
        if probe.kind == "image" and scale is None:
            raise ValueError(f"--arch {config.arch} is for 2-D data; use mlp, seed or dcgan for {config.dataset}")
        if probe.kind == "2d" and scale is not None:
            raise ValueError(f"--arch {config.arch} is for images; use toy or pacgan for {config.dataset}")
        self.dataset = probe if probe.kind == "2d" or scale == probe.scale else data.get_dataset(
            config.dataset, data_dir=config.data_dir, scale=scale, seed=config.seed)
        lr_factor(0, 1, config.lr_decay)  # refuse an unknown schedule before any work
        self.config, self.out, self.progress = config, Path(out), progress
        G, D = models.build_models(config.arch, self.dataset.dim, rng=np.random.default_rng([config.seed, 0]),
                                   noise_dim=config.noise_dim, pack=config.pack)
        G.to(self.backend), D.to(self.backend)
        betas = (config.beta1, config.beta2)
        self.gan = GAN(G, D, optim.Adam(G.params(), config.lr_g, betas), optim.Adam(D.params(), config.lr_d, betas),
                       config.noise_dim, loss=config.loss, rng=np.random.default_rng([config.seed, 1]),
                       d_steps=config.d_steps, label_smoothing=config.label_smoothing,
                       instance_noise=config.instance_noise, pack=config.pack)
        # Pictures and quality numbers come from the weight average of G when there is one (minigan.ema).
        self.ema = WeightAverage(G, config.ema) if config.ema else None
        fixed = np.random.default_rng([config.seed, 2]).standard_normal((64, config.noise_dim), dtype=np.float32)
        self.fixed_z = backend.to_device(fixed, self.backend)  # the same 64 z's for every sample grid
        self.step = 0
        self.rows: list[dict] = []
        self._classifier = None  # loaded on first use, for the quality numbers of image runs

    # ------------------------------------------------------------------ files
    def saved_config(self) -> dict:
        return dict(asdict(self.config), backend=self.backend, versions=versions(self.backend),
                    data_scale=self.dataset.scale, data_kind=self.dataset.kind, data_dim=self.dataset.dim)

    def save_checkpoint(self) -> Path:
        """Write checkpoint.npz -- unless a weight is NaN or infinite: then TrainingDiverged, and the last good file
        stays. On a GPU the losses are read only at logging steps, so a sample step or Ctrl-C between them may find
        weights that diverged unseen; the weights themselves are checked, on the host copy the file is made of."""
        path = self.out / CHECKPOINT
        try:
            save_checkpoint(path, G=self.gan.G, D=self.gan.D, g_optimizer=self.gan.g_optimizer,
                            d_optimizer=self.gan.d_optimizer, step=self.step, rng=self.gan.rng,
                            config=self.saved_config(), G_ema=self.ema)
        except NonFiniteWeights as err:
            kept = f"the last good checkpoint {path} is kept" if path.exists() else "no checkpoint had been written"
            raise TrainingDiverged(
                f"training stopped at step {self.step}: {err}, so no checkpoint was saved; {kept}. Likely cause: a "
                "learning rate too high for this model (try lower --lr-d/--lr-g).") from None
        return path

    def restore(self, ckpt: dict) -> None:
        """Load weights, optimizer moments, G's weight average, step and noise state from a loaded checkpoint."""
        check_weight_average(ckpt, self.config.ema)
        try:
            self.gan.G.load_state_dict(ckpt["G"])
            self.gan.D.load_state_dict(ckpt["D"])
            self.gan.g_optimizer.load_state_dict(ckpt["g_opt"])
            self.gan.d_optimizer.load_state_dict(ckpt["d_opt"])
            if self.ema is not None:
                self.ema.load_state_dict(ckpt["G_ema"])
        except ValueError as err:
            raise CheckpointError(f"checkpoint {ckpt['path']} does not fit this run's models: {err}") from None
        self.gan.rng = ckpt["rng"]
        self.step = ckpt["step"]
        rows = _read_jsonl(self.out / "metrics.jsonl")
        self.rows = [r for r in rows if r.get("step", 0) <= self.step]  # drop rows logged after the checkpoint
        self._write_metrics()

    def _write_metrics(self) -> None:
        text = "".join(json.dumps(r) + "\n" for r in self.rows)
        atomic_write(self.out / "metrics.jsonl", lambda f: f.write(text.encode()))

    def _log(self, row: dict) -> None:
        self.rows.append(row)
        with open(self.out / "metrics.jsonl", "a") as f:
            f.write(json.dumps(row) + "\n")

    # ------------------------------------------------------------------ pictures and quality
    def samples_host(self, z=None) -> np.ndarray:
        """Samples for pictures and quality numbers: from the weight average of G when the run keeps one, else from
        G itself. In eval mode: batch norm uses its running statistics, so a sample depends on its own noise only,
        and drawing pictures never changes the training state."""
        z = self.fixed_z if z is None else z
        if self.ema is not None:
            return backend.to_numpy(self.ema.generate(z))
        G = self.gan.G
        G.eval()
        try:
            return backend.to_numpy(self.gan.generate(z=z))
        finally:
            G.train()

    def save_samples(self, path, title: str) -> None:
        x = self.samples_host()
        if self.dataset.kind == "image":
            plot.save_image_grid(self.dataset.to_images(x), path, title=title)
        else:
            more = self.samples_host(backend.to_device(
                np.random.default_rng([self.config.seed, 3]).standard_normal((2500, self.config.noise_dim),
                                                                              dtype=np.float32), self.backend))
            plot.save_scatter(more, path, modes=self.dataset.modes, title=title)

    def quality(self) -> dict:
        """Cheap quality numbers for the log: mode coverage (2-D), or for images the classes covered, class KL,
        MNIST score and the fraction of samples the classifier reads confidently (``metrics.confident_fraction``)."""
        from . import metrics
        rng = np.random.default_rng([self.config.seed, 4])
        if self.dataset.kind == "2d" and self.dataset.modes is not None:
            z = rng.standard_normal((2500, self.config.noise_dim), dtype=np.float32)
            x = self.samples_host(backend.to_device(z, self.backend))
            m = metrics.toy_metrics(x, self.dataset.modes, self.dataset.sigma)
            return {k: m[k] for k in ("modes_covered", "high_quality", "reverse_kl")}
        if self.dataset.kind == "image" and self.dataset.name in ("digits", "mnist"):
            z = rng.standard_normal((1000, self.config.noise_dim), dtype=np.float32)
            x = self.samples_host(backend.to_device(z, self.backend))
            images01 = self.dataset.to_images(x).reshape(len(x), -1).astype(np.float32)
            if self._classifier is None:
                self._classifier = metrics.load_classifier().to(self.backend)
            probs = self._classifier.probs(images01)
            counts = metrics.class_histogram(probs.argmax(axis=1))
            return {"classes_covered": metrics.classes_covered(counts),
                    "class_kl": metrics.histogram_kl_to_uniform(counts), "mnist_score": metrics.mnist_score(probs),
                    "confident": metrics.confident_fraction(probs)}
        return {}

    # ------------------------------------------------------------------ the loop
    def train(self) -> Path:
        cfg = self.config
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "samples").mkdir(exist_ok=True)
        atomic_write(self.out / "config.json", lambda f: f.write(json.dumps(self.saved_config(), indent=2).encode()))
        if self.step == 0:
            self._write_metrics()
        stop = _StopFlag()
        bar = _progress(self.step, cfg.steps, self.progress)
        on_gpu = self.backend == "cupy"
        t_last, s_last = time.perf_counter(), self.step
        try:
            with stop:
                while self.step < cfg.steps and not stop.requested:
                    k = self.step
                    factor = lr_factor(k, cfg.steps, cfg.lr_decay)
                    self.gan.g_optimizer.lr, self.gan.d_optimizer.lr = cfg.lr_g * factor, cfg.lr_d * factor
                    real = [backend.to_device(self.dataset.batch(k * cfg.d_steps + j, cfg.batch_size), self.backend)
                            if on_gpu else self.dataset.batch(k * cfg.d_steps + j, cfg.batch_size)
                            for j in range(cfg.d_steps)]
                    stats = self.gan.train_step(real, to_host=not on_gpu)
                    if self.ema is not None:
                        self.ema.update(self.gan.G)
                    logging = (k + 1) % cfg.log_every == 0 or k + 1 == cfg.steps
                    if logging or not on_gpu:  # on a GPU, read losses back only when logging
                        stats = {key: float(backend.to_numpy(v)) for key, v in stats.items()}
                        if not all(math.isfinite(v) for v in stats.values()):
                            raise TrainingDiverged(self._diverged_message(k + 1, stats))
                    self.step = k + 1
                    bar.update(1)
                    if logging:
                        now = time.perf_counter()
                        speed = (self.step - s_last) / max(now - t_last, 1e-9)
                        t_last, s_last = now, self.step
                        row = dict(step=self.step, **stats, **self.grad_norms(), steps_per_s=round(speed, 2))
                        if self.step % cfg.sample_every == 0 or self.step == cfg.steps:
                            row.update(self.quality())
                            self.save_samples(self.out / "samples" / f"step_{self.step:06d}.png", f"step {self.step}")
                            self.save_checkpoint()
                        self._log(row)
                        bar.set_postfix(d_loss=f"{stats['d_loss']:.3f}", g_loss=f"{stats['g_loss']:.3f}",
                                        Dx=f"{stats['d_real']:.2f}", DGz=f"{stats['d_fake']:.2f}")
                    elif self.step % cfg.sample_every == 0:
                        self.save_samples(self.out / "samples" / f"step_{self.step:06d}.png", f"step {self.step}")
                        self.save_checkpoint()
        finally:
            bar.close()
        self.save_checkpoint()
        self.save_samples(self.out / "samples.png", f"{cfg.dataset}, {cfg.arch}, step {self.step}")
        plot.save_losses(self.rows, self.out / "losses.png")
        if stop.requested:
            print(f"\nInterrupted: saved {self.out / CHECKPOINT} at step {self.step}. Continue with:\n"
                  f"  minigan train --resume {self.out} --steps {cfg.steps}", file=sys.stderr)
            raise KeyboardInterrupt
        return self.out

    def grad_norms(self) -> dict:
        """``g_grad_norm`` / ``d_grad_norm``: the L2 norm of all of G's (D's) parameter gradients of the last step."""
        return {f"{who}_grad_norm": float(math.sqrt(sum(v * v for v in model.grad_norms().values())))
                for who, model in (("g", self.gan.G), ("d", self.gan.D))}

    def _diverged_message(self, step: int, stats: dict) -> str:
        last = self.out / CHECKPOINT
        kept = f"the last good checkpoint {last} is kept" if last.exists() else "no checkpoint had been written yet"
        values = ", ".join(f"{k}={v}" for k, v in stats.items())
        norms = [(v, f"{who} {name}") for who, model in (("G", self.gan.G), ("D", self.gan.D))
                 for name, v in model.grad_norms().items()]
        largest = ", ".join(f"{where} {v:.3g}" for v, where in sorted(norms, key=lambda t: -abs(t[0])
                                                                       if math.isfinite(t[0]) else -math.inf)[:3])
        return (f"training stopped at step {step}: a loss is not finite ({values}). Largest gradient norms of the "
                f"step: {largest or 'none'}. Likely cause: a learning rate too high for this model (try lower "
                f"--lr-d/--lr-g) or the discriminator overpowering the generator; {kept}.")


class _StopFlag:
    """First Ctrl-C: finish the current step, save, stop. A second Ctrl-C stops at once."""

    def __init__(self):
        self.requested = False
        self._previous = None

    def _handler(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("\nCtrl-C: finishing this step and saving a checkpoint (Ctrl-C again to abort)...", file=sys.stderr)

    def __enter__(self):
        try:
            self._previous = signal.signal(signal.SIGINT, self._handler)
        except ValueError:  # not the main thread: no handler, Ctrl-C behaves as usual
            self._previous = None
        return self

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        return False


class _NoBar:
    def update(self, n): ...
    def set_postfix(self, **kw): ...
    def close(self): ...


def _progress(start: int, total: int, enabled: bool):
    if not enabled:
        return _NoBar()
    from tqdm import tqdm  # progress bar with live postfix and steps/s

    return tqdm(total=total, initial=start, unit="step", dynamic_ncols=True, smoothing=0.1)


def _read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            break  # a line cut by a crash: everything after it is untrustworthy
    return rows


def train(config: TrainConfig, out, progress: bool = True) -> Path:
    """Train a new run into folder ``out``."""
    return Run(config, out, progress).train()


def resume(run_dir, overrides: dict | None = None, progress: bool = True) -> Path:
    """Continue the run in ``run_dir`` from its checkpoint, e.g. up to a larger ``steps``.

    Only ``steps``/``epochs``, ``sample_every``, ``log_every``, ``backend`` and ``data_dir`` may change; the other
    settings define the run.
    """
    run_dir = Path(run_dir)
    ckpt = load_checkpoint(run_dir / CHECKPOINT)
    saved = {f.name: ckpt["config"].get(f.name) for f in fields(TrainConfig)}
    if "ema" not in ckpt["config"]:
        saved["ema"] = 0.0  # written before minigan had weight averaging: the run was trained without one
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        if key in _FIXED_ON_RESUME and value != saved[key]:
            raise ValueError(f"run {run_dir} was trained with {key}={saved[key]!r}; resuming with {value!r} would "
                             "not continue the same run. Drop that option, or start a new run with --out.")
        saved[key] = value
        if key == "steps":
            saved["epochs"] = None  # an explicit --steps replaces the saved --epochs
    run = Run(TrainConfig(**saved), run_dir, progress)
    run.restore(ckpt)
    if run.step >= run.config.steps:
        print(f"run {run_dir} is already at step {run.step} of {run.config.steps}; pass a larger --steps to continue.",
              file=sys.stderr)
    return run.train()
