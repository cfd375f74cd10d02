"""Pictures of a run: sample grids, 2-D scatter plots against the true modes, and loss curves.

Figures are drawn with Matplotlib's object API on an Agg canvas (no pyplot, no global backend change, no
display needed) and written atomically, so a half-written PNG is never left behind. Arrays may live on the GPU:
they are copied to the host with ``backend.to_numpy`` (CuPy refuses the implicit ``np.asarray``).
"""

from __future__ import annotations

import io

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .backend import to_numpy
from .checkpoint import atomic_write


def image_grid(images, ncols: int | None = None, pad: int = 2) -> np.ndarray:
    """Tile ``(n, h, w)`` images in [0, 1] into one ``(H, W)`` array, ``pad`` pixels of faint ink between them."""
    images = np.clip(to_numpy(images).astype(np.float32, copy=False), 0, 1)  # a device array is copied explicitly
    n, h, w = images.shape
    ncols = ncols or int(np.ceil(np.sqrt(n)))
    nrows = int(np.ceil(n / ncols))
    grid = np.full((nrows * (h + pad) + pad, ncols * (w + pad) + pad), 0.15, dtype=np.float32)  # light gray gaps
    for k in range(n):
        r, c = divmod(k, ncols)
        grid[pad + r * (h + pad): pad + r * (h + pad) + h, pad + c * (w + pad): pad + c * (w + pad) + w] = images[k]
    return grid


def _save_figure(fig: Figure, path) -> None:
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    atomic_write(path, lambda f: f.write(buffer.getvalue()))


def save_image_grid(images, path, scale: int = 3, title: str | None = None) -> None:
    """Write ``(n, h, w)`` images in [0, 1] as one grid PNG, each pixel drawn ``scale`` times larger."""
    grid = image_grid(images)
    fig = Figure(figsize=(grid.shape[1] * scale / 100, grid.shape[0] * scale / 100 + (0.3 if title else 0)), dpi=100)
    ax = fig.add_axes((0, 0, 1, 1 if not title else grid.shape[0] * scale / (grid.shape[0] * scale + 30)))
    ax.imshow(1 - grid, cmap="gray", vmin=0, vmax=1, interpolation="nearest")  # dark digits on white paper
    ax.set_axis_off()
    if title:
        fig.suptitle(title, fontsize=9, y=0.995)
    _save_figure(fig, path)


def save_scatter(samples, path, modes=None, title: str | None = None, limit: float | None = None) -> None:
    """Scatter 2-D samples, with the true mode centres as red crosses when given."""
    samples = to_numpy(samples)  # np.asarray would refuse (CuPy) a device array
    modes = None if modes is None else to_numpy(modes)
    fig = Figure(figsize=(4.5, 4.5), dpi=100)
    ax = fig.add_subplot()
    ax.scatter(samples[:, 0], samples[:, 1], s=3, alpha=0.5, color="tab:blue", label="generated")
    if modes is not None:
        ax.scatter(modes[:, 0], modes[:, 1], s=40, marker="x", color="tab:red", label="true modes")
        limit = limit or float(np.abs(modes).max()) * 1.5
    if limit:
        ax.set_xlim(-limit, limit)
        ax.set_ylim(-limit, limit)
    ax.set_aspect("equal")
    ax.legend(loc="upper right", fontsize=7)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    _save_figure(fig, path)


def save_losses(rows, path) -> None:
    """Panels over training steps: both losses; the discriminator's mean outputs D(x), D(G(z)); the gradient norms
    of G and D (log scale), when logged; the logged quality (modes covered, or MNIST score and confident %), when
    logged."""
    rows = [r for r in rows if "d_loss" in r]
    steps = [r["step"] for r in rows]
    quality = [r for r in rows if any(k in r for k in ("modes_covered", "mnist_score"))]
    norms = [r for r in rows if "g_grad_norm" in r]
    panels = 2 + bool(norms) + bool(quality)
    fig = Figure(figsize=(8, 1.5 + 1.5 * panels), dpi=100)
    axes = fig.subplots(panels, 1, sharex=True)
    axes[0].plot(steps, [r["d_loss"] for r in rows], label="D loss  $L_D$")
    axes[0].plot(steps, [r["g_loss"] for r in rows], label="G loss  $L_G$")
    axes[0].set_ylabel("loss")
    axes[0].legend(fontsize=8)
    axes[1].plot(steps, [r["d_real"] for r in rows], label="D(x), real")
    axes[1].plot(steps, [r["d_fake"] for r in rows], label="D(G(z)), fake")
    axes[1].axhline(0.5, color="gray", lw=0.5, ls="--")
    axes[1].set_ylim(0, 1)
    axes[1].set_ylabel("mean D output")
    axes[1].legend(fontsize=8)
    if norms:
        ax = axes[2]
        for key, label in (("g_grad_norm", "G"), ("d_grad_norm", "D")):
            ax.plot([r["step"] for r in norms], [max(r[key], 1e-12) for r in norms], label=label)
        ax.set_yscale("log")
        ax.set_ylabel("gradient norm")
        ax.legend(fontsize=8)
    if quality:
        key = "modes_covered" if "modes_covered" in quality[0] else "mnist_score"
        axes[-1].plot([r["step"] for r in quality], [r[key] for r in quality], "o-", color="tab:green")
        axes[-1].set_ylabel(key.replace("_", " "), color="tab:green")
        confident = [r for r in quality if "confident" in r]
        if confident:  # image runs: how often the classifier reads a sample confidently, on its own axis
            right = axes[-1].twinx()
            right.plot([r["step"] for r in confident], [100 * r["confident"] for r in confident], "s--",
                       color="tab:purple")
            right.set_ylim(0, 100)
            right.set_ylabel("confident %", color="tab:purple")
    axes[-1].set_xlabel("generator step")
    fig.tight_layout()
    _save_figure(fig, path)
