"""minigan.testing: each helper passes correct code and catches a gallery of wrong code, and says where.

The gallery: a backward with the wrong sign, a bias gradient not summed over the batch (or averaged), a transposed
dW, a backward that writes into dout or its cache, a forward that overwrites its input, a layer whose dx is wrong;
for the GAN step, a flipped fake term in L_D, the saturating L_G, and D moving during the G update.
"""

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import find, given

from minigan import functional as F
from minigan import gan as gan_module
from minigan import nn, optim
from minigan.gan import GAN, generator_loss
from minigan.gradcheck import BackwardOutputError, GradCheckError
from minigan.testing import (MutationError, PlainGAN, arrays, assert_backward_matches, assert_backward_no_mutation,
                             assert_module_gradients, assert_no_mutation, assert_train_step_matches_reference,
                             binary_targets, class_labels, logits, logits_and_labels, probabilities, shapes)

ROOT = Path(__file__).resolve().parents[1]


def dense_inputs(rng, n=3, fan_in=4, fan_out=5):
    return [rng.standard_normal((n, fan_in)), rng.standard_normal((fan_in, fan_out)), rng.standard_normal(fan_out)]


# ------------------------------------------------------------------------------ the gallery of wrong backwards


def wrong_sign_backward(dy, cache):
    dx, dW, db = F.dense_backward(dy, cache)
    return -dx, dW, db


def bias_not_summed_backward(dy, cache):
    dx, dW, _ = F.dense_backward(dy, cache)
    return dx, dW, dy  # (N, out): one bias gradient per example instead of their sum


def bias_averaged_backward(dy, cache):
    dx, dW, _ = F.dense_backward(dy, cache)
    return dx, dW, dy.mean(axis=0)  # right shape, 1/N too small


def transposed_dW_backward(dy, cache):
    x, W = cache
    return dy @ W.T, dy.T @ x, dy.sum(axis=0)  # (out, in) instead of x.T @ dy (in, out)


def relu_backward_into_dout(dy, cache):
    dy *= cache > 0  # right values, but the caller's dout is gone
    return dy


def sigmoid_backward_into_cache(dy, cache):
    y = cache
    y *= 1 - y  # right values, but the forward's output (the cache) is overwritten
    return dy * y


def relu_forward_in_place(x):
    return F.relu_forward(x, out=x)


# ---------------------------------------------------------------------------------------- functional pairs


@pytest.mark.parametrize("forward, backward", [
    (F.dense_forward, F.dense_backward),
    (F.relu_forward, F.relu_backward),
    (F.sigmoid_forward, F.sigmoid_backward),
    (F.tanh_forward, F.tanh_backward),
], ids=["dense", "relu", "sigmoid", "tanh"])
def test_correct_pairs_pass_and_return_the_result(forward, backward, rng):
    inputs = dense_inputs(rng) if forward is F.dense_forward else [rng.standard_normal((3, 4))]
    before = [a.copy() for a in inputs]
    result = assert_backward_matches(forward, backward, inputs)
    assert result.ok and len(result.tensors) == len(inputs)
    for a, b in zip(inputs, before):
        np.testing.assert_array_equal(a, b)  # the check ran on copies


@given(z=logits(), data=binary_targets((1, 1)))
def test_bce_with_logits_passes_at_extreme_logits(z, data):
    y = np.broadcast_to(data, z.shape).copy()
    assert_backward_matches(F.bce_with_logits_forward, F.bce_with_logits_backward, [z, y], wrt=[0])


@given(pair=logits_and_labels())
def test_softmax_cross_entropy_passes_on_drawn_batches(pair):
    z, labels = pair
    assert_backward_matches(F.softmax_cross_entropy_forward, F.softmax_cross_entropy_backward, [z, labels])


def test_wrong_sign_is_caught_with_the_checkers_message(rng):
    with pytest.raises(AssertionError) as err:
        assert_backward_matches(F.dense_forward, wrong_sign_backward, dense_inputs(rng))
    assert isinstance(err.value, GradCheckError)
    result = err.value.result
    assert not result["dx"].passed and result["dW"].passed and result["db"].passed
    assert str(err.value) == result.failure_message()
    t = result["dx"]
    assert t.analytic == pytest.approx(-t.numeric, rel=1e-6)
    assert re.search(rf"tensor dx: worst element \({t.worst_index[0]}, {t.worst_index[1]}\): analytic -?[\d.]+, "
                     r"numeric -?[\d.]+, .* > tolerance [\d.e-]+", str(err.value))


