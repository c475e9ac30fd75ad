"""Siamese sentence encoder: one Embedding + LSTM encoder shared by two Inputs, cosine
similarity with ``Dot(axes=1, normalize=True)``, a sigmoid on top (duplicate-question style)."""
import numpy as np

VOCAB, EMBED, UNITS, STEPS, BATCH = 50, 8, 12, 7, 6


def build(K):
    left = K.Input(shape=(STEPS,), dtype="int32", name="left")
    right = K.Input(shape=(STEPS,), dtype="int32", name="right")
    embedding = K.layers.Embedding(VOCAB, EMBED, mask_zero=True, name="shared_embedding")
    encoder = K.layers.LSTM(UNITS, name="shared_lstm")
    left_vec = encoder(embedding(left))
    right_vec = encoder(embedding(right))
    cosine = K.layers.Dot(axes=1, normalize=True, name="cosine")([left_vec, right_vec])
    same = K.layers.Dense(1, activation="sigmoid", name="same")(cosine)
    model = K.Model(inputs=[left, right], outputs=same, name="siamese")
    sentence_encoder = K.Model(left, left_vec, name="sentence_encoder")
    similarity = K.Model([left, right], cosine, name="similarity")
    return {"model": model, "encoder": sentence_encoder, "similarity": similarity}


def _sentences(rng, n):
    x = rng.integers(1, VOCAB, (n, STEPS)).astype("int32")
    lengths = rng.integers(2, STEPS + 1, n)
    x[np.arange(STEPS)[None, :] >= lengths[:, None]] = 0
    return x


def data(rng):
    a, b = _sentences(rng, BATCH), _sentences(rng, BATCH)
    b[0] = a[0]  # one exact duplicate: cosine 1
    return {"model": [a, b], "encoder": a, "similarity": [a, b]}


def training(K):
    return {"loss": "binary_crossentropy", "steps": 3}


def train_data(rng):
    a, b = _sentences(rng, 8), _sentences(rng, 8)
    b[:4] = a[:4]
    return [a, b], np.array([1, 1, 1, 1, 0, 0, 0, 0], dtype="float32")[:, None]
