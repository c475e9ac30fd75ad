"""CUDA check: cuDNN fast path equals the reference path on the GPU, and fit/predict run there.

    python -m benchmarks.cuda_check

Prints one line per check and exits non-zero on the first mismatch. Needs a CUDA GPU.
"""
import sys

import numpy as np
import torch

import rnnkit
from rnnkit import fused
from rnnkit.layers import GRU, LSTM, Bidirectional, Dense, Embedding, SimpleRNN


def compare(make, x, mask=None, name=""):
    fast, slow = make(), make()
    fast(x[:1].float() if x.is_floating_point() else x[:1].float())
    slow(x[:1].float())
    slow.set_weights(fast.get_weights())
    for layer in (fast, slow):
        layer.to("cuda")
    for inner in _recurrent(slow):
        inner.use_fused = False
    xf = x.float().requires_grad_(True)
    xs = x.float().clone().requires_grad_(True)
    out_f = fast(xf, mask=mask)
    out_s = slow(xs, mask=mask)
    probe = torch.randn_like(out_f)
    (out_f * probe).sum().backward()
    (out_s * probe).sum().backward()
    err = (out_f - out_s).abs().max().item()
    grad = max((a.grad - b.grad).abs().max().item() for a, b in zip(fast.weights, slow.weights))
    path = getattr(fast, "execution_path", None) or _recurrent(fast)[0].execution_path
    ok = err < 1e-4 and grad < 1e-3
    print(f"{'ok ' if ok else 'BAD'} {name:40s} max|out diff| {err:.2e}  max|grad diff| {grad:.2e}  path: {path}")
    return ok


def _recurrent(layer):
    return [m for m in layer.modules() if isinstance(m, rnnkit.layers.RecurrentLayer)]


def main():
    if not torch.cuda.is_available():
        print("no CUDA GPU visible")
        return 2
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name()}")
    torch.manual_seed(0)
    x = torch.randn(16, 40, 8, device="cuda")
    lengths = torch.randint(5, 41, (16,), device="cuda")
    right = torch.arange(40, device="cuda")[None] < lengths[:, None]
    left = right.flip(1)
    checks = []
    for kind in (SimpleRNN, LSTM, GRU):
        for rs in (True, False):
            for mask_name, mask in (("no mask", None), ("right-padded", right), ("left-padded", left)):
                checks.append(compare(lambda: kind(32, return_sequences=rs), x, mask,
                                      f"{kind.__name__} seq={rs} {mask_name}"))
        checks.append(compare(lambda: Bidirectional(kind(32, return_sequences=True)), x, right,
                              f"Bidirectional({kind.__name__}) right-padded"))
        checks.append(compare(lambda: Bidirectional(kind(32)), x, None, f"Bidirectional({kind.__name__}) no mask"))
        checks.append(compare(lambda: kind(32, use_bias=False), x, None, f"{kind.__name__} use_bias=False"))
    layouts = fused._CUDNN_LAYOUTS
    print(f"cuDNN weights as views of one buffer (no per-call copy): "
          f"{sum(v is not None for v in layouts.values())} of {len(layouts)} layer configurations")
    for key, layout in layouts.items():
        print(f"  {key[0]} bidirectional={key[4]} shapes={[tuple(s) for s in key[3]]}: "
              f"{'offsets %s, buffer %d' % layout if layout else 'no usable layout'}")
    # fit / predict / bf16 on the GPU
    tokens = np.random.default_rng(0).integers(1, 1000, size=(512, 60))
    labels = (tokens[:, 0] > 500).astype("float32")
    model = rnnkit.Sequential([Embedding(1000, 32, mask_zero=True), Bidirectional(LSTM(32)), Dense(1, "sigmoid")])
    model.compile("adam", "binary_crossentropy", metrics=["accuracy"], device="cuda", mixed_precision="bf16")
    history = model.fit(tokens, labels, epochs=3, batch_size=64, verbose=0)
    print(f"fit on cuda with bf16: loss {history.history['loss'][0]:.4f} -> {history.history['loss'][-1]:.4f}, "
          f"path {model.layers[1].execution_path}, predict shape {model.predict(tokens).shape}")
    return 0 if all(checks) else 1


if __name__ == "__main__":
    sys.exit(main())
