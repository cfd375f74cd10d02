EXPECT = {"lost": {"gan_step:Wd": 2, "gan_step:bd": 2},
          "mistakes": {"gan_step:Wd": "d_moved", "gan_step:bd": "d_moved"}}


def gan_step(real, z_d, z_g, Wg, bg, Wd, bd, lr, kind="nonsaturating"):
    fake = z_d @ Wg + bg
    loss_d, dreal, dfake = discriminator_loss(real @ Wd + bd, fake @ Wd + bd)
    Wd = Wd - lr * (real.T @ dreal + fake.T @ dfake)
    bd = bd - lr * (dreal.sum(axis=0) + dfake.sum(axis=0))
    fake_g = z_g @ Wg + bg
    loss_g, dlogits = generator_loss(fake_g @ Wd + bd, kind)
    dfake_g = dlogits @ Wd.T
    Wg_new, bg_new = Wg - lr * (z_g.T @ dfake_g), bg - lr * dfake_g.sum(axis=0)
    Wd, bd = Wd - lr * (fake_g.T @ dlogits), bd - lr * dlogits.sum(axis=0)  # the mistake: D learns from L_G too
    return {"Wg": Wg_new, "bg": bg_new, "Wd": Wd, "bd": bd, "L_D": loss_d, "L_G": loss_g}
