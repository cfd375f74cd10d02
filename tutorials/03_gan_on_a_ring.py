"""Tutorial 3 -- a GAN on eight Gaussians in a ring: watch the generator find the modes.

Run: python tutorials/03_gan_on_a_ring.py   (writes ring.png)

The discriminator D learns to score real points high and generated ones low:
    L_D = -E[log D(x)] - E[log(1 - D(G(z)))]
and the generator G learns to make D score its points high (the non-saturating loss):
    L_G = -E[log D(G(z))]
minigan.gan.GAN.train_step does one D update and one G update; read its source next to this file.
"""

import os

import numpy as np

from minigan import data, gan, gradcheck, models, optim, plot

STEPS = int(os.environ.get("TUTORIAL_STEPS", 3000))
ring = data.get_dataset("ring8", seed=0)
G, D = models.build_models("toy", data_dim=2, rng=0, pack=2)  # D judges pairs of samples (PacGAN)
model = gan.GAN(G, D, optim.Adam(G.params(), 1e-4, (0.5, 0.999)), optim.Adam(D.params(), 1e-4, (0.5, 0.999)),
                noise_dim=models.NOISE_DIM["toy"], rng=0, pack=2)

# Before training: check that every gradient of the step is right, end to end (on a small batch).
print(gradcheck.check_gan_step(model, ring.batch(0, 8), max_elements=16))

for step in range(STEPS):
    stats = model.train_step(ring.batch(step, 256))
    if step % 500 == 0:
        print(f"step {step:5d}  L_D {stats['d_loss']:.3f}  L_G {stats['g_loss']:.3f}  "
              f"D(x) {stats['d_real']:.2f}  D(G(z)) {stats['d_fake']:.2f}")

samples = model.generate(2500)
plot.save_scatter(samples, "ring.png", modes=ring.modes, title=f"after {STEPS} steps")
print("wrote ring.png")
