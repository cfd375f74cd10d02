"""Checkpoints: one ``.npz`` of plain arrays (no pickle), written atomically, read with ``allow_pickle=False``.

Layout: ``G/<param>``, ``D/<param>`` (module state dicts), ``g_opt/<key>``, ``d_opt/<key>`` (optimizer state
dicts), ``step``, ``rng/noise`` (the noise generator's state as uint64 words) and ``config`` (the run's settings
as UTF-8 JSON bytes); with a weight average of G (``--ema``), also ``G_ema/<param>`` and ``G_ema/updates``
(``minigan.ema.WeightAverage.state_dict``). Everything a run needs to continue bit for bit is in the file.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

_MASK64 = (1 << 64) - 1


class CheckpointError(ValueError):
    """A checkpoint file is missing, corrupt, or does not fit the model it is loaded into."""


def rng_state_to_array(rng: np.random.Generator) -> np.ndarray:
    """PCG64 state (two 128-bit integers and a buffered 32-bit word) as 6 uint64 words."""
    state = rng.bit_generator.state
    if state["bit_generator"] != "PCG64":
        raise ValueError(f"only PCG64 generators (numpy.random.default_rng) can be saved, not {state['bit_generator']}")
    s, inc = state["state"]["state"], state["state"]["inc"]
    words = [s >> 64, s & _MASK64, inc >> 64, inc & _MASK64, state["has_uint32"], state["uinteger"]]
    return np.array(words, dtype=np.uint64)


def rng_from_array(words) -> np.random.Generator:
    w = [int(v) for v in np.asarray(words, dtype=np.uint64)]
    if len(w) != 6:
        raise CheckpointError(f"saved generator state has {len(w)} words, expected 6")
    rng = np.random.default_rng()
    rng.bit_generator.state = {"bit_generator": "PCG64", "state": {"state": (w[0] << 64) | w[1], "inc": (w[2] << 64) | w[3]},
                               "has_uint32": w[4], "uinteger": w[5]}
    return rng


def atomic_write(path, write) -> None:
    """Call ``write(file_object)`` on a temporary file beside ``path``, then rename it into place.

    A crash or Ctrl-C mid-write leaves the previous file intact: readers see the old or the new file, never half.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes owner-only files; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class NonFiniteWeights(ValueError):
    """A model holds a NaN or an infinity: such a checkpoint is never written. ``.names``: e.g. ``["G 0.W"]``."""

    def __init__(self, names):
        super().__init__(f"non-finite weights in {', '.join(names[:4])}{' ...' if len(names) > 4 else ''}")
        self.names = names


def save_checkpoint(path, *, G, D, g_optimizer, d_optimizer, step: int, rng, config: dict, G_ema=None) -> None:
    """Write every array of a run into ``path`` atomically; raise NonFiniteWeights (nothing written) if G, D or
    G's weight average ``G_ema`` (a ``WeightAverage``, optional) holds a NaN or an infinity. The weights are checked
    on the host copies the file is made of."""
    arrays = {f"G/{k}": v for k, v in G.state_dict().items()}
    arrays.update({f"D/{k}": v for k, v in D.state_dict().items()})
    if G_ema is not None:
        arrays.update({f"G_ema/{k}": v for k, v in G_ema.state_dict().items()})
    bad = [key.replace("/", " ", 1) for key, v in arrays.items() if v.dtype.kind == "f" and not np.isfinite(v).all()]
    if bad:
        raise NonFiniteWeights(bad)
    arrays.update({f"g_opt/{k}": v for k, v in g_optimizer.state_dict().items()})
    arrays.update({f"d_opt/{k}": v for k, v in d_optimizer.state_dict().items()})
    arrays["step"] = np.asarray(step, dtype=np.int64)
    arrays["rng/noise"] = rng_state_to_array(rng)
    arrays["config"] = np.frombuffer(json.dumps(config, sort_keys=True).encode(), dtype=np.uint8)
    atomic_write(path, lambda f: np.savez(f, **arrays))


def load_checkpoint(path) -> dict:
    """The checkpoint's arrays, grouped: ``{"G": {...}, "D": {...}, "g_opt": ..., "d_opt": ..., "G_ema": {...},
    "step": int, "rng": Generator, "config": dict}`` (``G_ema`` is empty for a run without a weight average). Raises CheckpointError saying what is wrong and what to do."""
    path = Path(path)
    if path.is_dir():
        path = path / "checkpoint.npz"
    if not path.exists():
        raise CheckpointError(f"no checkpoint at {path}: pass a run folder made by `minigan train` or its "
                              "checkpoint.npz")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except ValueError as err:
        if "Object arrays" not in str(err):  # a file that is not an npz at all also mentions allow_pickle
            raise CheckpointError(f"checkpoint {path} is corrupt or truncated (ValueError: {err}). It cannot be "
                                  "resumed; delete it and start the run again, or use a copy you kept.") from None
        raise CheckpointError(
            f"checkpoint {path} holds a pickled (object) array, which minigan never loads: unpickling can run "
            "arbitrary code. A minigan checkpoint holds plain numeric arrays only; this file was not written by "
            "`minigan train`, or was tampered with."
        ) from None
    except (zipfile.BadZipFile, EOFError, OSError) as err:
        raise CheckpointError(
            f"checkpoint {path} is corrupt or truncated ({type(err).__name__}: {err}). It cannot be resumed; "
            "delete it and start the run again, or use a copy you kept."
        ) from None
    missing = [k for k in ("step", "rng/noise", "config") if k not in arrays]
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks {missing}: it was not written by `minigan train`")
    groups = {"G": {}, "D": {}, "g_opt": {}, "d_opt": {}, "G_ema": {}}
    for key, value in arrays.items():
        head, _, rest = key.partition("/")
        if head in groups:
            groups[head][rest] = value
    try:
        config = json.loads(arrays["config"].tobytes().decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"checkpoint {path} has an unreadable config ({err})") from None
    if not isinstance(config, dict):
        raise CheckpointError(f"checkpoint {path}: config must be a JSON object of settings, got "
                              f"{type(config).__name__}")
    if arrays["step"].shape != () or arrays["step"].dtype.kind not in "iu" or int(arrays["step"]) < 0:
        raise CheckpointError(f"checkpoint {path}: step must be one non-negative integer, got "
                              f"{arrays['step'].dtype} of shape {arrays['step'].shape}")
    return dict(groups, step=int(arrays["step"]), rng=rng_from_array(arrays["rng/noise"]), config=config, path=path)


def check_weight_average(ckpt: dict, ema) -> None:
    """A loaded checkpoint holds G's weight average (``G_ema/...``) exactly when its run keeps one (``ema`` > 0).

    Either mismatch means the file was altered: resuming or sampling it would silently use other weights than the
    run's own pictures did."""
    if bool(ema) != bool(ckpt["G_ema"]):
        raise CheckpointError(f"checkpoint {ckpt['path']} {'lacks' if ema else 'holds'} a weight average of G "
                              f"(G_ema/...), but its config says ema={ema}: the file is inconsistent; use a copy you "
                              "kept, or start the run again")
