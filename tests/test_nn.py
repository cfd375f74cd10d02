"""Modules: gradient checks of every layer, the cache discipline, accumulation, errors, saving, summary."""

import io

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minigan import functional as F
from minigan import nn
from minigan.backend import to_numpy
from minigan.gradcheck import check_module

from strategies import seeds, sizes


def _randomize_biases(model, r):
    """Zero biases put a ReLU network's hidden units exactly at kinks; random ones make every check count."""
    for p in model.params():
        if p.name == "b":
            p.data = r.standard_normal(p.shape).astype(p.data.dtype)
    return model


ACTIVATIONS = [nn.ReLU, nn.Sigmoid, nn.Tanh, lambda: nn.LeakyReLU(0.2)]


@given(n=sizes, fan_in=sizes, fan_out=sizes, seed=seeds, init=st.sampled_from(["glorot", "he", "normal"]))
def test_dense_module_gradients(backend_name, n, fan_in, fan_out, seed, init):
    r = np.random.default_rng(seed)
    layer = _randomize_biases(nn.Dense(fan_in, fan_out, rng=r, init=init), r).to(backend_name)
    x = r.standard_normal((n, fan_in)).astype(np.float32)
    result = check_module(layer, _dev(x, backend_name))
    assert [t.name for t in result.tensors] == ["dx", "dW", "db"]


def _dev(x, backend_name):
    from minigan.backend import to_device

    return to_device(x, backend_name)


@pytest.mark.parametrize("make", ACTIVATIONS, ids=["ReLU", "Sigmoid", "Tanh", "LeakyReLU"])
@given(n=sizes, f=sizes, seed=seeds)
def test_activation_module_gradients(backend_name, make, n, f, seed):
    x = np.random.default_rng(seed).standard_normal((n, f))
    check_module(make().to(backend_name), _dev(x, backend_name))


@given(n=sizes, widths=st.lists(sizes, min_size=2, max_size=4), seed=seeds)
def test_sequential_mlp_gradients(backend_name, n, widths, seed):
    r = np.random.default_rng(seed)
    layers = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        layers += [nn.Dense(a, b, rng=r), ACTIVATIONS[i % len(ACTIVATIONS)]()]
    model = _randomize_biases(nn.Sequential(*layers), r).to(backend_name)
    result = check_module(model, _dev(r.standard_normal((n, widths[0])), backend_name))
    assert len(result.tensors) == 1 + 2 * (len(widths) - 1)


def test_dense_fast_backward_equals_functional_reference(rng):
    layer = nn.Dense(5, 3, rng=rng)
    x, dy = rng.standard_normal((4, 5)).astype(np.float32), rng.standard_normal((4, 3)).astype(np.float32)
    layer.forward(x)
    dx = layer.backward(dy)
    ref_dx, ref_dW, ref_db = F.dense_backward(dy, (x, layer.W.data))
    np.testing.assert_array_equal(dx, ref_dx)
    np.testing.assert_array_equal(layer.W.grad, ref_dW)
    np.testing.assert_array_equal(layer.b.grad, ref_db)


def test_gradients_accumulate_until_zero_grad(rng):
    layer = nn.Dense(3, 2, rng=rng)
    x, dy = rng.standard_normal((4, 3)).astype(np.float32), rng.standard_normal((4, 2)).astype(np.float32)
    layer.forward(x)
    layer.backward(dy)
    once = layer.W.grad.copy()
    layer.forward(x)
    layer.backward(dy)
    np.testing.assert_allclose(layer.W.grad, 2 * once, rtol=1e-6)
    layer.zero_grad()
    assert layer.W.grad is None and layer.b.grad is None


def test_frozen_module_still_returns_dx_and_leaves_grads_alone(rng):
    model = nn.Sequential(nn.Dense(3, 4, rng=rng), nn.LeakyReLU(), nn.Dense(4, 1, rng=rng)).requires_grad_(False)
    x = rng.standard_normal((5, 3)).astype(np.float32)
    model.forward(x)
    dx = model.backward(np.ones((5, 1), np.float32))
    assert dx.shape == (5, 3) and dx.dtype == np.float32
    assert all(p.grad is None for p in model.params())


def test_need_input_grad_false_skips_dx_but_fills_param_grads(rng):
    model = nn.Sequential(nn.Dense(3, 4, rng=rng), nn.ReLU(), nn.Dense(4, 1, rng=rng))
    model.forward(rng.standard_normal((5, 3)).astype(np.float32))
    assert model.backward(np.ones((5, 1), np.float32), need_input_grad=False) is None
    assert all(p.grad is not None for p in model.params())


