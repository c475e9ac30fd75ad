"""Word-level GRU seq2seq on token ids: Embedding(mask_zero=True) -> GRU(return_state=True),
decoder GRU started from the encoder's state; inference models found with ``get_layer``.

The decoder's sequences are never padded here: Keras 3.15 does not pass an input's mask to an
RNN called with ``initial_state=`` (``Layer.__call__`` fills ``mask`` only when the call has a
single tensor argument), so its outputs at padded decoder steps would be a Keras artefact;
padded steps are covered on the encoder side.
"""
import numpy as np

SRC_VOCAB, TGT_VOCAB, EMBED, UNITS = 40, 30, 8, 12
SRC_STEPS, TGT_STEPS, BATCH = 8, 6, 5


def build(K):
    source = K.Input(shape=(None,), dtype="int32", name="source")
    x = K.layers.Embedding(SRC_VOCAB, EMBED, mask_zero=True, name="source_embedding")(source)
    _, encoder_state = K.layers.GRU(UNITS, return_state=True, name="encoder_gru")(x)

    past_target = K.Input(shape=(None,), dtype="int32", name="past_target")
    y = K.layers.Embedding(TGT_VOCAB, EMBED, mask_zero=True, name="target_embedding")(past_target)
    y, _ = K.layers.GRU(UNITS, return_sequences=True, return_state=True, name="decoder_gru")(
        y, initial_state=encoder_state)
    next_token = K.layers.Dense(TGT_VOCAB, activation="softmax", name="next_token")(y)
    model = K.Model([source, past_target], next_token, name="translator")

    encoder = K.Model(model.get_layer("source").output, model.get_layer("encoder_gru").output[1], name="encoder")

    token = K.Input(shape=(1,), dtype="int32", name="token")
    state = K.Input(shape=(UNITS,), name="state")
    z = model.get_layer("target_embedding")(token)
    z, new_state = model.get_layer("decoder_gru")(z, initial_state=state)
    probs = model.get_layer("next_token")(z)
    decoder = K.Model([token, state], [probs, new_state], name="decoder")
    return {"model": model, "encoder": encoder, "decoder": decoder}


def _padded(rng, vocab, batch, steps):
    ids = rng.integers(1, vocab, (batch, steps)).astype("int32")
    lengths = rng.integers(2, steps + 1, batch)
    lengths[0] = steps
    ids[np.arange(steps)[None, :] >= lengths[:, None]] = 0
    return ids


def data(rng):
    src = _padded(rng, SRC_VOCAB, BATCH, SRC_STEPS)
    tgt = rng.integers(1, TGT_VOCAB, (BATCH, TGT_STEPS)).astype("int32")
    state = rng.standard_normal((BATCH, UNITS)).astype("float32")
    return {"model": [src, tgt], "encoder": src, "decoder": [tgt[:, :1], state]}


def run(models, inputs):
    """Greedy decoding, one token at a time."""
    state = models["encoder"].predict(inputs["encoder"], verbose=0)
    token = np.ones((len(state), 1), dtype="int32")  # [start]
    probabilities = []
    for _ in range(4):
        probs, state = models["decoder"].predict([token, state], verbose=0)
        probabilities.append(probs[:, -1])
        token = np.argmax(probs[:, -1], axis=-1).astype("int32")[:, None] + 1
        token = np.minimum(token, TGT_VOCAB - 1)
    return {"greedy": np.stack(probabilities, 1)}


def training(K):
    return {"loss": "sparse_categorical_crossentropy", "steps": 3}


def train_data(rng):
    src = _padded(rng, SRC_VOCAB, 6, SRC_STEPS)
    tgt = rng.integers(1, TGT_VOCAB, (6, TGT_STEPS + 1)).astype("int32")
    return [src, tgt[:, :-1]], tgt[:, 1:]
