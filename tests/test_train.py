"""The main job: run folders, exact resume, checkpoints and their errors, the CLI end to end."""

import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest

from minigan import cli
from minigan.checkpoint import CheckpointError, load_checkpoint, rng_from_array, rng_state_to_array
from minigan.train import Run, TrainConfig, TrainingDiverged, resume, train

TOY = dict(dataset="ring8", arch="toy", batch_size=32, sample_every=10, log_every=5, noise_dim=4, lr_decay="none")


def _arrays(path):
    with np.load(path, allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files if k != "config"}


def test_rng_state_round_trip():
    rng = np.random.default_rng(42)
    rng.standard_normal(3)
    twin = rng_from_array(rng_state_to_array(rng))
    np.testing.assert_array_equal(rng.standard_normal(5), twin.standard_normal(5))


def test_run_folder_has_every_file(tmp_path):
    out = train(TrainConfig(steps=20, **TOY), tmp_path / "run", progress=False)
    for name in ["config.json", "metrics.jsonl", "samples.png", "losses.png", "checkpoint.npz",
                 "samples/step_000010.png", "samples/step_000020.png"]:
        assert (out / name).exists(), name
    config = json.loads((out / "config.json").read_text())
    assert config["seed"] == 0 and config["backend"] == "numpy" and "numpy" in config["versions"]
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [5, 10, 15, 20]
    assert {"d_loss", "g_loss", "d_real", "d_fake", "steps_per_s"} <= set(rows[0])


def test_resume_is_bit_for_bit_identical_to_an_uninterrupted_run(tmp_path):
    train(TrainConfig(steps=30, **TOY), tmp_path / "straight", progress=False)
    train(TrainConfig(steps=12, **TOY), tmp_path / "split", progress=False)
    resume(tmp_path / "split", {"steps": 30}, progress=False)
    a, b = _arrays(tmp_path / "straight/checkpoint.npz"), _arrays(tmp_path / "split/checkpoint.npz")
    assert sorted(a) == sorted(b) and int(b["step"]) == 30
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    rows = [json.loads(line)["step"] for line in (tmp_path / "split/metrics.jsonl").read_text().splitlines()]
    assert rows == [5, 10, 12, 15, 20, 25, 30]  # the first part's last step, then no duplicated or lost rows


def test_resume_is_exact_with_batch_norm_running_statistics(tmp_path):
    """The pacgan generator has BatchNorm1d: its running statistics are saved and restored with the weights, and
    drawing the sample pictures (eval mode) leaves them alone, or the split run would drift from the straight one."""
    bn = dict(TOY, arch="pacgan", noise_dim=2)
    train(TrainConfig(steps=20, **bn), tmp_path / "straight", progress=False)
    train(TrainConfig(steps=7, **bn), tmp_path / "split", progress=False)
    resume(tmp_path / "split", {"steps": 20}, progress=False)
    a, b = _arrays(tmp_path / "straight/checkpoint.npz"), _arrays(tmp_path / "split/checkpoint.npz")
    assert any(k.endswith("running_var") for k in a) and sorted(a) == sorted(b)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_ctrl_c_saves_and_resume_finishes_the_same_run_with_a_decaying_lr(tmp_path):
    config = TrainConfig(steps=24, **dict(TOY, lr_decay="linear"))
    train(config, tmp_path / "straight", progress=False)
    run = Run(config, tmp_path / "cut", progress=False)
    original = run.gan.train_step

    def interrupted(real, to_host=True):
        stats = original(real, to_host)
        if run.step == 10:  # the 11th step is under way: Ctrl-C arrives now
            os.kill(os.getpid(), signal.SIGINT)
        return stats

    run.gan.train_step = interrupted
    with pytest.raises(KeyboardInterrupt):
        run.train()
    assert load_checkpoint(tmp_path / "cut")["step"] == 11  # the step under way was finished, then saved
    resume(tmp_path / "cut", progress=False)
    a, b = _arrays(tmp_path / "straight/checkpoint.npz"), _arrays(tmp_path / "cut/checkpoint.npz")
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_resume_refuses_to_change_what_defines_the_run(tmp_path):
    train(TrainConfig(steps=5, **TOY), tmp_path / "run", progress=False)
    with pytest.raises(ValueError, match=r"trained with lr_d=0.001; resuming with 0.5 would not continue"):
        resume(tmp_path / "run", {"lr_d": 0.5, "steps": 10}, progress=False)


