"""Global settings: the default device."""
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
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device='cuda' was asked for, but PyTorch sees no CUDA GPU here. Use device='cpu'.")
    return device
