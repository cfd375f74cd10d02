"""Tutorial 4 -- a GAN that draws digits, with the same pieces as tutorial 3.

Run: python tutorials/04_gan_draws_digits.py   (writes digits.png; about two minutes on a laptop)

The only differences from the ring: images are 784-dimensional, the generator ends in tanh so its pixels live
in [-1, 1] like the scaled data, and the networks are wider. This is what `minigan train` runs by default.
"""

import os

import numpy as np

from minigan import data, gan, models, optim, plot

STEPS = int(os.environ.get("TUTORIAL_STEPS", 3000))
digits = data.get_dataset("digits", scale="tanh", seed=0)  # 10,000 MNIST digits bundled with minigan
G, D = models.build_models("mlp", data_dim=784, rng=0)
G.summary()
D.summary()
betas = (0.5, 0.999)  # DCGAN's Adam setting: less momentum keeps the two players from overshooting
model = gan.GAN(G, D, optim.Adam(G.params(), 2e-4, betas), optim.Adam(D.params(), 2e-4, betas),
                noise_dim=100, rng=0)

fixed_z = model.sample_noise(64)  # the same noise each time, so the pictures show G changing
for step in range(STEPS):
    stats = model.train_step(digits.batch(step, 64))
    if step % 250 == 0:
        print(f"step {step:5d}  D(x) {stats['d_real']:.2f}  D(G(z)) {stats['d_fake']:.2f}")

plot.save_image_grid(digits.to_images(model.generate(z=fixed_z)), "digits.png", title=f"step {STEPS}")
print("wrote digits.png")
