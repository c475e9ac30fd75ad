"""keras.io/examples/timeseries/timeseries_weather_forecasting, small: windows of several
features in, ``LSTM`` -> ``Dense(1)``, mse, plus a GRU variant built with ``Sequential.add``."""
import numpy as np

FEATURES, PAST, BATCH = 7, 9, 8


def build(K):
    inputs = K.Input(shape=(PAST, FEATURES))
    lstm_out = K.layers.LSTM(16)(inputs)
    outputs = K.layers.Dense(1)(lstm_out)
    model = K.Model(inputs=inputs, outputs=outputs)

    gru = K.Sequential(name="gru_forecaster")
    gru.add(K.Input(shape=(PAST, FEATURES)))
    gru.add(K.layers.GRU(8, return_sequences=True, reset_after=False))
    gru.add(K.layers.GRU(8))
    gru.add(K.layers.Dense(1))
    return {"model": model, "gru": gru}


COPY = ("gru",)


def _windows(rng, n):
    t = np.arange(n + PAST + 1, dtype="float32")
    series = np.stack([np.sin(t / (k + 2)) for k in range(FEATURES)], axis=1)
    series += 0.1 * rng.standard_normal(series.shape).astype("float32")
    x = np.stack([series[i:i + PAST] for i in range(n)]).astype("float32")
    y = series[PAST:PAST + n, :1].astype("float32")
    return x, y


def data(rng):
    x, _ = _windows(rng, BATCH)
    return {"model": x, "gru": x}


def training(K):
    return {"loss": "mse", "fit": {"batch_size": 4, "epochs": 2}}


def train_data(rng):
    return _windows(rng, 12)
