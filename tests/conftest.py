"""Test-wide settings: one torch thread (the tests use tiny tensors, where threading costs more
than it gives, and CI machines are small), and Keras on the torch backend for the tests that
compare with Keras (set before any test module imports keras)."""
import os

os.environ["KERAS_BACKEND"] = "torch"

import torch  # noqa: E402

torch.set_num_threads(1)