def test_bias_not_summed_over_the_batch_is_caught_as_a_shape_failure(rng):
    with pytest.raises(AssertionError, match=r"db: analytic gradient has shape \(3, 5\), but the tensor has "
                                             r"shape \(5,\).*summed over the batch") as err:
        assert_backward_matches(F.dense_forward, bias_not_summed_backward, dense_inputs(rng))
    assert isinstance(err.value, BackwardOutputError) and isinstance(err.value, ValueError)


def test_a_batch_of_one_hides_an_averaged_bias_gradient_and_three_rows_show_it(rng):
    """Why the strategies draw batches of 1 *and* larger odd ones: with one row, mean and sum agree."""
    assert_backward_matches(F.dense_forward, bias_averaged_backward, dense_inputs(rng, n=1))
    with pytest.raises(GradCheckError, match="tensor db: worst element") as err:
        assert_backward_matches(F.dense_forward, bias_averaged_backward, dense_inputs(rng, n=3))
    t = err.value.result["db"]
    assert t.analytic == pytest.approx(t.numeric / 3, rel=1e-6)


def test_transposed_dW_is_caught_square_or_not(rng):
    with pytest.raises(BackwardOutputError, match=r"dW: analytic gradient has shape \(5, 4\)"):
        assert_backward_matches(F.dense_forward, transposed_dW_backward, dense_inputs(rng))
    with pytest.raises(GradCheckError) as err:  # square W: the shapes agree, the values do not
        assert_backward_matches(F.dense_forward, transposed_dW_backward, dense_inputs(rng, fan_in=4, fan_out=4))
    assert [t.name for t in err.value.result.tensors if not t.passed] == ["dW"]


def test_backward_writing_into_dout_is_caught(rng):
    with pytest.raises(MutationError, match=r"(?s)relu_backward_into_dout changed its arguments in place:\n"
                                             r"  dout: \d+ of 12 elements differ, first at \(\d, \d\)"):
        assert_backward_matches(F.relu_forward, relu_backward_into_dout, [rng.standard_normal((3, 4))])
    # the same through the helper for a single call, which leaves the correct backward alone
    y, cache = F.relu_forward(rng.standard_normal((3, 4)))
    dout = rng.standard_normal((3, 4))
    dx = assert_backward_no_mutation(F.relu_backward, dout, cache)
    np.testing.assert_array_equal(dx, dout * (y > 0))
    with pytest.raises(AssertionError, match="dout: "):
        assert_backward_no_mutation(relu_backward_into_dout, dout, cache)


def test_backward_writing_into_its_cache_is_caught(rng):
    x = rng.standard_normal((3, 4))
    with pytest.raises(AssertionError, match=r"  cache: \d+ of 12 elements differ"):
        assert_backward_matches(F.sigmoid_forward, sigmoid_backward_into_cache, [x])
    _, cache = F.dense_forward(*dense_inputs(rng)[:2])

    def dense_backward_scaling_x(dy, cache):
        cache[0][...] *= 2  # x, the caller's own input, sits in the cache
        return F.dense_backward(dy, cache)

    with pytest.raises(AssertionError, match=r"cache\[0\]: 12 of 12 elements differ"):
        assert_backward_no_mutation(dense_backward_scaling_x, rng.standard_normal((3, 5)), cache)


def test_forward_overwriting_its_input_is_caught_and_named(rng):
    x = rng.standard_normal((3, 4))
    x[0, 0] = -1.0
    with pytest.raises(AssertionError, match=r"relu_forward_in_place changed its arguments in place:\n"
                                             r"  x: \d+ of 12 elements differ, first at \(0, 0\): -1\.0 before the "
                                             r"call, 0\.0 after"):
        assert_no_mutation(relu_forward_in_place, x)
    y, _ = assert_no_mutation(F.relu_forward, x)  # the default form returns a new array
    np.testing.assert_array_equal(y, np.maximum(x, 0))
    with pytest.raises(AssertionError, match="  x: "):
        assert_backward_matches(relu_forward_in_place, F.relu_backward, [rng.standard_normal((3, 4))])


