"""Global settings: the default device, and two process settings made on import.

* Flush-to-zero for denormal floats (values below ~1.2e-38 in float32 become 0), as
  TensorFlow does by default: gradients that fade over hundreds of time steps otherwise
  become denormals, on which the CPU's RNN kernels run up to 10x slower. Set
  ``RNNKIT_FLUSH_DENORMAL=0`` to keep IEEE denormals.
* Freed memory is kept for reuse (glibc only). The CPU kernels allocate and free tens of
  MB of workspace per call; glibc serves blocks that large with fresh ``mmap`` pages and
  returns them on free, so every training step page-faults its workspace in again (an
  LSTM(32) at workload B's shape: 18,000 faults per call, 91 ms against 61 ms with memory
  kept; ``python -m benchmarks.allocator``). Raising glibc's mmap and trim thresholds to
  1 GiB makes it reuse that memory, as TensorFlow's and PyTorch's CUDA allocators do: the
  process keeps up to 1 GiB of freed memory. Set ``RNNKIT_KEEP_FREED_MEMORY=0`` to leave
  glibc's defaults.
"""
import ctypes
import ctypes.util
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


_GLIBC_M_TRIM_THRESHOLD, _GLIBC_M_MMAP_THRESHOLD = -1, -3
_KEPT_FREED_BYTES = 1 << 30


def _glibc_mallopt():
    """glibc's ``mallopt``, or None off glibc (musl and others number its options differently)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.gnu_get_libc_version
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return None
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return mallopt


def _keep_freed_memory_by_default():
    """True if glibc now keeps freed blocks below 1 GiB for reuse; False where that is off or not glibc."""
    mallopt = _glibc_mallopt()
    if mallopt is None or os.environ.get("RNNKIT_KEEP_FREED_MEMORY", "1") == "0":
        return False
    return bool(mallopt(_GLIBC_M_MMAP_THRESHOLD, _KEPT_FREED_BYTES) and
                mallopt(_GLIBC_M_TRIM_THRESHOLD, _KEPT_FREED_BYTES))


_flush_denormals_by_default()
KEEPS_FREED_MEMORY = _keep_freed_memory_by_default()
