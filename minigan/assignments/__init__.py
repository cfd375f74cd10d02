"""Classroom assignments: references with solution regions, student versions, an autograder with feedback.

``minigan assign make|check|grade|gradescope`` (see ``docs/teaching.md``). Each assignment is a reference file in
this package whose solution regions are marked ``### BEGIN SOLUTION`` / ``### END SOLUTION`` (nbgrader's syntax);
``make`` turns them into ``raise NotImplementedError(...)``. The checks live in ``checks.py``, the catalogue of
known mistakes in ``mistakes.py``, the grader in ``grader.py``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Assignment:
    name: str
    module: str  # the reference file (and the student file's expected name), without .py
    title: str


ASSIGNMENTS = {
    "a1": Assignment("a1", "a1_layers", "layers: dense, relu, leaky_relu, sigmoid, tanh (forward and backward)"),
    "a2": Assignment("a2", "a2_losses", "losses: bce_with_logits, bce, mse, softmax_cross_entropy"),
    "a3": Assignment("a3", "a3_gan_step", "the GAN step: L_D, L_G, the gradient through a frozen D, one step"),
    "a4": Assignment("a4", "a4_optimizers", "optimizers: SGD with momentum, Adam with bias correction"),
}
