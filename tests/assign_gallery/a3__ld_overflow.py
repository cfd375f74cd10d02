EXPECT = {"lost": {"discriminator_loss:L_D": 2}, "mistakes": {"discriminator_loss:L_D": "overflow"}}


def discriminator_loss(logits_real, logits_fake):
    d_real, d_fake = 1 / (1 + np.exp(-logits_real)), 1 / (1 + np.exp(-logits_fake))
    loss = -np.mean(np.log(d_real)) - np.mean(np.log(1 - d_fake))
    return np.asarray(loss), (_sigmoid(logits_real) - 1) / logits_real.size, _sigmoid(logits_fake) / logits_fake.size