def test_no_mutation_looks_inside_containers_and_keyword_arguments():
    def scale_first(pair, *, extra):
        pair[0][1] *= 3
        extra["w"][0] = 7.0

    pair, extra = (np.ones(3), np.ones(2)), {"w": np.zeros(2)}
    with pytest.raises(AssertionError, match=r"(?s)pair\[0\]: 1 of 3 elements differ, first at \(1,\): 1\.0 "
                                             r"before the call, 3\.0 after.*extra\['w'\]: 1 of 2"):
        assert_no_mutation(scale_first, pair, extra=extra)


def test_mutation_checks_can_be_switched_off(rng):
    # the in-place forward still has the right gradient: only the mutation check objects to it
    assert_backward_matches(relu_forward_in_place, F.relu_backward, [rng.standard_normal((3, 4))],
                            check_mutation=False)


# ------------------------------------------------------------------------------------------------- modules


class DenseWithWrongDx(nn.Dense):
    """dW and db are right; dx forgets the transpose (it runs: W is square)."""

    def backward(self, dy, need_input_grad=True):
        x, W = self._pop_cache()
        self.W.accumulate(x.T @ dy)
        self.b.accumulate(dy.sum(axis=0))
        return dy @ W


class LeakyReLUIntoDout(nn.LeakyReLU):
    def backward(self, dy, need_input_grad=True):
        y, slope = self._pop_cache()
        dy *= np.where(y > 0, 1.0, slope)
        return dy


def test_correct_module_passes(rng):
    model = nn.Sequential(nn.Dense(4, 6, rng=rng), nn.LeakyReLU(0.2), nn.Dense(6, 2, rng=rng), nn.Tanh())
    before = [p.data.copy() for p in model.params()]
    result = assert_module_gradients(model, rng.standard_normal((5, 4)).astype(np.float32))
    assert [t.name.split(" ")[0] for t in result.tensors] == ["dx", "dW", "db", "dW", "db"]
    for p, b in zip(model.params(), before):
        np.testing.assert_array_equal(p.data, b)


def test_layer_with_a_wrong_dx_is_caught_and_named(rng):
    model = nn.Sequential(nn.Dense(3, 4, rng=rng), nn.Tanh(), DenseWithWrongDx(4, 4, rng=rng))
    with pytest.raises(AssertionError, match=r"tensor dx: worst element") as err:
        assert_module_gradients(model, rng.standard_normal((5, 3)))
    failed = [t.name for t in err.value.result.tensors if not t.passed]
    assert failed == ["dx", "dW [layer 0 Dense(3->4)]", "db [layer 0 Dense(3->4)]"]  # the layer below the bug


def test_module_writing_into_dout_is_caught(rng):
    model = nn.Sequential(nn.Dense(3, 4, rng=rng), LeakyReLUIntoDout(0.2))
    with pytest.raises(AssertionError, match=r"Sequential\(Dense\(3->4\), LeakyReLU\(0\.2\)\) \(forward, then "
                                             r"backward\) changed its arguments in place:\n  dout: "):
        assert_module_gradients(model, rng.standard_normal((5, 3)))


# ------------------------------------------------------------------------------------------------ strategies


@given(shape=shapes(2, 5, 3, 4))
def test_shapes_stay_in_range(shape):
    assert 2 <= shape[0] <= 5 and 3 <= shape[1] <= 4


def test_shapes_include_a_batch_of_one_and_odd_batches():
    assert find(shapes(), lambda s: s[0] == 1)[0] == 1
    assert find(shapes(), lambda s: s[0] > 1 and s[0] % 2 == 1)[0] == 3


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_arrays_have_the_dtype_and_the_bound(dtype):
    @given(a=arrays(dtype=dtype, bound=2.5))
    def check(a):
        assert a.dtype == dtype and a.ndim == 2 and np.all(np.abs(a) <= 2.5)

    check()