def test_backward_without_forward_is_an_error(rng):
    model = nn.Sequential(nn.Dense(3, 2, rng=rng), nn.ReLU())
    with pytest.raises(RuntimeError, match=r"layer 1 ReLU\(\): backward\(\) called without a matching forward"):
        model.backward(np.ones((1, 2), np.float32))
    model.forward(np.ones((1, 3), np.float32))
    model.backward(np.ones((1, 2), np.float32))
    with pytest.raises(RuntimeError, match="without a matching forward"):  # the cache was consumed
        model.backward(np.ones((1, 2), np.float32))


def test_wrong_input_shape_names_the_layer_and_expected_shape(rng):
    model = nn.Sequential(nn.Dense(784, 16, rng=rng), nn.ReLU(), nn.Dense(16, 1, rng=rng))
    with pytest.raises(ValueError, match=r"layer 0 Dense\(784->16\): expected input of shape \(batch, 784\), got \(8, 28, 28\)"):
        model.forward(np.zeros((8, 28, 28), np.float32))
    with pytest.raises(ValueError, match=r"layer 2 Dense\(16->1\)"):
        model[2].forward(np.zeros((8, 15), np.float32))


@pytest.mark.parametrize("dtype", [np.float64, np.uint8])
def test_wrong_input_dtype_is_refused_not_promoted(rng, dtype):
    with pytest.raises(TypeError, match=f"input dtype {np.dtype(dtype)} differs from the weights' float32"):
        nn.Dense(3, 2, rng=rng).forward(np.zeros((1, 3), dtype))


def test_float32_in_float32_out_and_grads(rng):
    model = nn.Sequential(nn.Dense(3, 4, rng=rng), nn.LeakyReLU(), nn.Dense(4, 2, rng=rng), nn.Tanh(),
                          nn.Dense(2, 1, rng=rng), nn.Sigmoid())
    y = model.forward(rng.standard_normal((5, 3)).astype(np.float32))
    dx = model.backward(np.ones_like(y))
    assert y.dtype == dx.dtype == np.float32
    assert all(p.grad.dtype == np.float32 and p.data.dtype == np.float32 for p in model.params())


def test_to_dtype_and_state_dict_round_trip(rng):
    model = nn.Sequential(nn.Dense(3, 4, rng=rng), nn.ReLU(), nn.Dense(4, 1, rng=rng))
    state = model.state_dict()
    assert sorted(state) == ["0.W", "0.b", "2.W", "2.b"]
    twin = nn.Sequential(nn.Dense(3, 4, rng=99), nn.ReLU(), nn.Dense(4, 1, rng=99))
    twin.load_state_dict(state)
    x = rng.standard_normal((2, 3)).astype(np.float32)
    np.testing.assert_array_equal(model.forward(x), twin.forward(x))
    assert model.to(dtype=np.float64).dtype == np.float64
    with pytest.raises(ValueError, match="missing"):
        twin.load_state_dict({"0.W": state["0.W"]})
    bad = dict(state, **{"2.W": np.zeros((5, 1), np.float32)})
    with pytest.raises(ValueError, match=r"'2.W': saved shape \(5, 1\) does not match the model's \(4, 1\)"):
        twin.load_state_dict(bad)


def test_initializers_are_seeded_and_scaled():
    a, b = nn.Dense(400, 300, rng=7), nn.Dense(400, 300, rng=7)
    np.testing.assert_array_equal(a.W.data, b.W.data)
    assert np.abs(a.W.data).max() <= np.sqrt(6 / 700) and a.W.data.std() == pytest.approx(np.sqrt(2 / 700), rel=0.02)
    assert nn.Dense(400, 300, rng=1, init="he").W.data.std() == pytest.approx(np.sqrt(2 / 400), rel=0.02)
    assert nn.Dense(400, 300, rng=1, init="normal").W.data.std() == pytest.approx(0.02, rel=0.02)
    assert not a.b.data.any()
    with pytest.raises(ValueError, match="unknown init"):
        nn.Dense(2, 2, init="xavier-ish")


def test_summary_lists_layers_shapes_and_counts(rng):
    out = io.StringIO()
    nn.Sequential(nn.Dense(100, 256, rng=rng), nn.ReLU(), nn.Dense(256, 784, rng=rng), nn.Sigmoid()).summary(file=out)
    text = out.getvalue()
    assert "0: Dense(100->256)" in text and "(1, 784)" in text and "25,856" in text and "201,488" in text
    assert "total params: 227,344 (trainable 227,344)" in text


