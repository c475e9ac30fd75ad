"""keras.io/examples/nlp/bidirectional_lstm_imdb, small: variable-length int input,
Embedding, two stacked Bidirectional LSTMs, a sigmoid; ``fit`` with ``validation_data``."""
import numpy as np

MAX_FEATURES, MAXLEN, BATCH = 50, 8, 6


def build(K):
    inputs = K.Input(shape=(None,), dtype="int32")
    x = K.layers.Embedding(MAX_FEATURES, 8)(inputs)
    x = K.layers.Bidirectional(K.layers.LSTM(8, return_sequences=True))(x)
    x = K.layers.Bidirectional(K.layers.LSTM(8))(x)
    outputs = K.layers.Dense(1, activation="sigmoid")(x)
    model = K.Model(inputs, outputs)
    return {"model": model}


def data(rng):
    return {"model": rng.integers(0, MAX_FEATURES, (BATCH, MAXLEN)).astype("int32")}


def training(K):
    rng = np.random.default_rng(7)
    x_val = rng.integers(0, MAX_FEATURES, (4, MAXLEN)).astype("int32")
    y_val = (rng.random(4) > 0.5).astype("float32")
    return {"loss": "binary_crossentropy", "fit": {"batch_size": 4, "epochs": 2, "validation_data": (x_val, y_val)}}


def train_data(rng):
    return rng.integers(0, MAX_FEATURES, (8, MAXLEN)).astype("int32"), (rng.random(8) > 0.5).astype("float32")
