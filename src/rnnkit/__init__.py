"""rnnkit: Keras's recurrent-network API on PyTorch, with fused kernels and real applications.

    import rnnkit
    from rnnkit.layers import Embedding, SimpleRNN
    model = rnnkit.Sequential([Embedding(10000, 32), SimpleRNN(32)])
    model.summary()
"""
from ._version import __version__

from . import callbacks, config, datasets, layers, losses, metrics, models, optimizers, saving, text, utils
from . import backend, constraints, data, initializers, ops, preprocessing, random, regularizers
from .layers import Input, Layer
from .models import Functional, Model, Sequential
from .saving import load_model, save_model

__all__ = ["Functional", "Input", "Layer", "Model", "Sequential", "load_model", "save_model", "callbacks", "config",
           "layers", "losses", "metrics", "models", "optimizers", "datasets", "saving", "text", "utils",
           "__version__"]
__all__ += ["backend", "constraints", "data", "initializers", "ops", "preprocessing", "random", "regularizers"]
