"""The CuPy path, run on every test run: on a real GPU when there is one, else on the strict stand-in
(tests/cupy_standin), which refuses implicit copies to the host and counts the explicit ones."""

import json
import subprocess
import sys

import numpy as np
import pytest

from minigan import backend, nn, optim, plot
from minigan.gan import GAN
from minigan.train import Run, TrainConfig

from conftest import CUPY_IS_STANDIN, standin_env

standin_only = pytest.mark.skipif(not CUPY_IS_STANDIN, reason="checks the stand-in itself; a real GPU is present")


@standin_only
def test_the_stand_in_keeps_cupys_rules():
    import cupy

    d = cupy.asarray(np.arange(6, dtype=np.float32).reshape(2, 3))
    for implicit in (lambda: np.asarray(d), lambda: np.array(d), lambda: np.exp(d), lambda: np.concatenate([d])):
        with pytest.raises(TypeError, match="Implicit conversion|does not support ufuncs"):
            implicit()
    for mixed in (lambda: d + np.ones(3, np.float32), lambda: np.ones(3, np.float32) * d,
                  lambda: cupy.maximum(d, np.zeros(3))):
        with pytest.raises(TypeError, match="Unsupported type"):
            mixed()
    assert isinstance(d.sum(), cupy.ndarray) and d.sum().shape == ()  # reductions stay on the device
    assert (d * np.float32(2) + np.array(1.0, np.float32)).dtype == np.float32  # scalars and 0-d arrays mix
    cupy.reset_d2h_reads()
    host = d.get()
    assert isinstance(host, np.ndarray) and float(d.sum()) == 15.0 and cupy.asnumpy(d).shape == (2, 3)
    assert cupy.d2h_reads() == 3
    with pytest.raises(TypeError, match="Python int as src"):
        cupy.copyto(d, 1, where=d > 2)


def _tiny_gan(backend_name, instance_noise=0.0, pack=1):
    r = np.random.default_rng(0)
    G = nn.Sequential(nn.Dense(3, 8, rng=r, bias=False), nn.BatchNorm1d(8), nn.ReLU(), nn.Dense(8, 4, rng=r),
                      nn.Tanh()).to(backend_name)
    D = nn.Sequential(nn.Dense(4 * pack, 8, rng=r), nn.LeakyReLU(0.2), nn.Dense(8, 1, rng=r)).to(backend_name)
    return GAN(G, D, optim.Adam(G.params(), 1e-3, (0.5, 0.999)), optim.Adam(D.params(), 1e-3, (0.5, 0.999)),
               noise_dim=3, rng=0, d_steps=2, label_smoothing=0.1, instance_noise=instance_noise, pack=pack)


@pytest.mark.parametrize("options", [{}, {"instance_noise": 0.1, "pack": 2}], ids=["plain", "noise+pack"])
def test_a_training_step_on_the_device_reads_nothing_back(d2h_reads, options):
    """With to_host=False a GPU step never waits for the host: not one device-to-host read."""
    gan = _tiny_gan("cupy", **options)
    real = [backend.to_device(np.random.default_rng(k).standard_normal((8, 4)).astype(np.float32), "cupy")
            for k in range(2)]
    gan.train_step(real)  # the first step creates the optimizer state
    before = d2h_reads()
    stats = gan.train_step(real, to_host=False)
    assert d2h_reads() == before, "a training step with to_host=False read from the device"
    assert all(backend.is_cupy_array(v) and v.shape == () for v in stats.values())


def test_device_and_host_steps_agree(backend_name):
    """The same GAN, seeded alike, on NumPy and on CuPy: the same losses after three steps."""
    losses = {}
    for where in ("numpy", backend_name):
        gan = _tiny_gan(where)
        real = [backend.to_device(np.random.default_rng(k).standard_normal((8, 4)).astype(np.float32), where)
                for k in range(2)]
        losses[where] = [gan.train_step(real) for _ in range(3)]
    for a, b in zip(losses["numpy"], losses[backend_name]):
        assert a == pytest.approx(b, rel=1e-3, abs=1e-5)  # a GPU sums in another order


def test_pictures_take_device_arrays(backend_name, tmp_path):
    """plot used np.asarray, which CuPy refuses."""
    x = backend.to_device(np.random.default_rng(0).standard_normal((50, 2)).astype(np.float32), backend_name)
    plot.save_scatter(x, tmp_path / "s.png", modes=backend.to_device(np.eye(2), backend_name))
    plot.save_image_grid(backend.to_device(np.zeros((4, 5, 5), np.float32), backend_name), tmp_path / "g.png")
    assert (tmp_path / "s.png").stat().st_size > 0 and (tmp_path / "g.png").stat().st_size > 0


