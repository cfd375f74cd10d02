"""The GAN step: the whole-step gradient check, loss signs and values, determinism, options."""

import numpy as np
import pytest

from minigan import gan as gan_module
from minigan import models, nn, optim
from minigan.gan import GAN, discriminator_loss, generator_loss
from minigan.gradcheck import check_gan_step


def tiny_gan(loss="nonsaturating", pack=1, seed=0, **options):
    r = np.random.default_rng(seed)
    G = nn.Sequential(nn.Dense(3, 6, rng=r), nn.LeakyReLU(0.2), nn.Dense(6, 4, rng=r), nn.Tanh())
    D = nn.Sequential(nn.Dense(4 * pack, 5, rng=r), nn.LeakyReLU(0.2), nn.Dense(5, 1, rng=r))
    for p in G.params() + D.params():  # biases away from zero: no unit sits exactly at a kink
        if p.name == "b":
            p.data = r.standard_normal(p.shape).astype(np.float32) * 0.5
    return GAN(G, D, optim.Adam(G.params(), 1e-3), optim.Adam(D.params(), 1e-3), noise_dim=3, loss=loss,
               rng=seed, pack=pack, **options)


@pytest.mark.parametrize("loss", ["nonsaturating", "minimax"])
@pytest.mark.parametrize("options", [{}, {"pack": 2}, {"label_smoothing": 0.1, "instance_noise": 0.2}],
                         ids=["plain", "pack2", "smoothing+noise"])
def test_whole_step_gradients_match_finite_differences(loss, options):
    gan = tiny_gan(loss, **options)
    real = np.random.default_rng(1).standard_normal((6, 4)).astype(np.float32)
    result = check_gan_step(gan, real)
    names = [t.name for t in result.tensors]
    assert sum(n.startswith("dL_D/") for n in names) == 4 and sum(n.startswith("dL_G/") for n in names) == 4


def test_gan_gradcheck_catches_a_wrong_loss_sign(monkeypatch):
    """The bug many tutorials ship: the generator ascending its own loss."""

    def flipped(logits, kind="nonsaturating"):
        loss, dlogits = generator_loss(logits, kind)
        return loss, -dlogits

    monkeypatch.setattr(gan_module, "generator_loss", flipped)
    result = check_gan_step(tiny_gan(), np.zeros((4, 4), np.float32), raise_exception=False)
    assert not result.ok
    assert all(t.passed for t in result.tensors if t.name.startswith("dL_D/"))
    assert not any(t.passed for t in result.tensors if t.name.startswith("dL_G/dW"))


def test_discriminator_loss_is_the_sum_of_the_two_expectations():
    logits = np.array([[2.0], [-1.0], [0.5], [-3.0]])  # 2 real then 2 fake
    targets = np.array([[1.0], [1.0], [0.0], [0.0]])
    loss, dlogits = discriminator_loss(logits, targets)
    s = 1 / (1 + np.exp(-logits[:, 0]))
    expected = -np.mean(np.log(s[:2])) - np.mean(np.log(1 - s[2:]))
    assert float(loss) == pytest.approx(expected)
    np.testing.assert_allclose(dlogits[:, 0], (s - targets[:, 0]) / 2)  # d/dz of each half's mean


def test_generator_losses_have_the_textbook_values_and_slopes():
    logits = np.array([[-4.0], [0.0]])
    d = 1 / (1 + np.exp(-logits[:, 0]))
    ns, dns = generator_loss(logits, "nonsaturating")
    mm, dmm = generator_loss(logits, "minimax")
    assert float(ns) == pytest.approx(-np.mean(np.log(d)))
    assert float(mm) == pytest.approx(np.mean(np.log(1 - d)))
    # where D rejects a fake (logit -4), the minimax gradient has nearly vanished; the non-saturating one has not
    assert abs(dmm[0, 0]) < 0.01 < 0.4 < abs(dns[0, 0])
    with pytest.raises(ValueError, match="unknown generator loss 'wasserstein'"):
        generator_loss(logits, "wasserstein")


def test_train_step_returns_plain_floats_and_d_learns_to_tell_real_from_fake():
    G, D = models.build_models("toy", 2, rng=0)
    gan = GAN(G, D, optim.Adam(G.params(), 1e-4, (0.5, 0.999)), optim.Adam(D.params(), 1e-3, (0.5, 0.999)),
              noise_dim=8, rng=0)
    real = np.tile(np.array([[1.0, 1.0]], np.float32), (64, 1))
    stats = [gan.train_step(real + 0.01 * np.random.default_rng(k).standard_normal((64, 2), np.float32))
             for k in range(30)]
    assert set(stats[-1]) == {"d_loss", "g_loss", "d_real", "d_fake"}
    assert all(type(v) is float for v in stats[-1].values())
    assert stats[-1]["d_loss"] < stats[0]["d_loss"]
    assert stats[-1]["d_real"] > 0.5 > stats[-1]["d_fake"]


def test_same_seed_same_run_bit_for_bit():
    def run():
        gan = tiny_gan(seed=3)
        for k in range(5):
            gan.train_step(np.random.default_rng(k).standard_normal((8, 4)).astype(np.float32))
        return [p.data.copy() for p in gan.G.params() + gan.D.params()]

    for a, b in zip(run(), run()):
        np.testing.assert_array_equal(a, b)


def test_d_steps_takes_one_real_batch_per_discriminator_update():
    gan = tiny_gan(d_steps=2)
    batch = np.zeros((4, 4), np.float32)
    with pytest.raises(ValueError, match=r"needs 2 real batch\(es\)"):
        gan.train_step(batch)
    gan.train_step([batch, batch])
    assert gan.d_optimizer.state[gan.D.params()[0]]["step"] == 2
    assert gan.g_optimizer.state[gan.G.params()[0]]["step"] == 1


def test_frozen_discriminator_is_restored_after_the_generator_step():
    gan = tiny_gan()
    gan.train_step(np.zeros((4, 4), np.float32))
    assert all(p.requires_grad for p in gan.D.params())


def test_pack_must_divide_the_batch():
    with pytest.raises(ValueError, match="not a multiple of pack=2"):
        tiny_gan(pack=2).train_step(np.zeros((5, 4), np.float32))


def test_train_step_refuses_an_empty_batch():
    """An empty batch used to return NaN losses after a 'mean of empty slice' warning."""
    gan = tiny_gan()
    with pytest.raises(ValueError, match=r"real_batches\[0\] is empty \(shape \(0, 4\)\)"):
        gan.train_step(np.zeros((0, 4), np.float32))


@pytest.mark.parametrize("arch", models.ARCHS)
def test_no_bias_before_batch_norm(arch):
    """Batch norm subtracts the batch mean, so a bias just before it has a true gradient of exactly 0: float32
    rounding leaves ~1e-8 there, which Adam scales up to full-size steps. DCGAN practice: no bias before BN."""
    for net in models.build_models(arch, 2 if arch in ("toy", "pacgan") else 784, rng=0):
        layers = list(net)
        for layer, after in zip(layers, layers[1:]):
            if isinstance(after, nn.BatchNorm1d):
                assert isinstance(layer, nn.Dense) and layer.b is None, f"{arch}: {layer!r} before {after!r}"
