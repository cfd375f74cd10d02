"""The DCGAN (``--arch dcgan``): its whole step against the textbook objective, packing along channels, exact resume,
the CuPy path and its errors. The layers themselves are tested in test_conv.py."""

import json

import numpy as np
import pytest

from minigan import backend, models, nn, optim
from minigan.gan import GAN, pack
from minigan.gradcheck import check_gan_step
from minigan.train import Run, TrainConfig, resume, train

from conftest import CUPY_IS_STANDIN


def tiny_dcgan(pack_m=1, backend_name="numpy", seed=0, **options):
    """``models.dcgan`` for 8x8 images with widths 2 and 3: the real layer stack, small enough to check every
    weight by finite differences."""
    G, D = models.dcgan(noise_dim=4, data_dim=64, rng=np.random.default_rng(seed), pack=pack_m, widths=(2, 3))
    r = np.random.default_rng(seed + 1)
    for p in G.params() + D.params():  # weights at a scale where LeakyReLU/ReLU kinks are rare and logits not tiny
        p.data = (r.standard_normal(p.shape) * 0.5).astype(np.float32)
    G.to(backend_name), D.to(backend_name)
    return GAN(G, D, optim.Adam(G.params(), 1e-3, (0.5, 0.999)), optim.Adam(D.params(), 1e-3, (0.5, 0.999)),
               noise_dim=4, rng=seed, pack=pack_m, **options)


def real_rows(n=6, seed=1):
    return np.tanh(np.random.default_rng(seed).standard_normal((n, 64))).astype(np.float32)  # (n, 8*8) in (-1, 1)


def test_the_architecture_is_the_documented_one():
    G, D = models.build_models("dcgan", 784, rng=0)
    assert [repr(m) for m in G] == [
        "Dense(100->3136)", "BatchNorm1d(3136)", "ReLU()", "Reshape((64, 7, 7))",
        "ConvTranspose2d(64->32, k=4, s=2, p=1, bias=False)", "BatchNorm2d(32)", "ReLU()",
        "ConvTranspose2d(32->1, k=4, s=2, p=1)", "Tanh()", "Flatten()"]
    assert [repr(m) for m in D] == [
        "Reshape((1, 28, 28))", "Conv2d(1->32, k=4, s=2, p=1)", "LeakyReLU(0.2)", "Conv2d(32->64, k=4, s=2, p=1)",
        "LeakyReLU(0.2)", "Flatten()", "Dense(3136->1)"]
    assert G[0].b is None  # no bias before a batch norm
    z = np.random.default_rng(0).standard_normal((5, 100)).astype(np.float32)
    x = G.forward(z)
    assert x.shape == (5, 784) and x.dtype == np.float32 and np.all(np.abs(x) <= 1)  # flat rows in tanh's range
    assert D.forward(x).shape == (5, 1)
    w = G[4].W.data  # DCGAN's N(0, 0.02^2) init
    assert abs(float(w.std()) - 0.02) < 0.002 and abs(float(w.mean())) < 0.002


@pytest.mark.parametrize("options", [{}, {"pack_m": 2}, {"label_smoothing": 0.1, "instance_noise": 0.3},
                                     {"loss": "minimax"}], ids=["plain", "pack2", "smoothing+noise", "minimax"])
def test_whole_dcgan_step_matches_the_textbook_objective_in_float64(options):
    """Every weight of G and D (batch norms, transposed convolutions, convolutions, the Dense layers) in both halves
    of the step, against finite differences of the textbook L_D and L_G."""
    gan = tiny_dcgan(**options)
    n = 4 if options.get("pack_m") else 6
    result = check_gan_step(gan, real_rows(n), max_elements=24)
    names = [t.name for t in result.tensors]
    assert sum(n.startswith("dL_D/") for n in names) == 6  # two convolutions and the Dense, W and b each
    assert sum(n.startswith("dL_G/") for n in names) == 8  # Dense W, 2 x (gamma, beta), W, W and b
    assert any("ConvTranspose2d" in n for n in names) and any("BatchNorm2d" in n for n in names)
    assert all(o.passed for o in result.objectives)


