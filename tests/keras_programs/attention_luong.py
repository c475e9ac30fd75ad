"""Seq2seq with Luong (dot-product) attention: ``layers.Attention()([decoder_seq, encoder_seq])``
over masked token sequences, attention scores exposed as a second model.

The decoder's sequences are never padded here: Keras 3.15 does not pass an input's mask to an
RNN called with ``initial_state=`` (``Layer.__call__`` fills ``mask`` only when the call has a
single tensor argument), so its outputs at padded decoder steps would be a Keras artefact;
padded steps are covered on the encoder side.
"""
import numpy as np

VOCAB, EMBED, UNITS, SRC_STEPS, TGT_STEPS, BATCH = 36, 8, 12, 8, 6, 5


def build(K):
    source = K.Input(shape=(None,), dtype="int32", name="source")
    target = K.Input(shape=(None,), dtype="int32", name="target")
    x = K.layers.Embedding(VOCAB, EMBED, mask_zero=True)(source)
    encoder_seq, state_h, state_c = K.layers.LSTM(UNITS, return_sequences=True, return_state=True)(x)
    y = K.layers.Embedding(VOCAB, EMBED, mask_zero=True)(target)
    decoder_seq = K.layers.LSTM(UNITS, return_sequences=True)(y, initial_state=[state_h, state_c])
    context, scores = K.layers.Attention(name="luong")([decoder_seq, encoder_seq], return_attention_scores=True)
    attentional = K.layers.Concatenate()([decoder_seq, context])
    attentional = K.layers.Dense(UNITS, activation="tanh")(attentional)
    next_token = K.layers.Dense(VOCAB, activation="softmax")(attentional)
    model = K.Model([source, target], next_token)
    alignment = K.Model([source, target], scores)
    return {"model": model, "alignment": alignment}


def _padded(rng, n, steps):
    x = rng.integers(1, VOCAB, (n, steps)).astype("int32")
    lengths = rng.integers(2, steps + 1, n)
    lengths[0] = steps
    x[np.arange(steps)[None, :] >= lengths[:, None]] = 0
    return x


def data(rng):
    pair = [_padded(rng, BATCH, SRC_STEPS), rng.integers(1, VOCAB, (BATCH, TGT_STEPS)).astype("int32")]
    return {"model": pair, "alignment": pair}


def training(K):
    return {"loss": "sparse_categorical_crossentropy", "steps": 3}


def train_data(rng):
    target = rng.integers(1, VOCAB, (6, TGT_STEPS + 1)).astype("int32")
    return [_padded(rng, 6, SRC_STEPS), target[:, :-1]], target[:, 1:]
