"""A ``Sequential`` sentence encoder used as a layer, twice, inside a functional model
(and its summary row as one nested model)."""
import numpy as np

VOCAB, STEPS, BATCH = 40, 6, 5


def build(K):
    encoder = K.Sequential([
        K.Input(shape=(STEPS,), dtype="int32"),
        K.layers.Embedding(VOCAB, 8, mask_zero=True),
        K.layers.GRU(8, return_sequences=True),
        K.layers.LSTM(6),
    ], name="sentence_encoder")
    question = K.Input(shape=(STEPS,), dtype="int32", name="question")
    answer = K.Input(shape=(STEPS,), dtype="int32", name="answer")
    q = encoder(question)
    a = encoder(answer)
    features = K.layers.concatenate([q, a, K.layers.Multiply()([q, a])])
    hidden = K.layers.Dense(8, activation="relu")(features)
    match = K.layers.Dense(1, activation="sigmoid")(hidden)
    model = K.Model([question, answer], match, name="matcher")
    return {"model": model, "encoder": encoder}


def _tokens(rng, n):
    x = rng.integers(1, VOCAB, (n, STEPS)).astype("int32")
    x[:, -2:] *= rng.random((n, 1)) < 0.5
    return x


def data(rng):
    q, a = _tokens(rng, BATCH), _tokens(rng, BATCH)
    return {"model": [q, a], "encoder": q}


def training(K):
    return {"loss": "binary_crossentropy", "steps": 3}


def train_data(rng):
    return [_tokens(rng, 8), _tokens(rng, 8)], (rng.random((8, 1)) > 0.5).astype("float32")
