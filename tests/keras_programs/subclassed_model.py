"""A subclassed ``K.Model`` with layers made in ``__init__`` and wired in ``call()``:
masked Embedding -> Bidirectional(GRU) -> Dense, trained with ``fit``."""
import numpy as np

VOCAB, STEPS, BATCH = 45, 8, 6


def build(K):
    class SentimentModel(K.Model):
        def __init__(self, vocab_size, units, **kwargs):
            super().__init__(**kwargs)
            self.embedding = K.layers.Embedding(vocab_size, 8, mask_zero=True)
            self.encoder = K.layers.Bidirectional(K.layers.GRU(units))
            self.hidden = K.layers.Dense(units, activation="relu")
            self.classifier = K.layers.Dense(1, activation="sigmoid")

        def call(self, inputs, training=None):
            x = self.embedding(inputs)
            x = self.encoder(x)
            return self.classifier(self.hidden(x))

    return {"model": SentimentModel(VOCAB, 6, name="sentiment")}


def _reviews(rng, n):
    x = rng.integers(1, VOCAB, (n, STEPS)).astype("int32")
    lengths = rng.integers(1, STEPS + 1, n)
    x[np.arange(STEPS)[None, :] < (STEPS - lengths)[:, None]] = 0  # 'pre' padding
    return x


def data(rng):
    return {"model": _reviews(rng, BATCH)}


def training(K):
    return {"loss": "binary_crossentropy", "fit": {"batch_size": 4, "epochs": 2}}


def train_data(rng):
    return _reviews(rng, 8), (rng.random((8, 1)) > 0.5).astype("float32")
