"""Masked mean over time: Embedding(mask_zero=True) -> LSTM(return_sequences=True) ->
``GlobalAveragePooling1D`` (averages only the real steps) -> Dense(softmax)."""
import numpy as np

VOCAB, STEPS, BATCH = 50, 9, 6


def build(K):
    inputs = K.Input(shape=(None,), dtype="int32")
    x = K.layers.Embedding(VOCAB, 8, mask_zero=True)(inputs)
    x = K.layers.LSTM(10, return_sequences=True)(x)
    pooled = K.layers.GlobalAveragePooling1D()(x)
    outputs = K.layers.Dense(4, activation="softmax")(pooled)
    model = K.Model(inputs, outputs)
    pooling = K.Model(inputs, pooled)
    return {"model": model, "pooling": pooling}


def _tokens(rng, n):
    x = rng.integers(1, VOCAB, (n, STEPS)).astype("int32")
    lengths = rng.integers(1, STEPS + 1, n)
    lengths[0] = STEPS
    x[np.arange(STEPS)[None, :] >= lengths[:, None]] = 0
    return x


def data(rng):
    x = _tokens(rng, BATCH)
    return {"model": x, "pooling": x}


def training(K):
    return {"loss": "sparse_categorical_crossentropy", "steps": 3}


def train_data(rng):
    return _tokens(rng, 8), rng.integers(0, 4, 8)
