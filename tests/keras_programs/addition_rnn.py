"""keras.io/examples/nlp/addition_rnn: one-hot digits in, LSTM encoder, ``RepeatVector``,
LSTM decoder, ``TimeDistributed(Dense(softmax))`` per output character."""
import numpy as np

DIGITS = 2
MAXLEN = DIGITS + 1 + DIGITS
CHARS = "0123456789+ "
BATCH = 6


def build(K):
    num_layers = 1
    model = K.Sequential()
    model.add(K.Input((MAXLEN, len(CHARS))))
    model.add(K.layers.LSTM(16))
    model.add(K.layers.RepeatVector(DIGITS + 1))
    for _ in range(num_layers):
        model.add(K.layers.LSTM(16, return_sequences=True))
    model.add(K.layers.TimeDistributed(K.layers.Dense(len(CHARS), activation="softmax")))
    return {"model": model}


def _encode(strings, rows):
    x = np.zeros((len(strings), rows, len(CHARS)), dtype="float32")
    for i, s in enumerate(strings):
        for t, ch in enumerate(s.ljust(rows)):
            x[i, t, CHARS.index(ch)] = 1.0
    return x


def _questions(rng, n):
    a, b = rng.integers(0, 10 ** DIGITS, n), rng.integers(0, 10 ** DIGITS, n)
    questions = [f"{x}+{y}" for x, y in zip(a, b)]
    answers = [str(x + y) for x, y in zip(a, b)]
    return _encode(questions, MAXLEN), _encode(answers, DIGITS + 1)


def data(rng):
    return {"model": _questions(rng, BATCH)[0]}


def training(K):
    return {"loss": "categorical_crossentropy", "fit": {"batch_size": 4, "epochs": 2}}


def train_data(rng):
    return _questions(rng, 8)