def test_gpu_module_matches_numpy_twin(backend_name, rng):
    if backend_name != "cupy":
        pytest.skip("parity is a CuPy-vs-NumPy test")
    host = nn.Sequential(nn.Dense(20, 32, rng=1), nn.LeakyReLU(), nn.Dense(32, 1, rng=2), nn.Sigmoid())
    import copy

    device = copy.deepcopy(host).to("cupy")
    x = rng.standard_normal((16, 20)).astype(np.float32)
    y_host, y_dev = host.forward(x), device.forward(_dev(x, "cupy"))
    np.testing.assert_allclose(to_numpy(y_dev), y_host, rtol=1e-5, atol=1e-6)
    dy = np.ones_like(y_host)
    dx_host, dx_dev = host.backward(dy), device.backward(_dev(dy, "cupy"))
    np.testing.assert_allclose(to_numpy(dx_dev), dx_host, rtol=1e-4, atol=1e-6)
    for p, q in zip(host.params(), device.params()):
        np.testing.assert_allclose(to_numpy(q.grad), p.grad, rtol=1e-4, atol=1e-5)


# ====================================================================================================== BatchNorm1d


@given(n=st.integers(min_value=2, max_value=8), f=sizes, seed=seeds, training=st.booleans())
def test_batchnorm_module_gradients(backend_name, n, f, seed, training):
    r = np.random.default_rng(seed)
    bn = nn.BatchNorm1d(f)
    bn.gamma.data, bn.beta.data = r.standard_normal(f).astype(np.float32), r.standard_normal(f).astype(np.float32)
    bn.running_mean, bn.running_var = r.standard_normal(f).astype(np.float32), r.uniform(0.5, 2, f).astype(np.float32)
    bn.to(backend_name).train(training)
    result = check_module(bn, _dev(2 + 3 * r.standard_normal((n, f)), backend_name))
    assert [t.name for t in result.tensors] == ["dx", "dgamma", "dbeta"]


@given(n=st.integers(min_value=2, max_value=8), widths=st.lists(sizes, min_size=2, max_size=4), seed=seeds)
def test_sequential_with_batchnorm_gradients(backend_name, n, widths, seed):
    """The paper's generator block, Dense -> BatchNorm1d -> ReLU, stacked and checked as one function."""
    r = np.random.default_rng(seed)
    layers = []
    for a, b in zip(widths[:-2], widths[1:-1]):
        layers += [nn.Dense(a, b, rng=r), nn.BatchNorm1d(b), nn.ReLU()]
    layers.append(nn.Dense(widths[-2], widths[-1], rng=r))
    model = _randomize_biases(nn.Sequential(*layers), r).to(backend_name)
    check_module(model, _dev(r.standard_normal((n, widths[0])), backend_name))


