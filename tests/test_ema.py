"""The weight average of G (``minigan.ema``, ``--ema``): the formula, sampling with it, exact resume with it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from minigan import cli, models
from minigan.checkpoint import CheckpointError, load_checkpoint
from minigan.ema import WeightAverage
from minigan.evaluate import generate_samples, load_generator
from minigan.nn import BatchNorm1d, Dense, ReLU, Sequential
from minigan.train import DEFAULTS, Run, TrainConfig, resume, train

TOY = dict(dataset="ring8", arch="toy", batch_size=32, sample_every=10, log_every=5, noise_dim=4, lr_decay="none")


def _arrays(path):
    with np.load(path, allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files if k != "config"}


def _set_weights(model, rng):
    for p in model.params():
        p.data = rng.standard_normal(p.shape).astype(np.float32)


def test_average_equals_the_bias_corrected_exponential_sum(rng):
    """avg_t = sum_i (1 - b) b^(t-i) w_i / (1 - b^t), computed here directly in float64 from the history."""
    model = Sequential(Dense(3, 4, rng=rng), ReLU(), Dense(4, 2, rng=rng))
    decay = 0.7
    avg = WeightAverage(model, decay)
    history = []
    for _ in range(6):
        _set_weights(model, rng)
        history.append({name: p.data.astype(np.float64) for name, p in model.named_params()})
        avg.update(model)
    t = len(history)
    for name, p in avg.model.named_params():
        expected = sum((1 - decay) * decay ** (t - i) * w[name] for i, w in enumerate(history, start=1))
        expected /= 1 - decay ** t
        np.testing.assert_allclose(p.data, expected, rtol=1e-5, atol=1e-6, err_msg=name)
    assert avg.updates == 6


def test_first_update_copies_the_weights_and_later_rates_approach_1_minus_decay(rng):
    model = Sequential(Dense(3, 2, rng=rng))
    avg = WeightAverage(model, 0.999)
    _set_weights(model, rng)
    avg.update(model)
    for (name, p), (_, q) in zip(avg.model.named_params(), model.named_params()):
        np.testing.assert_array_equal(p.data, q.data, err_msg=name)  # rate_1 = 1: nothing of the initial weights
    assert avg.rate(1) == 1.0 and avg.rate(100_000) == pytest.approx(0.001, rel=1e-9)
    assert avg.rate(2) == pytest.approx(0.001 / (1 - 0.999 ** 2))


def test_update_leaves_the_trained_model_alone_and_is_a_separate_copy(rng):
    model = Sequential(Dense(3, 2, rng=rng))
    before = {k: v.copy() for k, v in model.state_dict().items()}
    avg = WeightAverage(model, 0.9)
    _set_weights(model, rng)
    live = {k: v.copy() for k, v in model.state_dict().items()}
    avg.update(model)
    avg.update(model)
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, live[k])
    assert not any(np.array_equal(live[k], before[k]) for k in live)
    assert all(p.grad is None and not p.requires_grad for p in avg.model.params())
    assert avg.model.training is False


def test_batch_norm_running_statistics_are_averaged_like_the_weights(rng):
    model = Sequential(Dense(3, 5, rng=rng, bias=False), BatchNorm1d(5), ReLU(), Dense(5, 2, rng=rng))
    decay = 0.5
    avg = WeightAverage(model, decay)
    means = []
    for _ in range(3):
        model.forward(rng.standard_normal((16, 3)).astype(np.float32))  # train mode: updates running stats
        model.layers[1]._cache = None
        means.append(model.layers[1].running_mean.astype(np.float64).copy())
        avg.update(model)
    expected = sum((1 - decay) * decay ** (3 - i) * m for i, m in enumerate(means, start=1)) / (1 - decay ** 3)
    np.testing.assert_allclose(avg.model.layers[1].running_mean, expected, rtol=1e-5, atol=1e-7)
    assert not np.allclose(avg.model.layers[1].running_mean, means[-1])


@pytest.mark.parametrize("decay", [0.0, 1.0, -0.5, 1.5])
def test_decay_outside_0_1_is_refused(decay, rng):
    with pytest.raises(ValueError, match=r"decay must lie in \(0, 1\)"):
        WeightAverage(Sequential(Dense(2, 2, rng=rng)), decay)


def test_the_average_follows_whichever_model_it_is_given(rng):
    """The name-to-name links are made once per model object: another model object (a copy with other weights)
    gets its own links, and the average moves towards it, not towards the first model's arrays."""
    import copy

    first = Sequential(Dense(3, 2, rng=rng))
    avg = WeightAverage(first, 0.5)
    avg.update(first)
    second = copy.deepcopy(first)
    _set_weights(second, rng)
    avg.update(second)  # rate_2 = 0.5 / 0.75 = 2/3 of the way to the second model's weights
    for (name, a), (_, w1), (_, w2) in zip(avg.model.named_params(), first.named_params(), second.named_params()):
        np.testing.assert_allclose(a.data, w1.data + np.float32(2 / 3) * (w2.data - w1.data), rtol=1e-6, err_msg=name)


