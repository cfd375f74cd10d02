# The step built on this L_D is wrong too: gan_step's D update (and so its G update) and L_D.
EXPECT = {"lost": {"discriminator_loss:L_D": 2, "discriminator_loss:dlogits_fake": 2,
                   "gan_step:Wd": 2, "gan_step:bd": 2, "gan_step:Wg": 2, "gan_step:bg": 2, "gan_step:L_D": 2,
                   "gan_step:L_G": 2},
          "mistakes": {"discriminator_loss:L_D": "ld_fake_sign", "discriminator_loss:dlogits_fake": "ld_fake_sign"},
          "message": "dL_D/dlogit on fake examples must be positive"}


def discriminator_loss(logits_real, logits_fake):
    loss = _softplus(-logits_real).mean() - _softplus(logits_fake).mean()
    return np.asarray(loss), (_sigmoid(logits_real) - 1) / logits_real.size, -_sigmoid(logits_fake) / logits_fake.size
