"""check_gan_step checks the objective, not only self-consistency: a step whose loss is wrong in value AND gradient
(so every finite difference agrees with its backward) must fail, and the message must name the wrong term."""

import numpy as np
import pytest

from minigan import functional as F
from minigan import gan as gan_module
from minigan.gan import GAN
from minigan.gradcheck import GradCheckError, check_gan_step
from test_gan import tiny_gan  # the small GAN whose step the other GAN tests check

REAL = np.random.default_rng(1).standard_normal((6, 4)).astype(np.float32)
RIGHT_D_LOSS, RIGHT_G_LOSS = gan_module.discriminator_loss, gan_module.generator_loss


# --------------------------------------------------------------- four wrong objectives, each self-consistent
def flipped_fake_term(logits, targets):
    """The classic tutorial's L_D = -E[log D(x)] + E[log(1 - D(G(z)))], with its own (matching) gradient."""
    n = logits.shape[0] // 2
    real_loss, real_cache = F.bce_with_logits_forward(logits[:n], targets[:n])
    fake_loss, fake_cache = F.bce_with_logits_forward(logits[n:], targets[n:])
    dlogits = np.concatenate([F.bce_with_logits_backward(1.0, real_cache),
                              F.bce_with_logits_backward(-1.0, fake_cache)])
    return real_loss - fake_loss, dlogits


def swapped_targets(logits, targets):
    """Real rows labelled 0 and fake rows labelled 1."""
    return RIGHT_D_LOSS(logits, targets[::-1].copy())


def missing_factor_two(logits, targets):
    """The BCE mean over the stacked batch, not the sum of the two halves' means."""
    mean_bce, cache = F.bce_with_logits_forward(logits, targets)
    return mean_bce, F.bce_with_logits_backward(1.0, cache)


def generator_toward_target_zero(logits_fake, kind="nonsaturating"):
    """BCE of G's fakes against the fake label 0: G learns to look fake."""
    loss, cache = F.bce_with_logits_forward(logits_fake, np.zeros_like(logits_fake))
    return loss, F.bce_with_logits_backward(1.0, cache)


def minimax_where_nonsaturating_asked(logits_fake, kind="nonsaturating"):
    return RIGHT_G_LOSS(logits_fake, "minimax")


WRONG = [
    ("discriminator_loss", flipped_fake_term, {}, "L_D's fake term has the wrong sign"),
    ("discriminator_loss", swapped_targets, {}, "real and fake targets swapped"),
    ("discriminator_loss", missing_factor_two, {}, "L_D is half the textbook value (missing factor 2"),
    ("generator_loss", generator_toward_target_zero, {}, "L_G trains G toward target 0"),
    ("generator_loss", minimax_where_nonsaturating_asked, {}, "L_G is the saturating minimax"),
    ("discriminator_loss", flipped_fake_term, {"pack": 2, "label_smoothing": 0.1},
     "L_D's fake term has the wrong sign"),
]


@pytest.mark.parametrize("attr, wrong, options, named", WRONG,
                         ids=["flipped-fake-sign", "swapped-targets", "missing-factor-2", "G-toward-0",
                              "minimax-for-nonsaturating", "flipped-fake-sign-pack2-smoothing"])
def test_a_wrong_but_self_consistent_objective_is_caught_and_named(monkeypatch, attr, wrong, options, named):
    monkeypatch.setattr(gan_module, attr, wrong)
    gan = tiny_gan(**options)
    with pytest.raises(GradCheckError) as err:
        check_gan_step(gan, REAL)
    msg = str(err.value)
    assert named in msg, msg
    result = err.value.result
    which = "L_D" if attr == "discriminator_loss" else "L_G"
    failed = [o.name for o in result.objectives if not o.passed]
    assert failed == [which], msg
    # the wrong loss's backward is right for the wrong loss: the gradients disagree with the textbook objective too
    assert not all(t.passed for t in result.tensors if t.name.startswith(f"d{which}/"))


