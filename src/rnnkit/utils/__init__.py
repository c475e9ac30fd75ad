"""Utilities with Keras's names: seeds, padding, one-hot, time-series windows, progress bars."""
import random

import numpy as np
import torch

from .._naming import clear_session
from .progbar import Progbar
from .sequences import pad_sequences, to_categorical
from .timeseries import timeseries_dataset_from_array


def set_random_seed(seed):
    """Seed Python, NumPy and PyTorch so runs repeat exactly (on the same device)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


__all__ = ["Progbar", "clear_session", "pad_sequences", "set_random_seed", "timeseries_dataset_from_array",
           "to_categorical"]