def test_to_device_counts_gpus_once(monkeypatch):
    """to_device runs several times a step; it used to re-resolve the backend and ask the driver for the device
    count on every call."""
    cupy = backend.get_xp("cupy")
    calls = []
    real_count = cupy.cuda.runtime.getDeviceCount
    monkeypatch.setattr(cupy.cuda.runtime, "getDeviceCount", lambda: calls.append(1) or real_count())
    monkeypatch.setattr(backend, "_checked_cupy", None)
    x = np.ones(3, np.float32)
    for _ in range(10):
        backend.to_device(x, "cupy")
    assert len(calls) == 1


def test_a_run_trains_on_the_device(tmp_path, d2h_reads):
    """Run.train on CuPy reads losses back only at logging steps (every 5th here), not at every step."""
    config = TrainConfig(dataset="ring8", arch="toy", steps=10, batch_size=32, sample_every=10, log_every=5,
                         noise_dim=4, lr_decay="none", backend="cupy")
    run = Run(config, tmp_path / "run", progress=False)
    original, reads = run.gan.train_step, []

    def counting(real, to_host=True):
        before = d2h_reads()
        stats = original(real, to_host)
        reads.append(d2h_reads() - before)
        return stats

    run.gan.train_step = counting
    run.train()
    assert reads == [0] * 10
    rows = [json.loads(line) for line in (tmp_path / "run/metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [5, 10] and all(np.isfinite(r["d_loss"]) for r in rows)


def _minigan(args, tmp_path):
    done = subprocess.run([sys.executable, "-m", "minigan", *args], cwd=tmp_path, env=standin_env(),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"minigan {' '.join(args)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done


def test_cli_train_sample_evaluate_with_backend_cupy(tmp_path):
    """The command line on CuPy, in a subprocess that finds the stand-in (or the real CuPy) through PYTHONPATH."""
    ring = ["--dataset", "ring8", "--steps", "6", "--batch-size", "64", "--sample-every", "3", "--log-every", "2"]
    _minigan(["train", *ring, "--backend", "cupy", "--out", "ring", "--no-progress"], tmp_path)
    config = json.loads((tmp_path / "ring/config.json").read_text())
    assert config["backend"] == "cupy" and "cupy" in config["versions"]
    assert ("standin" in config["versions"]["cupy"]) == CUPY_IS_STANDIN
    _minigan(["sample", "ring", "-n", "16", "--backend", "cupy", "--npy", "s.npy"], tmp_path)
    assert np.load(tmp_path / "s.npy").shape == (16, 2)
    _minigan(["evaluate", "ring", "-n", "500", "--backend", "cupy"], tmp_path)
    assert "modes_covered" in json.loads((tmp_path / "ring/eval.json").read_text())
    digits = ["--steps", "2", "--batch-size", "16", "--sample-every", "2", "--log-every", "1"]
    _minigan(["train", *digits, "--backend", "cupy", "--out", "digits", "--no-progress"], tmp_path)
    rows = [json.loads(line) for line in (tmp_path / "digits/metrics.jsonl").read_text().splitlines()]
    assert "mnist_score" in rows[-1]
    _minigan(["sample", "digits", "-n", "8", "--backend", "cupy"], tmp_path)


def test_speed_benchmark_runs_on_the_device(tmp_path):
    """benchmarks/speed/gpu_checks.sh times bench_step.py --backend cupy on a lent GPU: it must not trip over a
    CPU-only assumption there, where each minute of device time counts."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "speed" / "bench_step.py"
    spec = importlib.util.spec_from_file_location("bench_step_on_cupy", path)
    bench = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = bench
    spec.loader.exec_module(bench)
    out = tmp_path / "speed.json"
    bench.main(["--quick", "--backend", "cupy", "--arch", "seed", "--batch", "8", "--threads", "1",
                "--json", str(out)])
    rows = json.loads(out.read_text())["rows"]
    assert [(r["processes"], r["arch"], r["batch"]) for r in rows] == [("separate", "seed", 8), ("one", "seed", 8)]
    assert all(r["ms"]["minigan"] > 0 for r in rows)
