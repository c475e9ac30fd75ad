"""Global settings: the default device, and flushing of denormal floats.

On import rnnkit turns on flush-to-zero for denormal floats (values below ~1.2e-38 in
float32 become 0), as TensorFlow does by default: gradients that fade over hundreds of
time steps otherwise become denormals, on which the CPU's RNN kernels run up to 10x
slower. Set ``RNNKIT_FLUSH_DENORMAL=0`` to keep IEEE denormals.
"""
import os

import torch

_device = None


def set_device(device):
    """Default device for models compiled without ``device=``: "cpu", "cuda", "cuda:1", or None (auto = cpu)."""
    global _device
    if device is not None:
        resolve_device(device)
    _device = device


def get_device():
    return _device or "cpu"


def resolve_device(device=None):
    """A ``torch.device``, with a clear error when CUDA is asked for but absent."""
    device = torch.device(device or get_device())
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError("device='cuda' was asked for, but PyTorch sees no CUDA GPU here. Use device='cpu'.")
        if device.index is None:  # the index tensors report, so device comparisons hold
            device = torch.device("cuda", torch.cuda.current_device())
    return device


def _flush_denormals_by_default():
    if os.environ.get("RNNKIT_FLUSH_DENORMAL", "1") != "0":
        torch.set_flush_denormal(True)


_flush_denormals_by_default()