def test_batchnorm_running_statistics_and_modes(rng):
    bn = nn.BatchNorm1d(3, momentum=0.25)
    x = (5 + 2 * rng.standard_normal((64, 3))).astype(np.float32)
    y = bn.forward(x)
    np.testing.assert_allclose(y.mean(axis=0), 0, atol=1e-5)  # training mode: the batch's own statistics
    np.testing.assert_allclose(y.var(axis=0), 1, rtol=1e-3)
    np.testing.assert_allclose(bn.running_mean, 0.25 * x.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(bn.running_var, 0.75 + 0.25 * x.var(axis=0, ddof=1), rtol=1e-5)
    assert bn.running_mean.dtype == bn.running_var.dtype == np.float32
    bn.eval()  # eval mode: running statistics, nothing updated, each row independent of the others
    before = bn.running_mean.copy()
    one = bn.forward(x[:1])
    np.testing.assert_allclose(one, (x[:1] - bn.running_mean) / np.sqrt(bn.running_var + bn.eps), rtol=1e-5)
    np.testing.assert_array_equal(bn.running_mean, before)
    np.testing.assert_allclose(bn.forward(x)[:1], one, rtol=1e-6)
    bn.train()
    with pytest.raises(ValueError, match="at least 2 rows"):
        bn.forward(x[:1])
    with pytest.raises(ValueError, match=r"expected input of shape \(batch, 3\)"):
        bn.forward(x[:, :2])


def test_batchnorm_buffers_are_saved_and_moved(rng):
    model = nn.Sequential(nn.Dense(3, 4, rng=rng), nn.BatchNorm1d(4), nn.ReLU(), nn.Dense(4, 1, rng=rng))
    model.forward(rng.standard_normal((8, 3)).astype(np.float32))
    state = model.state_dict()
    assert sorted(state) == ["0.W", "0.b", "1.beta", "1.gamma", "1.running_mean", "1.running_var", "3.W", "3.b"]
    twin = nn.Sequential(nn.Dense(3, 4, rng=9), nn.BatchNorm1d(4), nn.ReLU(), nn.Dense(4, 1, rng=9))
    twin.load_state_dict(state)
    np.testing.assert_array_equal(twin[1].running_var, model[1].running_var)
    x = rng.standard_normal((5, 3)).astype(np.float32)
    np.testing.assert_array_equal(model.eval().forward(x), twin.eval().forward(x))
    model.to(dtype=np.float64)
    assert model[1].running_mean.dtype == np.float64 and model[1].gamma.data.dtype == np.float64


def test_grad_norms_per_parameter_skip_frozen_and_empty(rng):
    model = nn.Sequential(nn.Dense(3, 4, rng=rng), nn.ReLU(), nn.Dense(4, 1, rng=rng))
    assert model.grad_norms() == {}  # no backward yet
    model[2].requires_grad_(False)
    model.forward(rng.standard_normal((5, 3)).astype(np.float32))
    model.backward(np.ones((5, 1), np.float32))
    norms = model.grad_norms()
    assert sorted(norms) == ["0.W", "0.b"]
    assert norms["0.W"] == pytest.approx(float(np.linalg.norm(model[0].W.grad)), rel=1e-6)
    assert norms["0.b"] == pytest.approx(float(np.linalg.norm(model[0].b.grad)), rel=1e-6)


class _AutoEncoder(nn.Module):
    """A student's own model: children are plain attributes, not a Sequential."""

    def __init__(self, seed=0):
        super().__init__()
        r = np.random.default_rng(seed)
        self.enc = nn.Dense(4, 2, rng=r)
        self.dec = nn.Dense(2, 4, rng=r)
        self.norms = [nn.BatchNorm1d(2)]


def test_state_dict_names_attribute_children_and_keeps_every_weight():
    """Two Dense children once both saved as 'W'/'b': half the weights were lost and loading did not complain."""
    model = _AutoEncoder(0)
    state = model.state_dict()
    assert sorted(state) == ["dec.W", "dec.b", "enc.W", "enc.b", "norms.0.beta", "norms.0.gamma",
                             "norms.0.running_mean", "norms.0.running_var"]
    assert len(model.params()) == 6 and model.num_params() == 4 * 2 + 2 + 2 * 4 + 4 + 2 + 2
    other = _AutoEncoder(1)
    other.load_state_dict(state)
    for name, value in other.state_dict().items():
        np.testing.assert_array_equal(value, state[name], err_msg=name)


def test_load_state_dict_refuses_collided_missing_and_unexpected_keys():
    model = _AutoEncoder(0)
    old_style = {"W": np.zeros((2, 4), np.float32), "b": np.zeros(4, np.float32)}  # what the collision saved
    with pytest.raises(ValueError, match=r"missing \['dec.W', 'dec.b', 'enc.W'.*unexpected \['W', 'b'\]"):
        model.load_state_dict(old_style)
    state = model.state_dict()
    state["enc.W"] = np.zeros((3, 3), np.float32)
    before = model.enc.W.data.copy()
    with pytest.raises(ValueError, match=r"'enc.W': saved shape \(3, 3\) does not match the model's \(4, 2\)"):
        model.load_state_dict(state)
    np.testing.assert_array_equal(model.enc.W.data, before)  # nothing half-loaded


def test_a_shared_layer_is_one_parameter_set():
    """A module used twice (tied weights) is listed once, so an optimizer never steps it twice."""
    shared = nn.Dense(3, 3, rng=0)
    model = nn.Sequential(shared, nn.ReLU(), shared)
    assert len(model.params()) == 2 and sorted(model.state_dict()) == ["0.W", "0.b"]


def test_dense_and_batchnorm_refuse_an_empty_batch():
    """A (0, k) batch used to pass through Dense without a word."""
    with pytest.raises(ValueError, match=r"Dense\(3->2\): empty batch \(input of shape \(0, 3\)\)"):
        nn.Dense(3, 2, rng=0).forward(np.zeros((0, 3), np.float32))
    with pytest.raises(ValueError, match=r"BatchNorm1d\(3\): empty batch"):
        nn.BatchNorm1d(3).eval().forward(np.zeros((0, 3), np.float32))
