"""Sequence-to-sequence regression with Bahdanau (additive) attention: GRU encoder and
decoder, ``AdditiveAttention()([query, value])``, ``TimeDistributed(Dense(1))``."""
import numpy as np

FEATURES, UNITS, IN_STEPS, OUT_STEPS, BATCH = 3, 10, 9, 5, 4


def build(K):
    history = K.Input(shape=(IN_STEPS, FEATURES), name="history")
    known_future = K.Input(shape=(OUT_STEPS, 2), name="known_future")
    encoded, state = K.layers.GRU(UNITS, return_sequences=True, return_state=True, name="encoder")(history)
    decoded = K.layers.GRU(UNITS, return_sequences=True, name="decoder")(known_future, initial_state=state)
    attention = K.layers.AdditiveAttention(name="bahdanau")
    context = attention([decoded, encoded])
    merged = K.layers.concatenate([decoded, context], axis=-1)
    forecast = K.layers.TimeDistributed(K.layers.Dense(1), name="forecast")(merged)
    model = K.Model([history, known_future], forecast, name="attention_forecaster")
    return {"model": model}


def data(rng):
    return {"model": [rng.standard_normal((BATCH, IN_STEPS, FEATURES)).astype("float32"),
                      rng.standard_normal((BATCH, OUT_STEPS, 2)).astype("float32")]}


def training(K):
    return {"loss": "mse", "steps": 3}


def train_data(rng):
    x = data(rng)["model"]
    return x, rng.standard_normal((BATCH, OUT_STEPS, 1)).astype("float32")