def test_the_step_checker_catches_a_wrong_conv_input_gradient(monkeypatch):
    """It can fail: with col2im 1.5x too large, Conv2d's input gradient is wrong. Gradients that flow through it
    fail (D's first convolution; G's output layer, reached through D); those that do not (D's last convolution and
    Dense) pass. (G's inner layers may pass: its transposed convolutions run col2im forward too, and the batch norm
    after them divides the wrong scale out again.)"""
    from minigan import functional as F

    right = F.col2im
    monkeypatch.setattr(F, "col2im", lambda *a, **k: right(*a, **k) * np.float32(1.5))
    result = check_gan_step(tiny_dcgan(), real_rows(), max_elements=24, raise_exception=False)
    passed = {t.name: t.passed for t in result.tensors}
    assert not result.ok and not passed["dL_G/dW [G layer 7 ConvTranspose2d(2->1, k=4, s=2, p=1)]"]
    assert all(ok for name, ok in passed.items() if "D layer 3 Conv2d" in name or "D layer 6 Dense" in name)
    assert not passed["dL_D/dW [D layer 1 Conv2d(1->2, k=4, s=2, p=1)]"]


def image_gan(pack_m=1, instance_noise=0.0):
    """A convolutional GAN on (N, C, H, W) images, no flattening: what a user builds from the layers."""
    r = np.random.default_rng(3)
    G = nn.Sequential(nn.Dense(3, 2 * 2 * 2, rng=r), nn.Reshape((2, 2, 2)),
                      nn.ConvTranspose2d(2, 1, 4, stride=2, padding=1, rng=r), nn.Tanh())  # (N, 1, 4, 4)
    D = nn.Sequential(nn.Conv2d(pack_m, 2, 3, stride=2, padding=1, rng=r), nn.LeakyReLU(0.2), nn.Flatten(),
                      nn.Dense(2 * 2 * 2, 1, rng=r))
    return GAN(G, D, optim.Adam(G.params(), 1e-3), optim.Adam(D.params(), 1e-3), noise_dim=3, rng=0, pack=pack_m,
               instance_noise=instance_noise)


@pytest.mark.parametrize("pack_m", [1, 2])
def test_a_gan_on_nchw_images_steps_and_passes_the_step_check(pack_m):
    """4-D data end to end: train_step, instance noise of the images' shape, packing along the channels, and the
    whole-step check."""
    real = np.tanh(np.random.default_rng(0).standard_normal((4, 1, 4, 4))).astype(np.float32)
    gan = image_gan(pack_m, instance_noise=0.2)
    stats = gan.train_step(real)
    assert all(np.isfinite(v) for v in stats.values())
    result = check_gan_step(image_gan(pack_m, instance_noise=0.2), real)
    assert result.ok and len(result.tensors) == 8


def test_packing_images_stacks_consecutive_samples_along_the_channels():
    x = np.arange(6 * 2 * 3 * 3, dtype=np.float32).reshape(6, 2, 3, 3)
    np.testing.assert_array_equal(pack(x, 3), np.concatenate([x[0::3], x[1::3], x[2::3]], axis=1))
    # and the flat DCGAN rows, reshaped by D's first layer, are the same images stacked the same way
    rows = x[:, :1].reshape(6, 9)
    np.testing.assert_array_equal(nn.Reshape((3, 3, 3)).forward(pack(rows, 3)), pack(x[:, :1], 3))


def test_dcgan_with_pack_judges_m_images_as_m_channels():
    G, D = models.build_models("dcgan", 784, rng=0, pack=2)
    assert repr(D[0]) == "Reshape((2, 28, 28))" and D[1].in_channels == 2


DCGAN_RUN = dict(dataset="digits", arch="dcgan", batch_size=8, sample_every=4, log_every=2, lr_decay="none")


def _arrays(path):
    with np.load(path, allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files if k != "config"}


def test_a_dcgan_run_resumes_bit_for_bit(tmp_path):
    """Weights, Adam moments, both batch norms' running statistics and the noise state: a run cut at step 3 and
    resumed equals the straight run in every bit. Sample pictures (eval mode) in between change nothing."""
    train(TrainConfig(steps=8, **DCGAN_RUN), tmp_path / "straight", progress=False)
    train(TrainConfig(steps=3, **DCGAN_RUN), tmp_path / "split", progress=False)
    resume(tmp_path / "split", {"steps": 8}, progress=False)
    a, b = _arrays(tmp_path / "straight/checkpoint.npz"), _arrays(tmp_path / "split/checkpoint.npz")
    assert sorted(a) == sorted(b) and int(b["step"]) == 8
    assert sum(k.endswith("running_var") and k.startswith("G/") for k in a) == 2  # BatchNorm1d and BatchNorm2d
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    config = json.loads((tmp_path / "straight/config.json").read_text())
    assert config["arch"] == "dcgan" and config["data_scale"] == "tanh" and config["noise_dim"] == 100
    assert (tmp_path / "straight/samples.png").stat().st_size > 0


