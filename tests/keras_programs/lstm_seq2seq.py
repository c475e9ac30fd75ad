"""Character-level LSTM seq2seq, after keras.io/examples/nlp/lstm_seq2seq.

Training model with ``return_state`` and ``initial_state``; then the inference encoder and
decoder are cut from the trained model exactly as the example does after ``load_model``
(``model.input[0]``, ``model.layers[2].output``, ``model.layers[3]``, new ``Input``s for the
states), and a greedy ``decode_sequence`` loop runs them with ``predict``.
"""
import numpy as np

NUM_ENCODER_TOKENS, NUM_DECODER_TOKENS, LATENT_DIM = 12, 10, 16
ENC_STEPS, DEC_STEPS, BATCH = 7, 6, 4


def build(K):
    encoder_inputs = K.Input(shape=(None, NUM_ENCODER_TOKENS))
    encoder = K.layers.LSTM(LATENT_DIM, return_state=True)
    encoder_outputs, state_h, state_c = encoder(encoder_inputs)
    encoder_states = [state_h, state_c]

    decoder_inputs = K.Input(shape=(None, NUM_DECODER_TOKENS))
    decoder_lstm = K.layers.LSTM(LATENT_DIM, return_sequences=True, return_state=True)
    decoder_outputs, _, _ = decoder_lstm(decoder_inputs, initial_state=encoder_states)
    decoder_dense = K.layers.Dense(NUM_DECODER_TOKENS, activation="softmax")
    decoder_outputs = decoder_dense(decoder_outputs)
    model = K.Model([encoder_inputs, decoder_inputs], decoder_outputs)

    # --- inference models, from the trained model's graph
    encoder_inputs = model.input[0]  # input_1
    encoder_outputs, state_h_enc, state_c_enc = model.layers[2].output  # lstm
    encoder_states = [state_h_enc, state_c_enc]
    encoder_model = K.Model(encoder_inputs, encoder_states)

    decoder_inputs = model.input[1]  # input_2
    decoder_state_input_h = K.Input(shape=(LATENT_DIM,))
    decoder_state_input_c = K.Input(shape=(LATENT_DIM,))
    decoder_states_inputs = [decoder_state_input_h, decoder_state_input_c]
    decoder_lstm = model.layers[3]
    decoder_outputs, state_h_dec, state_c_dec = decoder_lstm(decoder_inputs, initial_state=decoder_states_inputs)
    decoder_states = [state_h_dec, state_c_dec]
    decoder_dense = model.layers[4]
    decoder_outputs = decoder_dense(decoder_outputs)
    decoder_model = K.Model([decoder_inputs] + decoder_states_inputs, [decoder_outputs] + decoder_states)
    return {"model": model, "encoder": encoder_model, "decoder": decoder_model}


def _one_hot(ids, depth):
    return np.eye(depth, dtype="float32")[ids]


def data(rng):
    enc = _one_hot(rng.integers(0, NUM_ENCODER_TOKENS, (BATCH, ENC_STEPS)), NUM_ENCODER_TOKENS)
    dec = _one_hot(rng.integers(0, NUM_DECODER_TOKENS, (BATCH, DEC_STEPS)), NUM_DECODER_TOKENS)
    h, c = (rng.standard_normal((BATCH, LATENT_DIM)).astype("float32") for _ in range(2))
    return {"model": [enc, dec], "encoder": enc, "decoder": [dec[:, :1], h, c]}


def decode_sequence(encoder_model, decoder_model, input_seq, steps=DEC_STEPS):
    states_value = encoder_model.predict(input_seq, verbose=0)
    target_seq = np.zeros((len(input_seq), 1, NUM_DECODER_TOKENS), dtype="float32")
    target_seq[:, 0, 0] = 1.0  # the start character
    probabilities = []
    for _ in range(steps):
        output_tokens, h, c = decoder_model.predict([target_seq] + states_value, verbose=0)
        sampled_token_index = np.argmax(output_tokens[:, -1, :], axis=-1)
        probabilities.append(output_tokens[:, -1, :])
        target_seq = np.zeros((len(input_seq), 1, NUM_DECODER_TOKENS), dtype="float32")
        target_seq[np.arange(len(input_seq)), 0, sampled_token_index] = 1.0
        states_value = [h, c]
    return np.stack(probabilities, axis=1)


def run(models, inputs):
    return {"decoded": decode_sequence(models["encoder"], models["decoder"], inputs["encoder"])}


def training(K):
    return {"loss": "categorical_crossentropy", "fit": {"batch_size": 4, "epochs": 2, "validation_split": 0.25}}


def train_data(rng):
    n = 8
    enc = _one_hot(rng.integers(0, NUM_ENCODER_TOKENS, (n, ENC_STEPS)), NUM_ENCODER_TOKENS)
    target = rng.integers(0, NUM_DECODER_TOKENS, (n, DEC_STEPS))
    dec_in = np.concatenate([np.zeros((n, 1), int), target[:, :-1]], axis=1)
    return [enc, _one_hot(dec_in, NUM_DECODER_TOKENS)], _one_hot(target, NUM_DECODER_TOKENS)