def test_logits_always_hold_an_extreme_value_and_mix_them():
    @given(z=logits(dtype=np.float32))
    def check(z):
        assert z.dtype == np.float32 and np.isin(np.abs(z), [40.0, 100.0]).any()
        assert np.all((np.abs(z) <= 5) | np.isin(np.abs(z), [40.0, 100.0]))

    check()
    assert find(logits(), lambda z: (z == 100).any() and (z == -40).any()) is not None  # mixed signs, sizes
    assert find(logits(), lambda z: (np.abs(z) < 5).any()) is not None  # moderate values beside extreme ones


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_probabilities_stay_away_from_0_and_1(dtype):
    @given(p=probabilities(dtype=dtype, margin=1e-3))
    def check(p):
        assert p.dtype == dtype and np.all((p >= 1e-3) & (p <= 1 - 1e-3))

    check()


@given(t=binary_targets((4, 1)), labels=class_labels(6, 3), pair=logits_and_labels(max_batch=4, max_classes=5))
def test_targets_and_labels(t, labels, pair):
    assert t.shape == (4, 1) and set(np.unique(t)) <= {0.0, 1.0}
    assert labels.shape == (6,) and labels.dtype == np.int64 and np.all((0 <= labels) & (labels < 3))
    z, y = pair
    assert 1 <= z.shape[0] <= 4 and 2 <= z.shape[1] <= 5 and y.shape == (z.shape[0],)
    assert np.all((0 <= y) & (y < z.shape[1]))


