"""MaLSTM (Mueller & Thyagarajan): a shared LSTM over two sentences, similarity
exp(-||h_left - h_right||_1) computed from a ``Subtract`` layer and a ``Lambda``."""
import numpy as np

VOCAB, EMBED, UNITS, STEPS, BATCH = 40, 8, 10, 6, 5


def build(K):
    left_input = K.Input(shape=(STEPS,), dtype="int32")
    right_input = K.Input(shape=(STEPS,), dtype="int32")
    embedding_layer = K.layers.Embedding(VOCAB, EMBED, mask_zero=True)
    shared_lstm = K.layers.LSTM(UNITS)
    left_output = shared_lstm(embedding_layer(left_input))
    right_output = shared_lstm(embedding_layer(right_input))
    difference = K.layers.Subtract()([left_output, right_output])
    malstm_distance = K.layers.Lambda(
        lambda d: K.ops.exp(-K.ops.sum(K.ops.abs(d), axis=1, keepdims=True)), name="manhattan_similarity")(difference)
    model = K.Model([left_input, right_input], malstm_distance)
    return {"model": model}


def _sentences(rng, n):
    x = rng.integers(1, VOCAB, (n, STEPS)).astype("int32")
    x[:, :2] *= rng.random((n, 1)) < 0.5  # some sentences are left-padded
    return x


def data(rng):
    return {"model": [_sentences(rng, BATCH), _sentences(rng, BATCH)]}


def training(K):
    return {"loss": "mean_squared_error", "fit": {"batch_size": 4, "epochs": 1}}


def train_data(rng):
    return [_sentences(rng, 8), _sentences(rng, 8)], rng.random((8, 1)).astype("float32")