def test_checkpoint_errors_say_what_is_wrong(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "nothing.npz")
    out = train(TrainConfig(steps=5, **TOY), tmp_path / "run", progress=False)
    ckpt = out / "checkpoint.npz"
    ckpt.write_bytes(ckpt.read_bytes()[: len(ckpt.read_bytes()) // 2])  # a partial write
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_checkpoint(ckpt)
    np.savez(ckpt, G=np.zeros(3))
    with pytest.raises(CheckpointError, match="lacks"):
        load_checkpoint(ckpt)


def test_checkpoint_for_another_architecture_is_refused(tmp_path):
    out = train(TrainConfig(steps=5, **TOY), tmp_path / "run", progress=False)
    ckpt = load_checkpoint(out)
    other = Run(TrainConfig(steps=5, **dict(TOY, arch="pacgan", noise_dim=2)), tmp_path / "other", progress=False)
    with pytest.raises(CheckpointError, match="does not fit this run's models"):
        other.restore(ckpt)


def test_non_finite_loss_stops_with_the_step_and_keeps_the_checkpoint(tmp_path):
    run = Run(TrainConfig(steps=30, **TOY), tmp_path / "run", progress=False)
    original = run.gan.train_step

    def exploding(real, to_host=True):
        stats = original(real, to_host)
        if run.step >= 14:
            stats["d_loss"] = float("nan")
        return stats

    run.gan.train_step = exploding
    with pytest.raises(TrainingDiverged, match=r"step 15: a loss is not finite.*Largest gradient norms of the step: "
                                              r"[GD] \d+\.\w+ [\d.e+-]+.*learning rate.*checkpoint.*kept"):
        run.train()
    assert load_checkpoint(tmp_path / "run")["step"] == 10


def test_gradient_norms_are_logged_for_both_players(tmp_path):
    train(TrainConfig(steps=20, **TOY), tmp_path / "run", progress=False)
    rows = [json.loads(line) for line in (tmp_path / "run/metrics.jsonl").read_text().splitlines()]
    logged = [r for r in rows if "d_loss" in r]
    assert logged and all(0 < r["g_grad_norm"] < 1e6 and 0 < r["d_grad_norm"] < 1e6 for r in logged)


def test_cli_train_sample_and_errors_end_to_end(tmp_path, capsys):
    out = tmp_path / "digits"
    assert cli.main(["train", "--steps", "4", "--sample-every", "2", "--log-every", "2", "--batch-size", "16",
                     "--out", str(out), "--no-progress"]) == 0
    assert "pictures in" in capsys.readouterr().out
    import matplotlib.image

    grid = matplotlib.image.imread(out / "samples.png")
    assert grid.shape[0] > 8 * 28 and grid.shape[1] >= 8 * 28 * 2  # 64 digits, drawn 3x, 8 per row
    npy = tmp_path / "s.npy"
    assert cli.main(["sample", str(out / "checkpoint.npz"), "-n", "10", "--npy", str(npy),
                     "--out", str(tmp_path / "s.png")]) == 0
    x = np.load(npy, allow_pickle=False)
    assert x.shape == (10, 784) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1
    assert (tmp_path / "s.png").exists()
    # errors are one clear line, exit status 2
    assert cli.main(["train", "--dataset", "cifar", "--out", str(tmp_path / "x"), "--no-progress"]) == 2
    assert "cifar" in capsys.readouterr().err
    assert cli.main(["sample", str(tmp_path / "missing")]) == 2
    assert "no checkpoint at" in capsys.readouterr().err
    assert cli.main(["train", "--out", str(out), "--steps", "2", "--no-progress"]) == 2
    assert "already holds a run" in capsys.readouterr().err


def test_cli_resume_continues_to_the_new_step_count(tmp_path):
    out = tmp_path / "ring"
    args = ["--dataset", "ring8", "--arch", "toy", "--batch-size", "32", "--sample-every", "5", "--no-progress"]
    assert cli.main(["train", "--steps", "5", "--out", str(out)] + args) == 0
    assert cli.main(["train", "--resume", str(out), "--steps", "8", "--no-progress"]) == 0
    assert load_checkpoint(out)["step"] == 8


def test_seed_architecture_trains_on_sigmoid_scaled_digits(tmp_path):
    run = Run(TrainConfig(arch="seed", steps=2, batch_size=8, sample_every=2, log_every=1), tmp_path / "s",
              progress=False)
    assert run.dataset.scale == "sigmoid"
    assert [type(m).__name__ for m in run.gan.G] == ["Dense", "ReLU", "Dense", "Sigmoid"]
    run.train()


def test_cli_evaluate_writes_eval_json_for_a_2d_run(tmp_path, capsys):
    out = tmp_path / "ring"
    assert cli.main(["train", "--dataset", "ring8", "--steps", "10", "--batch-size", "32", "--sample-every", "10",
                     "--out", str(out), "--no-progress"]) == 0
    assert cli.main(["evaluate", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| model | HQ % | modes | reverse KL |" in printed
    result = json.loads((out / "eval.json").read_text())
    assert result["num_samples"] == 2500 and result["num_modes"] == 8 and 0 <= result["high_quality"] <= 1
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert "modes_covered" in rows[-1]  # the cheap quality numbers are logged at sample steps


def test_image_run_logs_classes_and_mnist_score(tmp_path):
    out = train(TrainConfig(steps=2, batch_size=8, sample_every=2, log_every=1), tmp_path / "d", progress=False)
    last = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()][-1]
    assert 1 <= last["classes_covered"] <= 10 and 1 <= last["mnist_score"] <= 10


def test_lr_decay_matches_its_documentation():
    """Documented: 1 for the first half, then a straight line towards 0, which it would reach one step past the end:
    the last step runs at 2 / total (the docs once said it reached 0 at the last step; it never did)."""
    from minigan.train import lr_factor

    total = 10
    factors = [lr_factor(k, total, "linear") for k in range(total)]
    assert factors[:6] == [1.0] * 6
    assert factors[-1] == pytest.approx(2 / total) and lr_factor(total, total, "linear") == 0.0
    assert all(a > b for a, b in zip(factors[5:], factors[6:]))
    assert "2 / total" in lr_factor.__doc__ and "runs at 2/7,000" in (Path(__file__).parents[1] / "README.md").read_text()


def test_a_checkpoint_with_non_finite_weights_is_never_written(tmp_path):
    """Ctrl-C (or a sample step on a GPU, where losses are read only when logging) used to save whatever weights
    there were, NaN included, over the last good checkpoint."""
    run = Run(TrainConfig(steps=30, **TOY), tmp_path / "run", progress=False)
    original = run.gan.train_step

    def corrupting(real, to_host=True):
        stats = original(real, to_host)  # this step's losses were computed before the update: finite
        if run.step == 12:
            run.gan.G[0].W.data[0, 0] = np.nan
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C arrives: finish the step, save, stop
        return stats

    run.gan.train_step = corrupting
    with pytest.raises(TrainingDiverged, match=r"step 13: non-finite weights in G 0.W.*last good checkpoint.*kept"):
        run.train()
    ckpt = load_checkpoint(tmp_path / "run")
    assert ckpt["step"] == 10 and all(np.isfinite(v).all() for v in ckpt["G"].values())