def test_average_of_another_architecture_is_refused(rng):
    avg = WeightAverage(Sequential(Dense(3, 2, rng=rng)), 0.9)
    with pytest.raises(ValueError, match="does not match the averaged copy"):
        avg.update(Sequential(Dense(3, 4, rng=rng)))


def test_state_dict_round_trip(rng):
    model = Sequential(Dense(3, 2, rng=rng))
    avg = WeightAverage(model, 0.9)
    _set_weights(model, rng)
    avg.update(model)
    twin = WeightAverage(Sequential(Dense(3, 2, rng=rng)), 0.9)
    twin.load_state_dict(avg.state_dict())
    assert twin.updates == 1
    for k, v in avg.model.state_dict().items():
        np.testing.assert_array_equal(twin.model.state_dict()[k], v)
    with pytest.raises(ValueError, match="lacks 'updates'"):
        twin.load_state_dict(avg.model.state_dict())


# ---------------------------------------------------------------------------------------------- in a training run


def test_run_samples_and_quality_use_the_averaged_generator(tmp_path):
    run = Run(TrainConfig(steps=6, ema=0.9, **TOY), tmp_path / "run", progress=False)
    run.train()
    assert run.ema.updates == 6
    from_average = run.ema.model.forward(run.fixed_z)
    np.testing.assert_array_equal(run.samples_host(), from_average)
    run.gan.G.eval()
    live = run.gan.G.forward(run.fixed_z)
    run.gan.G.train()
    assert not np.allclose(run.samples_host(), live, atol=1e-4)  # the average is not the last step's G


def test_sample_and_evaluate_load_the_averaged_weights(tmp_path):
    out = train(TrainConfig(steps=6, ema=0.9, **TOY), tmp_path / "run", progress=False)
    ckpt = load_checkpoint(out)
    assert int(ckpt["G_ema"]["updates"]) == 6
    G, cfg, _ = load_generator(out)
    for name, value in G.state_dict().items():
        np.testing.assert_array_equal(value, ckpt["G_ema"][name], err_msg=name)
    assert not all(np.array_equal(ckpt["G"][k], ckpt["G_ema"][k]) for k in ckpt["G"])
    assert generate_samples(G, cfg, 5).shape == (5, 2)


def test_a_run_without_average_samples_with_g_and_saves_none(tmp_path):
    run = Run(TrainConfig(steps=4, ema=0.0, **TOY), tmp_path / "run", progress=False)
    run.train()
    assert run.ema is None and load_checkpoint(tmp_path / "run")["G_ema"] == {}
    run.gan.G.eval()
    np.testing.assert_array_equal(run.samples_host(), run.gan.G.forward(run.fixed_z))


@pytest.mark.parametrize("arch, noise_dim", [("toy", 4), ("pacgan", 2)])
def test_resume_with_an_average_is_bit_for_bit(tmp_path, arch, noise_dim):
    """pacgan's G has batch norm: its averaged running statistics must resume exactly too."""
    cfg = dict(TOY, arch=arch, noise_dim=noise_dim, ema=0.95)
    train(TrainConfig(steps=25, **cfg), tmp_path / "straight", progress=False)
    train(TrainConfig(steps=9, **cfg), tmp_path / "split", progress=False)
    resume(tmp_path / "split", {"steps": 25}, progress=False)
    a, b = _arrays(tmp_path / "straight/checkpoint.npz"), _arrays(tmp_path / "split/checkpoint.npz")
    assert sorted(a) == sorted(b) and any(k.startswith("G_ema/") for k in a)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_resume_refuses_another_decay(tmp_path):
    train(TrainConfig(steps=3, ema=0.9, **TOY), tmp_path / "run", progress=False)
    with pytest.raises(ValueError, match="ema=0.9"):
        resume(tmp_path / "run", {"ema": 0.99}, progress=False)