def test_import_works_without_hypothesis_and_a_strategy_says_what_to_install():
    code = ("import sys; sys.modules['hypothesis'] = None\n"
            "import minigan.testing as t\n"
            "try:\n    t.shapes()\nexcept ImportError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         env={"PYTHONPATH": str(ROOT), "PATH": ""}, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "need hypothesis, which is not installed: pip install hypothesis" in out.stdout


# ---------------------------------------------------------------------------------- the GAN step reference


def tiny_gan(loss="nonsaturating", dtype=np.float32, seed=0, gan_class=GAN, **options):
    r = np.random.default_rng(seed)
    G = nn.Sequential(nn.Dense(3, 6, rng=r), nn.LeakyReLU(0.2), nn.Dense(6, 4, rng=r), nn.Tanh())
    D = nn.Sequential(nn.Dense(4, 5, rng=r), nn.ReLU(), nn.Dense(5, 1, rng=r))
    G.to(dtype=dtype), D.to(dtype=dtype)
    return gan_class(G, D, optim.Adam(G.params(), 1e-3, (0.5, 0.999)), optim.Adam(D.params(), 2e-3, (0.5, 0.999)),
                     noise_dim=3, loss=loss, rng=seed, **options)


def batches(dtype=np.float32, steps=3, n=8):
    return np.random.default_rng(7).standard_normal((steps, n, 4)).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("loss", ["nonsaturating", "minimax"])
def test_reference_agrees_with_train_step(loss, dtype):
    gan = tiny_gan(loss, dtype)
    before = [p.data.copy() for p in gan.G.params() + gan.D.params()]
    history = assert_train_step_matches_reference(gan, batches(dtype))
    assert len(history) == 3 and set(history[0][0]) == set(history[0][1]) == {"d_loss", "g_loss", "d_real", "d_fake"}
    for p, b in zip(gan.G.params() + gan.D.params(), before):
        np.testing.assert_array_equal(p.data, b)  # the GAN handed in is left alone


def test_reference_agrees_mid_run_from_the_optimizers_state():
    gan = tiny_gan()
    for real in batches(steps=2):
        gan.train_step(real)
    assert_train_step_matches_reference(gan, batches(steps=2))


def test_plain_step_alone_follows_a_float64_run():
    gan = tiny_gan(dtype=np.float64)
    plain = PlainGAN.from_gan(gan)
    noise = np.random.default_rng(0)  # the GAN's own stream: z for the D step, then z for the G step
    for real in batches(np.float64):
        stats = gan.train_step(real)
        z_d, z_g = (noise.standard_normal((8, 3), dtype=np.float32).astype(np.float64) for _ in range(2))
        expected = plain.step(real, z_d, z_g)
        assert stats == pytest.approx(expected, rel=1e-10)
    for p, q in zip(gan.G.params() + gan.D.params(), plain.nets["G"].params + plain.nets["D"].params):
        np.testing.assert_allclose(p.data, q, rtol=1e-10, atol=1e-13)


def flipped_fake_term(logits, targets):
    """``L_D = -E[log D(x)] + E[log(1 - D(G(z)))]``: the fake term's sign flipped (D learns to *accept* fakes)."""
    n = len(logits) // 2
    real_loss, real_cache = F.bce_with_logits_forward(logits[:n], targets[:n])
    fake_loss, fake_cache = F.bce_with_logits_forward(logits[n:], targets[n:])
    dlogits = np.concatenate([F.bce_with_logits_backward(1.0, real_cache),
                              F.bce_with_logits_backward(-1.0, fake_cache)])
    return real_loss - fake_loss, dlogits


def test_reference_disagrees_with_a_flipped_fake_term_in_L_D(monkeypatch):
    monkeypatch.setattr(gan_module, "discriminator_loss", flipped_fake_term)
    with pytest.raises(AssertionError, match=r"(?s)differs from the plain-NumPy reference \(PlainGAN\) at step 1:"
                                             r"\n  d0\.W of D: \d+ of 20 elements differ.*d_loss: ") as err:
        assert_train_step_matches_reference(tiny_gan(), batches())
    assert "of G" not in str(err.value).split("after Adam")[0]  # the D gradients are named first


def test_reference_disagrees_with_the_saturating_generator_loss(monkeypatch):
    monkeypatch.setattr(gan_module, "generator_loss", lambda logits, kind: generator_loss(logits, "minimax"))
    with pytest.raises(AssertionError, match=r"(?s)d0\.W of G: .*g_loss: ") as err:
        assert_train_step_matches_reference(tiny_gan("nonsaturating"), batches())
    assert "of D" not in str(err.value)


class DMovesInTheGStep(GAN):
    def generator_gradients(self, z, noise=None):
        out = super().generator_gradients(z, noise)
        self.d_optimizer.step()  # a second D update with stale gradients: D must stay still here
        return out


def test_reference_catches_D_moving_during_the_G_update():
    with pytest.raises(AssertionError, match=r"D 0\.W after Adam: \d+ of 20 elements differ"):
        assert_train_step_matches_reference(tiny_gan(gan_class=DMovesInTheGStep), batches())


@pytest.mark.parametrize("option, value", [("pack", 2), ("label_smoothing", 0.1), ("d_steps", 2)])
def test_reference_refuses_what_it_does_not_cover(option, value):
    with pytest.raises(ValueError, match=f"PlainGAN covers the textbook step only; this GAN has {option}"):
        PlainGAN.from_gan(tiny_gan(**{option: value}))


# ------------------------------------------------------------------------------------------ the README file


def readme_examples() -> list[str]:
    """The python code blocks of the README's minigan.testing section."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Writing your own gradient tests: minigan.testing", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def test_readme_examples_run_under_pytest_and_a_wrong_backward_fails_readably(tmp_path):
    examples = readme_examples()
    assert len(examples) == 2 and len(examples[0].strip().splitlines()) <= 14  # the "ten-line" file stays short
    for i, code in enumerate(examples):
        (tmp_path / f"test_readme_{i}.py").write_text(code)
    (tmp_path / "test_wrong.py").write_text(
        "import numpy as np\nfrom minigan import functional as F\nfrom minigan.testing import assert_backward_matches"
        "\n\ndef wrong(dy, cache):\n    dx, dW, db = F.dense_backward(dy, cache)\n    return -dx, dW, db\n\n"
        "def test_wrong():\n    r = np.random.default_rng(0)\n"
        "    assert_backward_matches(F.dense_forward, wrong, [r.random((2, 3)), r.random((3, 2)), r.random(2)])\n")
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
                         capture_output=True, text=True, cwd=tmp_path, env={"PYTHONPATH": str(ROOT), "PATH": ""},
                         timeout=300)
    assert out.stdout.strip().splitlines()[-1].startswith("1 failed, 3 passed"), out.stdout + out.stderr
    assert "FAILED test_wrong.py::test_wrong" in out.stdout
    assert "tensor dx: worst element" in out.stdout  # the checker's message is the failure report