def test_sampling_is_in_eval_mode_and_returns_flat_rows(tmp_path):
    run = Run(TrainConfig(steps=2, **DCGAN_RUN), tmp_path / "run", progress=False)
    run.train()
    x = run.samples_host()
    assert x.shape == (64, 784) and run.gan.G.training  # back in training mode after sampling
    bn = run.gan.G[1]
    before = bn.running_mean.copy()
    one = run.samples_host(run.fixed_z[:1])  # eval mode: a sample depends on its own noise only
    np.testing.assert_allclose(one[0], x[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(bn.running_mean, before)


def test_dcgan_defaults_fit_the_three_minute_budget(tmp_path):
    run = Run(TrainConfig(dataset="digits", arch="dcgan"), tmp_path / "run", progress=False)
    assert (run.config.steps, run.config.sample_every, run.config.batch_size) == (6000, 1000, 64)
    assert Run(TrainConfig(dataset="digits"), tmp_path / "mlp", progress=False).config.steps == 7000


# --------------------------------------------------------------------------------------------- CuPy


def test_dcgan_steps_agree_on_numpy_and_cupy(backend_name):
    """The same DCGAN, seeded alike, on NumPy and on the CuPy path: the same losses over three steps."""
    losses = {}
    for where in ("numpy", backend_name):
        gan = tiny_dcgan(backend_name=where, pack_m=2, instance_noise=0.1)
        real = backend.to_device(real_rows(8), where)
        losses[where] = [gan.train_step(real) for _ in range(3)]
    for a, b in zip(losses["numpy"], losses[backend_name]):
        assert a == pytest.approx(b, rel=1e-3, abs=1e-5)


@pytest.mark.skipif(not CUPY_IS_STANDIN, reason="device-to-host reads are counted by the stand-in only")
def test_a_dcgan_step_on_the_device_reads_nothing_back(d2h_reads):
    gan = tiny_dcgan(backend_name="cupy")
    real = backend.to_device(real_rows(8), "cupy")
    gan.train_step(real)
    before = d2h_reads()
    stats = gan.train_step(real, to_host=False)
    assert d2h_reads() == before and all(backend.is_cupy_array(v) for v in stats.values())


def test_the_dcgan_step_check_runs_on_cupy():
    result = check_gan_step(tiny_dcgan(backend_name="cupy"), backend.to_device(real_rows(), "cupy"),
                            max_elements=8)
    assert result.ok


# --------------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize("dim", [100, 28 * 28 * 3, 30 * 30])
def test_data_that_is_not_square_images_with_a_side_divisible_by_4_is_refused(dim):
    with pytest.raises(ValueError, match=rf"--arch dcgan needs square one-channel images .* got rows of {dim} "
                                         r"values; use --arch mlp"):
        models.build_models("dcgan", dim)


def test_dcgan_on_2d_data_is_refused(tmp_path):
    with pytest.raises(ValueError, match="--arch dcgan is for images; use toy or pacgan for ring8"):
        Run(TrainConfig(dataset="ring8", arch="dcgan"), tmp_path, progress=False)


@pytest.mark.parametrize("pack_m, shape", [(1, (4, 49)), (2, (4, 128)), (1, (4, 1, 8, 8))])
def test_a_real_batch_of_the_wrong_size_says_what_d_takes(rng, pack_m, shape):
    gan = tiny_dcgan(pack_m=pack_m)
    with pytest.raises(ValueError, match=rf"real_batches must be \(N, 64\) \(the discriminator takes {64 * pack_m} "
                                         rf"features = pack {pack_m} x 64\), got shape \{shape}"[:-1]):
        gan.train_step(rng.standard_normal(shape).astype(np.float32))


def test_a_real_batch_that_is_neither_rows_nor_images_is_refused(rng):
    with pytest.raises(ValueError, match=r"real_batches must be \(N, d\) rows or \(N, C, H, W\) images, got shape "
                                         r"\(4, 4, 4\)"):
        image_gan().train_step(rng.standard_normal((4, 4, 4)).astype(np.float32))


@pytest.mark.parametrize("pack_m, shape", [(1, (4, 3, 4, 4)), (2, (4, 2, 4, 4)), (1, (4, 16))])
def test_images_with_the_wrong_channel_count_say_what_d_takes(rng, pack_m, shape):
    with pytest.raises(ValueError, match=rf"real_batches must be \(N, 1, H, W\) images \(the discriminator's first "
                                         rf"layer Conv2d\({pack_m}->2, .* takes {pack_m} channel\(s\) = pack {pack_m} "
                                         rf"x 1\), got shape"):
        image_gan(pack_m).train_step(rng.standard_normal(shape).astype(np.float32))


def test_a_conv_layer_names_itself_on_a_wrong_channel_count(rng):
    with pytest.raises(ValueError, match=r"layer 1 Conv2d\(1->2, k=4, s=2, p=1\): expected input of shape \(batch, 1, "
                                         r"height, width\) with 1 channel\(s\), got \(2, 3, 8, 8\) with 3"):
        tiny_dcgan().D[1].forward(rng.standard_normal((2, 3, 8, 8)).astype(np.float32))


def test_cli_trains_a_dcgan(tmp_path):
    from minigan import cli

    out = tmp_path / "run"
    assert cli.main(["train", "--arch", "dcgan", "--steps", "2", "--batch-size", "8", "--sample-every", "2",
                     "--pack", "2", "--instance-noise", "0.1", "--out", str(out), "--no-progress"]) == 0
    assert json.loads((out / "config.json").read_text())["pack"] == 2
    assert cli.main(["sample", str(out), "-n", "4", "--npy", str(tmp_path / "s.npy")]) == 0
    x = np.load(tmp_path / "s.npy")
    assert x.shape == (4, 784) and x.min() >= 0 and x.max() <= 1


# --------------------------------------------------------------------------------------------- the benchmark


def test_the_dcgan_benchmark_runs_and_its_floor_has_every_product(tmp_path):
    """benchmarks/speed/bench_dcgan.py end to end at batch 8 (no timing asserted): rounds, the profile, memory;
    and its GEMM floor lists the step's 25 products with the right sizes."""
    import importlib.util
    import sys
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "speed" / "bench_dcgan.py"
    spec = importlib.util.spec_from_file_location("bench_dcgan_smoke", path)
    bench = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = bench
    spec.loader.exec_module(bench)
    shapes = bench.gemm_shapes(8)
    # G: 3 weighted layers, D: 3. D step: G fwd 3 + D fwd 3 + D dW 3 + D dx 2; G step: 3 + 3 + D dx 3 + G dW 3 + dx 2
    assert len(shapes) == 25
    assert (64, 512, 7 * 7 * 16) in shapes  # D's second convolution at 2N = 16 rows: (C_out, C_in*k*k, OH*OW*2N)
    assert (32 * 16, 64, 7 * 7 * 8) in shapes  # G's first transposed convolution: (C_out*k*k, C_in, H*W*N)
    common = ["--batch", "8", "--threads", "1", "--steps", "2", "--rounds", "1", "--warmup", "1", "--settle", "0"]
    out = tmp_path / "b.json"
    bench.main(common + ["--mode", "rounds", "--contenders", "minigan", "gemm", "--json", str(out)])
    rounds = json.loads(out.read_text())["rounds"]
    assert rounds["minigan"]["steps"] == 2 and rounds["minigan/gemm"] > 0
    bench.main(common + ["--profile", "--json", str(out)])
    prof = json.loads(out.read_text())["profile"]
    assert set(prof["categories_ms"]) == {"im2col", "col2im", "conv/dense layers", "batch norm", "elementwise", "Adam",
                                          "rest of the step"}
    assert all(v > 0 for k, v in prof["categories_ms"].items() if k != "rest of the step")
    bench.main(common + ["--memory", "--json", str(out)])
    assert json.loads(out.read_text())["memory"]["peak_rss_mib"] > 0
