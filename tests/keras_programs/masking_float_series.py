"""Variable-length float series padded with zeros, skipped with ``Masking(mask_value=0.0)``
before stacked LSTMs (timeseries-forecasting style, trained with ``fit`` and validation)."""
import numpy as np

FEATURES, STEPS, BATCH = 4, 8, 6


def build(K):
    model = K.Sequential([
        K.Input(shape=(STEPS, FEATURES)),
        K.layers.Masking(mask_value=0.0),
        K.layers.LSTM(10, return_sequences=True),
        K.layers.LSTM(6),
        K.layers.Dense(1),
    ])
    return {"model": model}


def _series(rng, n):
    x = rng.standard_normal((n, STEPS, FEATURES)).astype("float32")
    lengths = rng.integers(2, STEPS + 1, n)
    lengths[0] = STEPS
    x[np.arange(STEPS)[None, :] < (STEPS - lengths)[:, None]] = 0.0  # left-padded
    x[1, 3] = 0.0  # a hole in the middle
    return x


def data(rng):
    return {"model": _series(rng, BATCH)}


def training(K):
    x_val, y_val = _series(np.random.default_rng(9), 4), np.linspace(-1, 1, 4, dtype="float32")[:, None]
    return {"loss": "mse", "fit": {"batch_size": 4, "epochs": 2, "validation_data": (x_val, y_val)}}


def train_data(rng):
    return _series(rng, 8), rng.standard_normal((8, 1)).astype("float32")
