"""An exponential moving average (EMA) of a generator's weights, used to draw samples (Yazici et al., 2019).

A GAN's generator does not converge to a point: the two players chase each other, so the weights of any single
step carry that step's oscillation (in the pictures: digits that wobble between shapes, salt noise in the
background). Averaging the weights over the last few thousand steps cancels much of the oscillation and keeps
what they agree on. Training itself is unchanged: G and D train on the live weights; only the pictures and the
quality numbers use the average (Yazici et al., "The unusual effectiveness of averaging in GAN training",
ICLR 2019).

With decay ``beta`` the average after step ``t`` weights the live weights ``w_1 .. w_t`` of the steps so far as

    avg_t = sum_i (1 - beta) beta^(t - i) w_i / (1 - beta^t)

an exponential average whose weights sum to 1 (the division by ``1 - beta^t`` is the same bias correction Adam
applies to its moments): it never mixes in the random initial weights, so a short run's average is already a
generator. Written as an update, with ``rate_t = (1 - beta) / (1 - beta^t)``:

    avg_t = avg_{t-1} + rate_t * (w_t - avg_{t-1})

``rate_1 = 1`` (the first average is ``w_1``) and ``rate_t -> 1 - beta`` as ``t`` grows: the average then remembers
about the last ``1 / (1 - beta)`` steps (1,000 for ``beta = 0.999``).

Batch norm's running mean and variance are averaged the same way as the weights, so the averaged generator
normalises with statistics that belong to averaged weights rather than to the last step's.
"""

from __future__ import annotations

import copy

import numpy as np

from . import kernels

#: Elements per block in ``_move_towards``: 32K float32 (128 KB), so the temporary stays in the core's cache.
BLOCK = 1 << 15


def _move_towards(avg, live, rate: float) -> None:
    """``avg += rate * (live - avg)`` in place; ``live`` is only read.

    On the host a large array is done one block of ``BLOCK`` elements at a time: the temporary ``live - avg`` of a
    block stays in cache instead of making a second pass over memory (the generator's 1.5 M weights are 6 MB), which
    makes the update about a quarter faster. Same arithmetic, element by element, as the whole-array form. With
    Numba, ``minigan.kernels.move_towards`` does that arithmetic in one compiled pass instead (equal bit for bit).
    """
    if kernels.move_towards(avg, live, rate):
        return
    flat_avg, flat_live = avg.reshape(-1), live.reshape(-1)  # views when contiguous
    if type(avg) is not np.ndarray or not (avg.flags.c_contiguous and live.flags.c_contiguous) or avg.size <= BLOCK:
        step = live - avg  # (same shape): a fresh array, the live weights are not touched
        step *= rate  # a Python float keeps float32 arrays float32
        avg += step
        return
    scratch = np.empty(BLOCK, dtype=avg.dtype)  # (BLOCK,)
    for start in range(0, avg.size, BLOCK):
        a, w = flat_avg[start:start + BLOCK], flat_live[start:start + BLOCK]  # (<= BLOCK,) views
        step = scratch[:len(a)]
        np.subtract(w, a, out=step)
        step *= rate
        a += step


class WeightAverage:
    """The EMA of ``model``'s parameters and buffers, held in ``self.model``: a copy of it that samples.

    Parameters
    ----------
    model : minigan Module
        The generator being trained. Its copy starts equal to it (and is replaced at the first ``update``).
    decay : float
        ``beta`` in (0, 1).

    Attributes
    ----------
    model : Module
        The averaged generator, always in eval mode; its parameters never get gradients.
    updates : int
        ``t``, the number of ``update`` calls so far (saved with a checkpoint; restored with ``load_state_dict``).
    """

    def __init__(self, model, decay: float):
        if not 0.0 < float(decay) < 1.0:
            raise ValueError(f"WeightAverage: decay must lie in (0, 1), got {decay!r} (0.999 averages about the last "
                             "1,000 steps)")
        self.decay = float(decay)
        self.model = copy.deepcopy(model).to().eval()  # .to(): drop the copied gradients and caches
        self.model.requires_grad_(False)
        self.updates = 0

    def rate(self, t: int) -> float:
        """``rate_t = (1 - beta) / (1 - beta^t)`` for the ``t``-th update (``t >= 1``)."""
        return (1.0 - self.decay) / (1.0 - self.decay ** t)

    def _links(self, model):
        """``(average's holder, attribute, live holder, attribute)`` for every parameter and buffer, matched by name.

        Walking both module trees costs ~0.5 ms, a few percent of a training step, so the links are made once per
        trained model and reused; the arrays themselves are looked up at each update (``load_state_dict`` may
        replace them). Like the optimizers, this assumes the model's layers do not change while it is averaged.
        """
        cached = getattr(self, "_linked", None)
        if cached is not None and cached[0] is model:
            return cached[1]
        own, links = dict(self.model.named_params()), []
        for name, p in model.named_params():
            if name not in own:
                raise ValueError(f"WeightAverage: {name} of the trained model does not match the averaged copy; "
                                 "average the model the WeightAverage was made from")
            links.append((own[name], "data", p, "data"))
        for name, _ in model.named_buffers():
            links.append((*self.model._owner_of(name), *model._owner_of(name)))
        self._linked = (model, links)
        return links

    def update(self, model) -> None:
        """One step of the average towards ``model``'s current weights: ``avg += rate_t * (w - avg)``, in place."""
        self.updates += 1
        rate = self.rate(self.updates)
        for holder, attr, live_holder, live_attr in self._links(model):
            avg, live = getattr(holder, attr), getattr(live_holder, live_attr)
            if avg.shape != live.shape:
                raise ValueError(f"WeightAverage: a {tuple(live.shape)} array of the trained model does not match "
                                 f"the averaged copy (shape {tuple(avg.shape)}); average the model the "
                                 "WeightAverage was made from")
            if self.updates == 1:
                avg[...] = live  # rate_1 = 1, exactly (avg + (w - avg) can differ from w in the last bit)
                continue
            _move_towards(avg, live, rate)

    def generate(self, z):
        """Samples of the averaged generator for noise ``z`` (n, noise_dim); nothing is kept for a backward pass."""
        x = self.model.forward(z)  # (n, data_dim)
        for m in self.model.modules():
            m._cache = None
        return x

    def state_dict(self) -> dict:
        """The averaged weights (host NumPy arrays, keyed like ``Module.state_dict``) and ``updates``."""
        return dict(self.model.state_dict(), updates=np.asarray(self.updates, dtype=np.int64))

    def load_state_dict(self, state) -> None:
        """Restore what ``state_dict`` gave: the averaged weights and the update count."""
        state = dict(state)
        if "updates" not in state:
            raise ValueError("WeightAverage state lacks 'updates' (the number of averaging steps)")
        updates = state.pop("updates")
        if updates.shape != () or updates.dtype.kind not in "iu" or int(updates) < 0:
            raise ValueError(f"WeightAverage state: updates must be one non-negative integer, got {updates!r}")
        self.model.load_state_dict(state)
        self.updates = int(updates)
