"""minigan: a from-scratch, autograd-free GAN engine on NumPy/CuPy, with every backward pass written by hand.

Two levels, like ``torch.nn.functional`` / ``torch.nn``:

* ``minigan.functional`` -- pure forward/backward pairs (``dense_forward``/``dense_backward``, ...);
* ``minigan.nn``, ``minigan.losses`` -- stateful modules that wrap them; ``minigan.optim`` -- SGD and Adam;

and around them ``minigan.gradcheck`` (finite-difference gradient checks), ``minigan.backend`` (the NumPy/CuPy
seam), ``minigan.gan`` (the training step) and ``minigan.data``.
"""

__version__ = "0.1.0"
