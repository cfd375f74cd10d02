"""The catalogue of known mistakes the grader recognises, each with the lesson that teaches the idea.

A mistake is *named* in feedback only when the value it predicts (computed from the reference on the same inputs)
explains every failing element of a tensor; otherwise the feedback shows the worst element and says nothing more.
Messages describe the mistake in words, never with the reference's code.
"""

from __future__ import annotations

LESSONS = {
    "dense": "tutorials/01_dense_layer.py",
    "activations": "tutorials/02_activations.py",
    "bce": "tutorials/03_stable_bce.py",
    "gradcheck": "tutorials/04_gradient_checking.py",
    "mlp": "tutorials/05_training_an_mlp.py",
    "gan_losses": "tutorials/06_gan_losses.py",
    "gan_step": "tutorials/07_gan_step_by_hand.py",
}

# key -> (short name, explanation, lesson)
CATALOGUE = {
    "sign": ("sign flipped",
             "every failing value is the expected one with the opposite sign: a gradient points uphill, so check "
             "the sign of each term (the loss is descended, d(-f) = -df)", "gradcheck"),
    "batch_size": ("off by the batch size",
                   "every failing value is the expected one multiplied or divided by the batch size (or the number "
                   "of elements): the 1/N of the mean belongs in exactly one place, the loss's backward", "dense"),
    "transposed": ("transposed",
                   "your array is the transpose of the expected one (as dy.T @ x would give): dW must have W's "
                   "shape (in, out), so order the product so that its shape comes out that way", "dense"),
    "not_summed": ("not summed over the batch",
                   "summing your array over the batch axis gives the expected one: a parameter shared by every "
                   "example collects the gradient of every example, so db is dy summed over axis 0", "dense"),
    "sigmoid_from_input": ("sigmoid's derivative taken from the input instead of the output",
                           "the cache holds the OUTPUT y = sigmoid(x), and the sigmoid's derivative can be written "
                           "with y alone. You applied the sigmoid to y again, as if the cache held x", "activations"),
    "tanh_from_input": ("tanh's derivative taken from the input instead of the output",
                        "the cache holds the OUTPUT y = tanh(x), and tanh's derivative can be written with y "
                        "alone. You applied tanh to y again, as if the cache held x", "activations"),
    "relu_at_zero": ("ReLU mask at exactly 0 (a convention)",
                     "at x == 0 exactly, ReLU has no derivative; minigan (like every framework) uses the "
                     "subgradient 0 there, you use another value in [slope, 1]. Reported, not marked wrong",
                     "activations"),
    "relu_mask_always_on": ("ReLU mask that is always on",
                            "the cache holds the output y = max(x, 0), which is never negative, so a mask y >= 0 "
                            "lets every gradient through; the units that were off (y == 0) must pass none",
                            "activations"),
    "dout_in_place": ("the caller's dout edited in place",
                      "your backward pass changed the dout array it was given (e.g. dout *= ...). The caller may "
                      "still need it; compute into a new array", "activations"),
    "cache_in_place": ("the cache edited in place",
                       "your function changed an array of the cache it was given; the backward pass must leave the "
                       "cache as it found it (copy before editing)", "activations"),
    "input_in_place": ("an input edited in place",
                       "your function changed one of its input arrays; return new arrays instead", "dense"),
    "overflow": ("log(1 - sigmoid(z)) overflowing",
                 "for a large logit sigmoid(z) rounds to exactly 1.0, so log(1 - sigmoid(z)) is log(0) = -inf and "
                 "the loss is inf or NaN. Work from the logit: -log(1 - sigmoid(z)) = softplus(z), "
                 "-log sigmoid(z) = softplus(-z)", "bce"),
    "ld_fake_sign": ("flipped sign of L_D's fake term",
                     "L_D = -mean(log D(x)) - mean(log(1 - D(G(z)))): BOTH terms carry a minus sign. Yours adds the "
                     "fake term with the wrong sign, so D would learn to call the fakes real", "gan_losses"),
    "saturating_lg": ("saturating L_G where the non-saturating one was asked",
                      "you computed the minimax loss mean(log(1 - D(G(z)))), whose gradient vanishes when D rejects "
                      "the fakes. The non-saturating loss is -mean(log D(G(z)))", "gan_losses"),
    "d_moved": ("D's weights moved during the G update",
                "the generator's step must leave the discriminator's parameters alone: D is frozen while G learns "
                "(its gradients flow through D to G, but D is not updated)", "gan_step"),
    "no_bias_correction": ("Adam without bias correction",
                           "m and v start at 0, so early on they are too small by the factors (1 - beta1**t) and "
                           "(1 - beta2**t); divide each by its factor before the update", "mlp"),
}


def describe(key: str) -> str:
    """``mistake: <name> -- <explanation> (lesson: <file>)``."""
    name, explanation, lesson = CATALOGUE[key]
    return f"likely mistake: {name} -- {explanation} (see {LESSONS[lesson]})"
