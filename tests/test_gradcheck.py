"""The gradient checker is a tool of its own: it must catch real mistakes and say exactly where they are."""

import numpy as np
import pytest

from minigan import functional as F
from minigan import losses, nn
from minigan.gradcheck import GradCheckError, check_function, check_loss, check_module, relative_error


class MissingTranspose(nn.Dense):
    """A classic student bug: dx = dy @ W instead of dy @ W.T (it even runs, when W is square)."""

    def backward(self, dy, need_input_grad=True):
        x, W = self._pop_cache()
        self.W.accumulate(x.T @ dy)
        self.b.accumulate(dy.sum(axis=0))
        return dy @ W


class DroppedBiasGrad(nn.Dense):
    def backward(self, dy, need_input_grad=True):
        x, W = self._pop_cache()
        self.W.accumulate(x.T @ dy)
        return dy @ W.T


class OneWrongElement(nn.Dense):
    """dW is right except at (1, 2): the checker must point at that element."""

    def backward(self, dy, need_input_grad=True):
        dx = super().backward(dy, need_input_grad)
        self.W.grad[1, 2] += 0.5
        return dx


def test_missing_transpose_is_caught_and_named(rng):
    model = nn.Sequential(nn.Dense(4, 3, rng=rng), nn.Tanh(), MissingTranspose(3, 3, rng=rng))
    with pytest.raises(GradCheckError) as err:
        check_module(model, rng.standard_normal((5, 4)))
    msg = str(err.value)
    assert "gradient check failed for Sequential(" in msg
    # dx of the whole model is wrong, and so are the gradients of the layers below the bug
    assert "tensor dx:" in msg and "dW [layer 0 Dense(4->3)]" in msg
    assert "dW [layer 2" not in msg  # the buggy layer's own parameter gradients are right
    result = err.value.result
    assert not result["dx"].passed and result["dW [layer 2 Dense(3->3)]"].passed


def test_dropped_bias_gradient_is_caught_and_named(rng):
    with pytest.raises(GradCheckError, match=r"(?s)tensor db: worst element \(\d+,\).*produced no gradient \(None\)"):
        check_module(DroppedBiasGrad(3, 2, rng=rng), rng.standard_normal((4, 3)))


def test_message_names_the_tensor_and_the_worst_index_with_values(rng):
    with pytest.raises(GradCheckError) as err:
        check_module(OneWrongElement(3, 4, rng=rng), rng.standard_normal((5, 3)))
    msg = str(err.value)
    assert "tensor dW: worst element (1, 2): analytic" in msg and "numeric" in msg and "tolerance" in msg
    t = err.value.result["dW"]
    assert t.worst_index == (1, 2) and t.analytic - t.numeric == pytest.approx(0.5, abs=1e-6)
    assert err.value.result["dx"].passed and err.value.result["db"].passed


def test_large_tensor_error_outside_the_sampled_subset_is_caught_by_the_direction_check(rng):
    class Off(nn.Dense):
        def backward(self, dy, need_input_grad=True):
            dx = super().backward(dy, need_input_grad)
            self.W.grad += 1e-2  # a small bias on every element
            return dx

    result = check_module(Off(40, 30, rng=rng), rng.standard_normal((3, 40)), max_elements=8,
                          raise_exception=False)
    t = result["dW"]
    assert t.checked <= 8 and t.direction_error is not None and not t.passed


def test_wrong_loss_gradient_scale_is_caught(rng):
    class HalfGrad(losses.MSE):
        def backward(self, dloss=1.0):
            return 0.5 * super().backward(dloss)

    with pytest.raises(GradCheckError, match="tensor dpred"):
        check_loss(HalfGrad(), rng.standard_normal((3, 2)), rng.standard_normal((3, 2)))


def test_relu_at_exactly_zero_is_reported_as_a_kink_not_a_failure():
    x = np.array([[0.0, 1.0, -1.0, 0.0]])
    result = check_function(F.relu_forward, F.relu_backward, [x])
    t = result["dx"]
    assert result.ok and t.kinks == 2 and t.checked == 2


def test_relu_just_off_a_kink_is_checked_with_the_smaller_step():
    """0.3 eps from the kink: the eps step crosses it, the eps / 10 step does not and sees the true slope."""
    x = np.array([[3e-7, -3e-7, 0.5]])
    result = check_function(F.relu_forward, F.relu_backward, [x])
    assert result.ok and result["dx"].checked == 3 and result["dx"].kinks == 0


def _curved_forward(x):
    return 1000.0 * x**2, x


def _curved_backward(dy, x):
    return dy * 2000.0 * x


def _curved_backward_wrong(dy, x):
    return dy * 1900.0 * x


