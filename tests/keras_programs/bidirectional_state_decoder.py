"""A Bidirectional LSTM encoder with ``return_state=True`` (five outputs: sequence and the
forward and backward h, c); the concatenated states start a 2x-wide LSTM decoder whose
sequence goes through ``TimeDistributed(Dense(softmax))``."""
import numpy as np

VOCAB, UNITS, SRC_STEPS, TGT_STEPS, BATCH = 32, 6, 7, 5, 4


def build(K):
    encoder_inputs = K.Input(shape=(None,), dtype="int32")
    x = K.layers.Embedding(VOCAB, 8, mask_zero=True)(encoder_inputs)
    encoder = K.layers.Bidirectional(K.layers.LSTM(UNITS, return_state=True, return_sequences=True))
    encoder_outputs, forward_h, forward_c, backward_h, backward_c = encoder(x)
    state_h = K.layers.Concatenate()([forward_h, backward_h])
    state_c = K.layers.Concatenate()([forward_c, backward_c])
    encoder_states = [state_h, state_c]

    decoder_inputs = K.Input(shape=(None,), dtype="int32")
    y = K.layers.Embedding(VOCAB, 8)(decoder_inputs)
    decoder_lstm = K.layers.LSTM(2 * UNITS, return_sequences=True, return_state=True)
    decoder_outputs, _, _ = decoder_lstm(y, initial_state=encoder_states)
    decoder_dense = K.layers.TimeDistributed(K.layers.Dense(VOCAB, activation="softmax"))
    outputs = decoder_dense(decoder_outputs)
    model = K.Model([encoder_inputs, decoder_inputs], outputs)
    encoder_model = K.Model(encoder_inputs, [encoder_outputs] + encoder_states)
    return {"model": model, "encoder": encoder_model}


def _source(rng, n):
    x = rng.integers(1, VOCAB, (n, SRC_STEPS)).astype("int32")
    lengths = rng.integers(2, SRC_STEPS + 1, n)
    x[np.arange(SRC_STEPS)[None, :] >= lengths[:, None]] = 0
    return x


def data(rng):
    source = _source(rng, BATCH)
    target = rng.integers(1, VOCAB, (BATCH, TGT_STEPS)).astype("int32")
    return {"model": [source, target], "encoder": source}


def training(K):
    return {"loss": "sparse_categorical_crossentropy", "steps": 3}


def train_data(rng):
    target = rng.integers(1, VOCAB, (6, TGT_STEPS + 1)).astype("int32")
    return [_source(rng, 6), target[:, :-1]], target[:, 1:]
