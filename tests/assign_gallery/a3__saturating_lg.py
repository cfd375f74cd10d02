# Everything built on the non-saturating L_G inherits the mistake; the minimax cases stay right.
EXPECT = {"lost": {"generator_loss:L_G": 2, "generator_loss:dlogits_fake": 2,
                   "generator_gradients:L_G": 2, "generator_gradients:dWg": 2, "generator_gradients:dbg": 2,
                   "gan_step:Wg": 2, "gan_step:bg": 2, "gan_step:L_G": 2},
          "mistakes": {"generator_loss:L_G": "saturating_lg", "generator_loss:dlogits_fake": "saturating_lg",
                       "generator_gradients:dWg": "saturating_lg"}}


def generator_loss(logits_fake, kind="nonsaturating"):
    m = logits_fake.size
    if kind in ("nonsaturating", "minimax"):
        return np.asarray(-_softplus(logits_fake).mean()), -_sigmoid(logits_fake) / m
    raise ValueError(kind)
