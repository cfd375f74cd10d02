"""Tutorial 2 -- a small network, a loss and an optimizer: the training loop every model shares.

Run: python tutorials/02_train_an_mlp.py

We teach a 2-layer MLP to tell points inside the unit circle from points outside. The loop is always:
    forward -> loss -> zero_grad -> backward -> optimizer step
"""

import os

import numpy as np

from minigan import gradcheck, losses, nn, optim

STEPS = int(os.environ.get("TUTORIAL_STEPS", 500))
rng = np.random.default_rng(0)
model = nn.Sequential(nn.Dense(2, 32, rng=rng, init="he"), nn.ReLU(), nn.Dense(32, 1, rng=rng))
model.summary()
loss_fn = losses.BCEWithLogits()  # the model outputs logits; the loss applies the sigmoid stably
opt = optim.Adam(model.params(), lr=1e-2)

for step in range(STEPS + 1):
    x = rng.uniform(-1.5, 1.5, size=(128, 2)).astype(np.float32)  # (128, 2)
    y = (np.sum(x * x, axis=1, keepdims=True) < 1).astype(np.float32)  # (128, 1): 1 inside the circle
    logits = model.forward(x)  # (128, 1)
    loss = loss_fn.forward(logits, y)
    model.zero_grad()
    model.backward(loss_fn.backward())  # dL/dlogits = (sigmoid(logits) - y) / 128, then back through the MLP
    opt.step()
    if step % 100 == 0:
        accuracy = np.mean((logits > 0) == (y > 0.5))
        print(f"step {step:4d}  loss {float(loss):.3f}  accuracy {accuracy:.2f}")

# The whole model's gradients, checked in float64 against finite differences:
print(gradcheck.check_module(model, x[:8]))