class GeneratorAscendingItsLoss(GAN):
    """A subclass whose G step reports -L_G and descends it: G pushes D(G(z)) down."""

    def generator_gradients(self, z, noise=None):
        fake = self.G.forward(z)
        logits = self.D.forward(gan_module.pack(fake, self.pack))
        loss, dlogits = RIGHT_G_LOSS(logits, self.loss)
        self.G.backward(self.D.backward(-dlogits).reshape(fake.shape), need_input_grad=False)
        return {"g_loss": -loss}


def test_a_subclass_with_a_flipped_generator_loss_is_caught_and_named():
    base = tiny_gan()
    wrong = GeneratorAscendingItsLoss(base.G, base.D, base.g_optimizer, base.d_optimizer, noise_dim=3, rng=0)
    result = check_gan_step(wrong, REAL, raise_exception=False)
    assert not result.ok and [o.name for o in result.objectives if not o.passed] == ["L_G"]
    assert "L_G has the wrong sign" in result.failure_message()


def test_a_wrong_value_with_right_gradients_is_caught_by_the_value_comparison(monkeypatch):
    def off_by_one(logits, targets):
        loss, dlogits = RIGHT_D_LOSS(logits, targets)
        return loss + 1.0, dlogits

    monkeypatch.setattr(gan_module, "discriminator_loss", off_by_one)
    result = check_gan_step(tiny_gan(), REAL, raise_exception=False)
    assert all(t.passed for t in result.tensors)  # the gradients are those of the textbook L_D
    (l_d, l_g) = result.objectives
    assert not l_d.passed and l_g.passed
    assert "L_D is not the textbook objective" in result.failure_message()


@pytest.mark.parametrize("loss", ["nonsaturating", "minimax"])
@pytest.mark.parametrize("options", [{}, {"pack": 2}, {"label_smoothing": 0.1}, {"label_smoothing": 0.2, "pack": 2,
                                                                                 "instance_noise": 0.1}],
                         ids=["plain", "pack2", "smoothing", "smoothing+pack2+noise"])
def test_the_correct_step_passes_and_matches_the_textbook_values(loss, options):
    result = check_gan_step(tiny_gan(loss, **options), REAL)
    l_d, l_g = result.objectives
    assert l_d.passed and l_g.passed and l_d.diagnosis == l_g.diagnosis == ""
    assert l_d.step_value == pytest.approx(l_d.textbook_value, rel=1e-9)
    assert l_d.textbook_value == pytest.approx(l_d.terms["real term"] + l_d.terms["fake term"])
    expected_g = l_g.terms["-E[log D(G(z))]"] if loss == "nonsaturating" else l_g.terms["E[log(1 - D(G(z)))]"]
    assert l_g.textbook_value == pytest.approx(expected_g)
    assert "L_D = " in str(result) and "ok" in str(result)


def test_the_textbook_terms_are_the_formulas_from_the_logits():
    """The independent computation itself, against log(sigmoid) written out (safe at these moderate logits)."""
    gan = tiny_gan(label_smoothing=0.1)
    result = check_gan_step(gan, REAL)
    r = np.random.default_rng(0)  # the checker draws z_d first from its seeded generator
    z_d = r.standard_normal((6, 3))
    G, D = (m.to(dtype="float64") for m in (gan.G, gan.D))
    logits = D.forward(np.concatenate([REAL.astype(np.float64), G.forward(z_d)]))[:, 0]
    d = 1 / (1 + np.exp(-logits))
    real_term = -np.mean(0.9 * np.log(d[:6]) + 0.1 * np.log(1 - d[:6]))
    fake_term = -np.mean(np.log(1 - d[6:]))
    assert result.objectives[0].terms["real term"] == pytest.approx(real_term, rel=1e-12)
    assert result.objectives[0].terms["fake term"] == pytest.approx(fake_term, rel=1e-12)
