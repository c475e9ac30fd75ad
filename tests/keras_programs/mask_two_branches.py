"""Masking through a graph: one ``Embedding(mask_zero=True)`` feeds an LSTM branch and a
backwards GRU branch; ``concatenate`` merges the sequences (and their masks) for a final
LSTM, and a pooled branch joins at the head."""
import numpy as np

VOCAB, STEPS, BATCH = 30, 9, 6


def build(K):
    tokens = K.Input(shape=(STEPS,), dtype="int32", name="tokens")
    embedded = K.layers.Embedding(VOCAB, 8, mask_zero=True, name="embedding")(tokens)
    forward = K.layers.LSTM(6, return_sequences=True, name="forward_branch")(embedded)
    backward = K.layers.GRU(5, return_sequences=True, go_backwards=True, name="backward_branch")(embedded)
    merged = K.layers.concatenate([forward, backward], name="merged")
    summary = K.layers.LSTM(7, name="summary")(merged)
    pooled = K.layers.GlobalAveragePooling1D(name="pooled")(forward)
    outputs = K.layers.Dense(2, activation="softmax")(K.layers.concatenate([summary, pooled]))
    model = K.Model(tokens, outputs)
    branches = K.Model(tokens, [forward, backward, summary])
    return {"model": model, "branches": branches}


def _tokens(rng, n):
    x = rng.integers(1, VOCAB, (n, STEPS)).astype("int32")
    lengths = rng.integers(1, STEPS + 1, n)
    lengths[0] = STEPS
    x[np.arange(STEPS)[None, :] >= lengths[:, None]] = 0
    return x


def data(rng):
    x = _tokens(rng, BATCH)
    return {"model": x, "branches": x}


def training(K):
    return {"loss": "sparse_categorical_crossentropy", "steps": 3}


def train_data(rng):
    return _tokens(rng, 8), rng.integers(0, 2, 8)