def test_a_checkpoint_from_before_averaging_resumes_without_one(tmp_path):
    """Old checkpoints have no "ema" setting: they were trained without an average and continue so."""
    out = train(TrainConfig(steps=3, ema=0.0, **TOY), tmp_path / "run", progress=False)
    arrays = dict(np.load(out / "checkpoint.npz", allow_pickle=False))
    config = json.loads(arrays["config"].tobytes().decode())
    del config["ema"]
    arrays["config"] = np.frombuffer(json.dumps(config).encode(), dtype=np.uint8)
    np.savez(out / "checkpoint.npz", **arrays)
    resume(out, {"steps": 5}, progress=False)
    assert load_checkpoint(out)["step"] == 5 and load_checkpoint(out)["config"]["ema"] == 0.0


def test_a_checkpoint_whose_average_is_missing_is_refused(tmp_path):
    out = train(TrainConfig(steps=3, ema=0.9, **TOY), tmp_path / "run", progress=False)
    arrays = {k: v for k, v in np.load(out / "checkpoint.npz", allow_pickle=False).items()
              if not k.startswith("G_ema/")}
    np.savez(out / "checkpoint.npz", **arrays)
    with pytest.raises(CheckpointError, match="lacks a weight average"):
        resume(out, {"steps": 5}, progress=False)


def test_the_mlp_image_default_averages_and_the_others_do_not():
    """The mlp GAN's recipe was measured with the average; seed, dcgan and 2-D data were measured without it."""
    from minigan import data
    from minigan.train import TrainConfig, defaults_for

    digits, ring = data.get_dataset("digits"), data.get_dataset("ring8")
    assert 0.99 <= defaults_for(TrainConfig(), digits).ema < 1
    assert defaults_for(TrainConfig(arch="seed"), digits).ema == 0.0
    assert defaults_for(TrainConfig(arch="dcgan"), digits).ema == 0.0
    assert defaults_for(TrainConfig(), ring).ema == 0.0 and DEFAULTS["2d"]["ema"] == 0.0


def test_cli_option(tmp_path, capsys):
    assert cli.main(["train", "--dataset", "ring8", "--steps", "4", "--batch-size", "16", "--ema", "0.5",
                     "--sample-every", "4", "--no-progress", "--out", str(tmp_path / "r")]) == 0
    assert load_checkpoint(tmp_path / "r")["config"]["ema"] == 0.5
    assert cli.main(["train", "--ema", "1", "--out", str(tmp_path / "x")]) == 2
    assert "--ema: expected a number >= 0 and < 1" in capsys.readouterr().err


def test_mlp_generator_average_keeps_float32(rng):
    G, _ = models.build_models("mlp", 784, rng=0)
    avg = WeightAverage(G, 0.999)
    avg.update(G)
    avg.update(G)
    assert all(p.data.dtype == np.float32 for p in avg.model.params())


def test_blockwise_update_equals_the_whole_array_formula(rng, monkeypatch):
    from minigan import ema, kernels

    monkeypatch.setattr(kernels, "move_towards", lambda *a: False)  # the plain NumPy form, not the compiled one

    avg = rng.standard_normal((300, 257)).astype(np.float32)  # not a multiple of the block size
    live = rng.standard_normal((300, 257)).astype(np.float32)
    expected = avg + np.float32(0.01) * (live - avg)
    assert avg.size > 2 * ema.BLOCK
    ema._move_towards(avg, live, 0.01)
    np.testing.assert_array_equal(avg, expected)


def test_the_average_stays_on_the_device_and_matches_the_host_run(tmp_path, d2h_reads):
    """An averaged run on CuPy (real, or the stand-in) keeps the average there (no reads per step) and averages
    like the host run."""
    cfg = dict(TOY, lr_decay="none", ema=0.9, sample_every=6, log_every=6)
    host = Run(TrainConfig(steps=6, **cfg), tmp_path / "host", progress=False)
    host.train()
    device = Run(TrainConfig(steps=6, backend="cupy", **cfg), tmp_path / "device", progress=False)
    original, reads = device.ema.update, []

    def counting(model):
        before = d2h_reads()
        original(model)
        reads.append(d2h_reads() - before)

    device.ema.update = counting
    device.train()
    assert reads == [0] * 6
    for name, value in device.ema.model.state_dict().items():
        np.testing.assert_allclose(value, host.ema.model.state_dict()[name], rtol=1e-4, atol=1e-5, err_msg=name)