def test_strong_curvature_is_checked_not_mistaken_for_a_kink():
    """Near 0, f = 1000 x^2 has a small slope and f'' = 2000: its one-sided slopes differ by 2e-3 at eps = 1e-6, more
    than the tolerance, but it is smooth: every element is compared (and a wrong derivative is still caught)."""
    x = np.array([[1e-4, -2e-4, 0.0]])
    result = check_function(_curved_forward, _curved_backward, [x])
    assert result.ok and result["dx"].checked == 3 and result["dx"].kinks == 0
    with pytest.raises(GradCheckError):
        check_function(_curved_forward, _curved_backward_wrong, [x])


def test_result_lists_every_tensor_and_prints_a_table(rng):
    model = nn.Sequential(nn.Dense(3, 4, rng=rng), nn.Sigmoid(), nn.Dense(4, 2, rng=rng))
    result = check_module(model, rng.standard_normal((2, 3)))
    assert result.ok and bool(result)
    names = [t.name for t in result.tensors]
    assert names == ["dx", "dW [layer 0 Dense(3->4)]", "db [layer 0 Dense(3->4)]",
                     "dW [layer 2 Dense(4->2)]", "db [layer 2 Dense(4->2)]"]
    assert all(t.max_abs_error < 1e-7 for t in result.tensors)
    text = str(result)
    assert text.startswith("gradient check of Sequential(") and "passed" in text and "dW [layer 2" in text


def test_check_module_leaves_the_module_untouched(rng):
    layer = nn.Dense(3, 2, rng=rng)
    before = layer.W.data.copy()
    check_module(layer, rng.standard_normal((2, 3)).astype(np.float32))
    assert layer.W.data.dtype == np.float32 and np.array_equal(layer.W.data, before) and layer.W.grad is None


def test_raise_exception_false_returns_the_failed_result(rng):
    result = check_module(DroppedBiasGrad(2, 2, rng=rng), rng.standard_normal((3, 2)), raise_exception=False)
    assert not result.ok and "FAILED" in str(result)


def test_check_function_names_inputs_from_the_signature(rng):
    result = check_function(F.dense_forward, F.dense_backward,
                            [rng.standard_normal((2, 3)), rng.standard_normal((3, 2)), rng.standard_normal(2)])
    assert [t.name for t in result.tensors] == ["dx", "dW", "db"]


@pytest.mark.parametrize("offset", [0.0, 5.96e-8, 9e-8, 3e-9, -4e-8])
def test_leaky_relu_near_its_kink_is_never_a_false_failure(offset):
    """Hypothesis found 2**-24 (a kink 0.06 eps away, crossed by the eps/10 step too): such elements are kinks or
    checked with a step that does not cross, never compared with a difference that straddles the kink."""
    x = np.array([[offset]])
    result = check_function(lambda v: F.leaky_relu_forward(v, 0.5), F.leaky_relu_backward, [x])
    assert result.ok


@pytest.mark.parametrize("layout", ["transposed", "fortran", "strided"])
def test_non_contiguous_input_is_perturbed_where_it_is_read(layout):
    """The README's example with x stored transposed used to fail: the perturbation landed on a copy of x, the
    numeric gradient was 0, and a correct layer was failed."""
    rng = np.random.default_rng(0)
    model = nn.Sequential(nn.Dense(4, 8, rng=rng), nn.ReLU(), nn.Dense(8, 1, rng=rng))
    base = rng.standard_normal((16, 4)).astype(np.float32)
    x = {"transposed": np.ascontiguousarray(base.T).T, "fortran": np.asfortranarray(base),
         "strided": np.repeat(base, 2, axis=1)[:, ::2]}[layout]
    assert not x.flags.c_contiguous
    result = check_module(model, x)
    assert result["dx"].max_abs_error < 1e-6
    W = np.asfortranarray(rng.standard_normal((4, 3)))
    check_function(F.dense_forward, F.dense_backward, [base.astype(np.float64), W, np.zeros(3)])


def test_a_truly_zero_gradient_reads_as_a_small_relative_error():
    """A bias before batch norm has a true gradient of 0; both estimates are rounding noise, and the relative error
    used to print as 1.0 beside 'ok'. The denominator is floored at atol now."""
    rng = np.random.default_rng(0)
    model = nn.Sequential(nn.Dense(3, 4, rng=rng), nn.BatchNorm1d(4))
    model[0].b.data = rng.standard_normal(4).astype(np.float32)
    result = check_module(model, rng.standard_normal((6, 3)).astype(np.float32))
    db = result["db"]
    assert db.passed and db.max_abs_error < 1e-8 and db.max_rel_error < 1e-2
    assert relative_error(np.array([1e-10]), np.array([-1e-10]))[0] < 1e-4
    assert relative_error(np.array([2.0]), np.array([1.0]))[0] == 0.5  # above atol: CS231n's definition
