"""Test-wide settings: one torch thread (the tests use tiny tensors, where threading costs more
than it gives, and CI machines are small)."""
import torch

torch.set_num_threads(1)
