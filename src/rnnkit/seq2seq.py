"""Sequence-to-sequence learning with rnnkit's functional API: encoder-decoder models,
vocabularies, greedy and beam-search decoding, and the metrics of the seq2seq tasks.

    from rnnkit import seq2seq
    src_vocab = seq2seq.Vocabulary.build(sources, level="char")
    tgt_vocab = seq2seq.Vocabulary.build(targets, level="char")
    model = seq2seq.build_model(len(src_vocab), len(tgt_vocab), cell="lstm", units=128, attention="general")
    model.compile(optimizer="adam", loss=seq2seq.loss())
    enc, dec_in, dec_out = seq2seq.encode_pairs(src_vocab, tgt_vocab, sources, targets)
    model.fit([enc, dec_in], dec_out, epochs=10, batch_size=128)     # teacher forcing
    encoder, decoder = seq2seq.inference_models(model)             # cut from the trained layers
    ids = seq2seq.decode(encoder, decoder, src_vocab.encode_batch(["535+61"]), start_id=seq2seq.START,
                         end_id=seq2seq.END, max_length=10, beam_size=4, memory=True)
    tgt_vocab.decode(ids[0])

The model (built by :func:`build_model`, every layer a public ``rnnkit.layers`` layer)::

    encoder_tokens -> Embedding(mask_zero) -> [LSTM|GRU|Bidirectional(..)](return_sequences, return_state) x L
    decoder_tokens -> Embedding(mask_zero) -> [LSTM|GRU](initial_state = encoder layer i's states) x L
        [attention] -> Attention / AdditiveAttention over the encoder outputs -> context
                    -> Dense(units, tanh)([context; decoder output])      (Luong's attentional vector)
        -> Dense(target vocabulary) logits

Attention kinds: ``"dot"`` (Luong dot: ``q . k``), ``"general"`` (Luong general: ``q . W k``, the
key a bias-free ``Dense`` of the encoder outputs) and ``"additive"`` (Bahdanau's score
``v . tanh(W1 q + W2 k)``: both sides projected by bias-free ``Dense`` layers, then
``AdditiveAttention``). As in Luong et al., the attention reads the decoder's output at
each step (not the previous state as in Bahdanau et al.) and the attentional vector is not
fed back into the next step's input. Padded source steps get no attention weight: the
source mask travels from the encoder's ``Embedding(mask_zero=True)``; in the cut decoder it
is recovered by ``Masking(0.0)`` from the encoder outputs, which are zero at padded steps
(``zero_output_for_mask=True``).

Training is teacher forcing: the decoder reads ``<s> y1 .. yn`` and is trained to output
``y1 .. yn </s>``; padded target steps are masked out of the loss (the mask of the
decoder's ``Embedding`` reaches the output).

Decoding (:func:`decode`) works on any encoder/decoder pair that follows Keras's
``lstm_seq2seq`` convention: ``encoder(sources) -> [memory?, *states]`` and
``decoder([tokens, *states, memory?]) -> [scores, *new_states, ...]`` for one step, so each
step feeds the previous states back instead of re-running the prefix.

Token ids: 0 padding, 1 unknown, 2 start ``<s>``, 3 end ``</s>``, then the symbols.
"""
from __future__ import annotations

import math
import re
from collections import Counter

import numpy as np

__all__ = [
    "PAD", "UNK", "START", "END", "Vocabulary", "ATTENTION_KINDS", "CELLS", "tokenize_words", "detokenize_words",
    "build_model", "build_keras_example_model", "inference_models", "loss", "encode_pairs", "pad",
    "decode", "greedy_decode", "beam_search", "nearest_neighbour_translations",
    "edit_distance", "exact_match", "char_accuracy", "word_error_rate", "phoneme_error_rate", "bleu", "chrf",
]

PAD, UNK, START, END = 0, 1, 2, 3
SPECIALS = ("<pad>", "<unk>", "<s>", "</s>")
CELLS = ("lstm", "gru")
ATTENTION_KINDS = ("dot", "general", "additive")


# ----- vocabularies -------------------------------------------------------------------------------
# words and punctuation; a French elision ("l'", "qu'") and a hyphenated ending ("-il", "-dessus")
# are tokens of their own, so that "l'étendue" and "au-dessus" share their words with other texts
_WORD = re.compile(r"\w+'(?=\w)|\w+|(?<=\w)-\w+'(?=\w)|(?<=\w)-\w+|[^\w\s]")
_ATTACH_LEFT = frozenset(",.;:!?)]'")


def tokenize_words(text):
    """Words and punctuation marks of ``text`` (for ``Vocabulary(level="word")``).

    >>> tokenize_words("Dieu dit: Que l'étendue soit au-dessus des eaux!")
    ['Dieu', 'dit', ':', 'Que', "l'", 'étendue', 'soit', 'au', '-dessus', 'des', 'eaux', '!']
    """
    return _WORD.findall(text)


def detokenize_words(tokens):
    """Text of ``tokens`` from :func:`tokenize_words`: a space between tokens except before
    closing punctuation and hyphenated endings, and after an elision or an opening bracket.

    >>> detokenize_words(["Dieu", "dit", ":", "Que", "l'", "étendue", "soit", "au", "-dessus", "!"])
    "Dieu dit: Que l'étendue soit au-dessus!"
    """
    out, previous = "", None
    for token in tokens:
        glued = previous is None or token in _ATTACH_LEFT or (token[0] == "-" and len(token) > 1) or (
            previous in ("(", "[", "-") or (len(previous) > 1 and previous[-1] == "'"))
        out += token if glued else " " + token
        previous = token
    return out


class Vocabulary:
    """Symbols <-> ids for characters (``level="char"``), whitespace-separated tokens
    (``level="token"``) or words and punctuation (``level="word"``: :func:`tokenize_words`,
    decoded by :func:`detokenize_words`). Ids 0-3 are padding, unknown, start and end."""

    LEVELS = ("char", "token", "word")

    def __init__(self, symbols, level="char"):
        if level not in self.LEVELS:
            raise ValueError(f"level must be one of {self.LEVELS}, got {level!r}")
        self.level = level
        self.symbols = list(SPECIALS) + [s for s in symbols if s not in SPECIALS]
        self.index = {s: i for i, s in enumerate(self.symbols)}
        if len(self.index) != len(self.symbols):
            raise ValueError("the symbols of a vocabulary must be distinct")

    @classmethod
    def build(cls, texts, level="char", min_count=1, max_size=None):
        """Symbols of ``texts`` by descending count (ties in order of first appearance), those
        seen fewer than ``min_count`` times left out, at most ``max_size`` ids in all (with the
        4 specials); the symbols left out read as unknown."""
        counts = Counter()
        for text in texts:
            counts.update(cls._split(text, level))
        symbols = [s for s, n in counts.most_common() if n >= min_count]
        if max_size is not None:
            symbols = symbols[:max(0, max_size - len(SPECIALS))]
        return cls(symbols, level)

    @staticmethod
    def _split(text, level):
        return list(text) if level == "char" else tokenize_words(text) if level == "word" else text.split()

    def split(self, text):
        return self._split(text, self.level)

    def __len__(self):
        return len(self.symbols)

    def unknown(self, text):
        """The symbols of ``text`` that are not in the vocabulary (in order, without repeats)."""
        return list(dict.fromkeys(s for s in self.split(text) if s not in self.index))

    def encode(self, text, start=False, end=False):
        ids = [self.index.get(s, UNK) for s in self.split(text)]
        return ([START] if start else []) + ids + ([END] if end else [])

    def encode_batch(self, texts, start=False, end=False, length=None):
        """Ids of ``texts`` as one int64 array, 0-padded at the end (to ``length`` or the longest)."""
        return pad([self.encode(t, start, end) for t in texts], length)

    def decode(self, ids):
        """Text of ``ids``: stops at the end id, skips padding and start."""
        out = []
        for i in ids:
            i = int(i)
            if i == END:
                break
            if i in (PAD, START):
                continue
            out.append(self.symbols[i] if 0 <= i < len(self.symbols) else SPECIALS[UNK])
        return self.join(out)

    def join(self, symbols):
        """Text of a list of symbols (the inverse of :meth:`split`)."""
        if self.level == "word":
            return detokenize_words(symbols)
        return ("" if self.level == "char" else " ").join(symbols)

    def get_config(self):
        return {"level": self.level, "symbols": self.symbols[len(SPECIALS):]}

    @classmethod
    def from_config(cls, config):
        return cls(config["symbols"], config.get("level", "char"))

    def __repr__(self):
        return f"Vocabulary({len(self)} ids, level={self.level!r})"


def pad(sequences, length=None):
    """0-pad (at the end) a list of id lists into an int64 array; ``length`` cuts or pads to it."""
    length = max((len(s) for s in sequences), default=0) if length is None else length
    out = np.zeros((len(sequences), max(length, 1)), dtype=np.int64)
    for row, seq in zip(out, sequences):
        seq = seq[:length]
        row[:len(seq)] = seq
    return out


def encode_pairs(src_vocab, tgt_vocab, sources, targets, src_length=None, tgt_length=None):
    """(encoder ids, decoder input ids ``<s> y``, decoder target ids ``y </s>``), 0-padded."""
    enc = src_vocab.encode_batch(sources, length=src_length)
    tgt = [tgt_vocab.encode(t) for t in targets]
    dec_in = pad([[START] + t for t in tgt], tgt_length)
    dec_out = pad([t + [END] for t in tgt], tgt_length)
    return enc, dec_in, dec_out


# ----- models -------------------------------------------------------------------------------------
def _rnn(cell, units, name, dropout=0.0, **kwargs):
    from .layers import GRU, LSTM

    layer = {"lstm": LSTM, "gru": GRU}[cell]
    return layer(units, return_sequences=True, return_state=True, dropout=dropout, name=name, **kwargs)


def build_model(src_vocab_size, tgt_vocab_size, *, cell="lstm", units=128, embed_dim=64, layers=1,
                attention=None, bidirectional=False, dropout=0.0, name="seq2seq"):
    """The teacher-forcing training model ``Model([encoder_tokens, decoder_tokens], logits)``.

    ``cell``: "lstm" or "gru"; ``attention``: None, "dot", "general" or "additive";
    ``bidirectional``: each encoder layer is a ``Bidirectional`` of ``units`` (the decoder
    then has ``2 * units``, its initial states the concatenated forward and backward
    states); ``layers``: stacked encoder and decoder layers (decoder layer i starts from
    encoder layer i's final states); ``dropout``: on the embeddings and the RNN inputs.
    The architecture is stored in ``model.metadata["seq2seq"]`` for :func:`inference_models`.
    """
    import rnnkit
    from rnnkit import layers as L

    if cell not in CELLS:
        raise ValueError(f"cell must be one of {CELLS}, got {cell!r}")
    if attention not in (None,) + ATTENTION_KINDS:
        raise ValueError(f"attention must be None or one of {ATTENTION_KINDS}, got {attention!r}")
    dec_units = 2 * units if bidirectional else units
    n_states = 2 if cell == "lstm" else 1

    src = rnnkit.Input(shape=(None,), dtype="int32", name="encoder_tokens")
    x = L.Embedding(src_vocab_size, embed_dim, mask_zero=True, name="encoder_embedding")(src)
    if dropout:
        x = L.Dropout(dropout, name="encoder_embedding_dropout")(x)
    states = []
    for i in range(layers):
        if bidirectional:
            out = L.Bidirectional(_rnn(cell, units, f"encoder_{i}_rnn", dropout if i else 0.0,
                                       zero_output_for_mask=True), name=f"encoder_{i}")(x)
            x, forward, backward = out[0], out[1:1 + n_states], out[1 + n_states:]
            states.append([L.Concatenate(name=f"encoder_{i}_state_{j}")([f, b])
                           for j, (f, b) in enumerate(zip(forward, backward))])
        else:
            out = _rnn(cell, units, f"encoder_{i}", dropout if i else 0.0, zero_output_for_mask=True)(x)
            x, layer_states = out[0], list(out[1:])
            states.append(layer_states)
    memory = x

    tgt = rnnkit.Input(shape=(None,), dtype="int32", name="decoder_tokens")
    y = L.Embedding(tgt_vocab_size, embed_dim, mask_zero=True, name="decoder_embedding")(tgt)
    if dropout:
        y = L.Dropout(dropout, name="decoder_embedding_dropout")(y)
    for i in range(layers):
        y = _rnn(cell, dec_units, f"decoder_{i}", dropout if i else 0.0)(y, initial_state=states[i])[0]
    y = _attention_head(y, memory, attention, dec_units, dropout)[0]
    logits = L.Dense(tgt_vocab_size, name="logits")(y)
    model = rnnkit.Model([src, tgt], logits, name=name)
    model.metadata = {"seq2seq": {"cell": cell, "units": units, "decoder_units": dec_units, "layers": layers,
                                  "attention": attention, "bidirectional": bool(bidirectional),
                                  "embed_dim": embed_dim, "dropout": dropout, "states_per_layer": n_states,
                                  "src_vocab_size": src_vocab_size, "tgt_vocab_size": tgt_vocab_size}}
    return model


def build_keras_example_model(num_encoder_tokens, num_decoder_tokens, latent_dim=256, name="keras_lstm_seq2seq"):
    """The training model of Keras's ``lstm_seq2seq`` example (keras.io/examples/nlp/lstm_seq2seq),
    written as it is there: one-hot characters in, ``LSTM(latent_dim, return_state=True)``
    encoder whose final ``[h, c]`` start an ``LSTM(latent_dim, return_sequences=True)``
    decoder, ``Dense(num_decoder_tokens, softmax)`` out; no embedding, no mask, no attention.

    Train it on one-hot ``[encoder_inputs, decoder_inputs]`` (teacher forcing) with
    ``loss="sparse_categorical_crossentropy"`` on target ids; :func:`inference_models` cuts its
    encoder and one-step decoder as the example does, and :func:`decode` runs them with
    ``memory=False, from_logits=False, token_input=one-hot``::

        model = build_keras_example_model(80, 90)
        encoder, decoder = inference_models(model)
    """
    import rnnkit
    from rnnkit import layers as L

    encoder_inputs = rnnkit.Input(shape=(None, num_encoder_tokens), name="encoder_inputs")
    _, state_h, state_c = L.LSTM(latent_dim, return_state=True, name="encoder")(encoder_inputs)
    decoder_inputs = rnnkit.Input(shape=(None, num_decoder_tokens), name="decoder_inputs")
    decoder_outputs, _, _ = L.LSTM(latent_dim, return_sequences=True, return_state=True, name="decoder")(
        decoder_inputs, initial_state=[state_h, state_c])
    probabilities = L.Dense(num_decoder_tokens, activation="softmax", name="probabilities")(decoder_outputs)
    model = rnnkit.Model([encoder_inputs, decoder_inputs], probabilities, name=name)
    model.metadata = {"seq2seq": {"keras_example": True, "one_hot": True, "cell": "lstm", "units": latent_dim,
                                  "decoder_units": latent_dim, "layers": 1, "attention": None,
                                  "bidirectional": False, "states_per_layer": 2,
                                  "src_vocab_size": num_encoder_tokens, "tgt_vocab_size": num_decoder_tokens}}
    return model


def _keras_example_inference_models(model):
    """The example's inference models: ``encoder(one-hot sources) -> [h, c]``,
    ``decoder([one-hot tokens, h, c]) -> [probabilities, h, c]``."""
    import rnnkit

    spec = model.metadata["seq2seq"]
    encoder = rnnkit.Model(model.input[0], list(model.get_layer("encoder").output[1:]), name="encoder")
    tokens = rnnkit.Input(shape=(None, spec["tgt_vocab_size"]), name="step_tokens")
    states = [rnnkit.Input(shape=(spec["units"],), name=f"state_{k}") for k in range(2)]
    out, h, c = model.get_layer("decoder")(tokens, initial_state=states)
    decoder = rnnkit.Model([tokens] + states, [model.get_layer("probabilities")(out), h, c], name="decoder")
    encoder.eval()
    decoder.eval()
    return encoder, decoder


def _attention_head(y, memory, attention, units, dropout=0.0, layers=None):
    """Attention over ``memory`` from the decoder outputs ``y``: (attentional vector, weights).

    ``layers`` (a name -> layer lookup) reuses a trained model's layers; otherwise new ones are made."""
    from rnnkit import layers as L

    if attention is None:
        return y, None

    def get(name, make):
        return layers(name) if layers is not None else make()

    query, key = y, memory
    if attention in ("general", "additive"):
        key = get("attention_key", lambda: L.Dense(units, use_bias=False, name="attention_key"))(memory)
    if attention == "additive":
        query = get("attention_query", lambda: L.Dense(units, use_bias=False, name="attention_query"))(y)
        layer = get("attention", lambda: L.AdditiveAttention(name="attention"))
    else:
        layer = get("attention", lambda: L.Attention(name="attention"))
    if layers is None:
        context = layer([query, memory, key])
        weights = None
    else:
        context, weights = layer([query, memory, key], return_attention_scores=True)
    merged = get("attention_concat", lambda: L.Concatenate(name="attention_concat"))([context, y])
    if dropout and layers is None:
        merged = L.Dropout(dropout, name="attention_dropout")(merged)
    vector = get("attention_combine", lambda: L.Dense(units, activation="tanh", name="attention_combine"))(merged)
    return vector, weights


def loss():
    """Cross-entropy on the logits (padded target steps are left out through the mask)."""
    import rnnkit

    return rnnkit.losses.SparseCategoricalCrossentropy(from_logits=True)


def inference_models(model):
    """(encoder, decoder) for step-by-step decoding, cut from ``model``'s trained layers.

    ``encoder(encoder_tokens) -> [memory, *states]`` (memory only with attention);
    ``decoder([tokens, *states, memory?]) -> [logits, *states, attention_weights?]``.
    Works on a model from :func:`build_model` (or :func:`build_keras_example_model`: then the
    example's ``[h, c]`` and ``[probabilities, h, c]``) or one loaded from its file.
    """
    import rnnkit
    from rnnkit import layers as L

    spec = (model.metadata or {}).get("seq2seq")
    if spec is None:
        raise ValueError("this model was not built by rnnkit.seq2seq.build_model (no 'seq2seq' metadata)")
    if spec.get("keras_example"):
        return _keras_example_inference_models(model)
    n_layers, n_states, units = spec["layers"], spec["states_per_layer"], spec["decoder_units"]
    attention = spec["attention"]
    get = model.get_layer

    states = []
    for i in range(n_layers):
        if spec["bidirectional"]:
            states += [get(f"encoder_{i}_state_{j}").output for j in range(n_states)]
        else:
            states += list(get(f"encoder_{i}").output[1:])
    memory = get(f"encoder_{n_layers - 1}").output[0]
    encoder = rnnkit.Model(model.input[0], ([memory] if attention else []) + states, name="encoder")

    tokens = rnnkit.Input(shape=(None,), dtype="int32", name="step_tokens")
    state_inputs = [rnnkit.Input(shape=(units,), name=f"state_{k}") for k in range(n_layers * n_states)]
    y = get("decoder_embedding")(tokens)
    new_states = []
    for i in range(n_layers):
        out = get(f"decoder_{i}")(y, initial_state=state_inputs[i * n_states:(i + 1) * n_states])
        y, new_states = out[0], new_states + list(out[1:])
    inputs, extra = [tokens] + state_inputs, []
    if attention:
        memory_input = rnnkit.Input(shape=(None, units), name="memory")
        masked = L.Masking(0.0, name="memory_mask")(memory_input)
        y, weights = _attention_head(y, masked, attention, units, layers=get)
        inputs.append(memory_input)
        extra = [weights]
    logits = get("logits")(y)
    decoder = rnnkit.Model(inputs, [logits] + new_states + extra, name="decoder")
    encoder.eval()
    decoder.eval()
    return encoder, decoder


# ----- decoding -----------------------------------------------------------------------------------
def _as_list(outputs):
    return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]


def _log_probs(scores, from_logits):
    import torch

    scores = scores[:, -1].float() if scores.dim() == 3 else scores.float()
    return torch.log_softmax(scores, dim=-1) if from_logits else torch.log(scores.clamp_min(1e-30))


def _encode_batch(encoder, sources, memory, pad_id):
    import torch

    src = torch.as_tensor(np.asarray(sources))
    outs = _as_list(encoder(src))
    if memory:
        mem = outs[0]
        if src.dim() == 2 and not src.is_floating_point():  # zero padded steps: Masking(0.0) recovers the mask
            mem = mem * (src != pad_id).unsqueeze(-1).to(mem.dtype)
        return [o.detach() for o in outs[1:]], mem.detach()
    return [o.detach() for o in outs], None


def _step(decoder, tokens, states, mem, from_logits, token_input, banned=()):
    feed = token_input(tokens) if token_input is not None else tokens
    outs = _as_list(decoder([feed, *states] + ([mem] if mem is not None else [])))
    n = len(states)
    extra = outs[1 + n:]
    logp = _log_probs(outs[0], from_logits)
    if banned:
        logp[:, list(banned)] = -math.inf
    return logp, outs[1:1 + n], (extra[0] if extra else None)


def decode(encoder, decoder, sources, *, start_id=START, end_id=END, max_length=50, beam_size=1,
           length_penalty=1.0, memory=False, from_logits=True, batch_size=256, pad_id=PAD,
           token_input=None, banned=(PAD, UNK, START), return_scores=False, return_attention=False):
    """Decode ``sources`` (an array of source ids, or whatever ``encoder`` takes) with
    ``encoder`` and the one-step ``decoder``; returns one list of output ids per source
    (without the end id).

    ``encoder(sources)`` returns ``[memory, *states]`` when ``memory=True`` (the memory,
    e.g. the encoder outputs for attention, is fed unchanged to every step after the states;
    its padded steps -- source id ``pad_id`` -- are zeroed), else ``[*states]``.
    ``decoder([tokens (batch, 1), *states, memory?])`` returns ``[scores, *new_states, ...]``,
    scores being logits (``from_logits=True``) or probabilities of the next token; a further
    output, if any, is taken as attention weights (batch, 1, source steps).
    ``token_input`` maps the (batch, 1) id tensor to the decoder's token input (e.g. one-hot
    for Keras's ``lstm_seq2seq`` decoder). ``banned`` ids are never produced (by default
    padding, unknown and start).

    ``end_id=None``: no end token, every output has ``max_length`` tokens.
    ``beam_size=1`` is greedy decoding; larger beams keep that many hypotheses per source,
    finished ones (ended by ``end_id`` while among the best ``beam_size`` candidates) scored by
    ``log p / length ** length_penalty`` (length counting the end token; 0 = no
    normalisation, 1 = mean log-probability per token). A source stops once no live
    hypothesis can still beat its best finished one. At most ``max_length`` tokens are
    produced: a hypothesis still open there is closed with the end token (its probability
    counted), in greedy decoding as in the beam.

    ``return_scores`` adds each output's (normalised) log-probability; ``return_attention``
    (greedy only) adds each output's attention weights (steps x source steps).
    Runs under ``torch.inference_mode`` with the models in eval mode, ``batch_size`` sources
    at a time.
    """
    import torch

    if beam_size < 1:
        raise ValueError(f"beam_size must be >= 1, got {beam_size}")
    if return_attention and beam_size != 1:
        raise ValueError("return_attention is only available for greedy decoding (beam_size=1)")
    was_training = [getattr(m, "training", False) for m in (encoder, decoder)]
    for m in (encoder, decoder):
        if hasattr(m, "eval"):
            m.eval()
    results, scores, attention = [], [], []
    try:
        with torch.inference_mode():
            n = len(sources)
            for begin in range(0, n, batch_size):
                chunk = sources[begin:begin + batch_size]
                states, mem = _encode_batch(encoder, chunk, memory, pad_id)
                kwargs = dict(start_id=start_id, end_id=end_id, max_length=max_length, from_logits=from_logits,
                              token_input=token_input, banned=tuple(int(b) for b in banned if b != end_id))
                if beam_size == 1:
                    ids, sc, att = _greedy(decoder, states, mem, return_attention=return_attention, **kwargs)
                    attention += att
                else:
                    ids, sc = _beam(decoder, states, mem, beam_size=beam_size, length_penalty=length_penalty,
                                    **kwargs)
                results += ids
                scores += sc
    finally:
        for m, mode in zip((encoder, decoder), was_training):
            if mode and hasattr(m, "train"):
                m.train()
    out = [results]
    if return_scores:
        out.append(scores)
    if return_attention:
        out.append(attention)
    return results if len(out) == 1 else tuple(out)


def greedy_decode(encoder, decoder, sources, **kwargs):
    """:func:`decode` with ``beam_size=1``."""
    return decode(encoder, decoder, sources, beam_size=1, **kwargs)


def beam_search(encoder, decoder, sources, beam_size=4, **kwargs):
    """:func:`decode` with a beam."""
    return decode(encoder, decoder, sources, beam_size=beam_size, **kwargs)


def _greedy(decoder, states, mem, *, start_id, end_id, max_length, from_logits, token_input, return_attention,
            banned=()):
    import torch

    batch = states[0].shape[0] if states else mem.shape[0]
    tokens = torch.full((batch, 1), start_id, dtype=torch.long)
    done = torch.zeros(batch, dtype=torch.bool)
    out = torch.full((batch, max_length), -1, dtype=torch.long)
    total = torch.zeros(batch)
    lengths = torch.full((batch,), max_length, dtype=torch.long)
    weights = []
    for t in range(max_length + 1):
        logp, states, att = _step(decoder, tokens, states, mem, from_logits, token_input, banned)
        if return_attention and att is not None:
            weights.append(att.reshape(batch, -1).float())
        best = logp.argmax(dim=-1)
        if t == max_length:
            if end_id is not None:  # closed with the end token
                total += torch.where(done, 0.0, logp[:, end_id])
            break
        total += torch.where(done, 0.0, logp.gather(1, best[:, None])[:, 0])
        ended = ~done & (best == end_id) if end_id is not None else torch.zeros_like(done)
        lengths[ended] = t
        best = torch.where(done, -1, best)
        out[:, t] = best
        done |= ended
        if bool(done.all()):
            break
        tokens = torch.where(best < 0, end_id if end_id is not None else start_id, best)[:, None]
    ids = [row[:int(n)].tolist() for row, n in zip(out, lengths)]
    att = []
    if return_attention:
        stacked = torch.stack(weights, dim=1) if weights else None
        att = [stacked[i, :int(lengths[i]) + 1].numpy() if stacked is not None else None for i in range(batch)]
    return ids, total.tolist(), att


def _beam(decoder, states, mem, *, start_id, end_id, max_length, beam_size, length_penalty, from_logits,
          token_input, banned=()):
    import torch

    K = beam_size
    batch = states[0].shape[0] if states else mem.shape[0]
    repeat = torch.arange(batch).repeat_interleave(K)
    states = [s[repeat] for s in states]
    mem = mem[repeat] if mem is not None else None
    tokens = torch.full((batch * K, 1), start_id, dtype=torch.long)
    live = torch.full((batch, K), -math.inf)
    live[:, 0] = 0.0  # one start hypothesis per source
    history = torch.zeros((batch, K, 0), dtype=torch.long)
    best_score = torch.full((batch,), -math.inf)
    best_seq = [[] for _ in range(batch)]
    done = torch.zeros(batch, dtype=torch.bool)
    alpha = float(length_penalty)
    horizon = float(max_length + 1) ** alpha

    for t in range(max_length + 1):
        logp, new_states, _ = _step(decoder, tokens, states, mem, from_logits, token_input, banned)
        vocab = logp.shape[-1]
        cand = (live.reshape(-1, 1) + logp).reshape(batch, K * vocab)
        if t == max_length:  # only endings are allowed now
            ends = live + (logp.reshape(batch, K, vocab)[:, :, end_id] if end_id is not None else 0.0)
            norm = ends / float(t + 1) ** alpha
            top, beam = norm.max(dim=1)
            for b in torch.nonzero(~done & (top > best_score)).flatten().tolist():
                best_score[b] = top[b]
                best_seq[b] = history[b, beam[b]].tolist()
            break
        top_scores, top_index = cand.topk(2 * K, dim=1)  # sorted, best first
        top_beam, top_token = top_index // vocab, top_index % vocab
        is_end = top_token == end_id if end_id is not None else torch.zeros_like(top_token, dtype=torch.bool)
        rank = torch.arange(2 * K).expand(batch, -1)
        finished = is_end & (rank < K) & torch.isfinite(top_scores) & ~done[:, None]
        if bool(finished.any()):
            norm = top_scores / float(t + 1) ** alpha
            for b, j in torch.nonzero(finished).tolist():
                if norm[b, j] > best_score[b]:
                    best_score[b] = norm[b, j]
                    best_seq[b] = history[b, int(top_beam[b, j])].tolist()
        # the best K candidates that do not end become the live beams
        order = (rank + is_end.long() * 2 * K).argsort(dim=1)[:, :K]
        live = top_scores.gather(1, order)
        beams = top_beam.gather(1, order)
        chosen = top_token.gather(1, order)
        history = torch.cat([history.gather(1, beams[:, :, None].expand(-1, -1, history.shape[2])),
                             chosen[:, :, None]], dim=2)
        flat = (torch.arange(batch)[:, None] * K + beams).reshape(-1)
        states = [s[flat] for s in new_states]
        tokens = chosen.reshape(-1, 1)
        # a source is done when no live hypothesis can still beat its best finished one
        bound = live.max(dim=1).values / (horizon if alpha > 0 else 1.0)
        done |= best_score >= bound
        live[done] = -math.inf
        if bool(done.all()):
            break
    return best_seq, best_score.tolist()


# ----- metrics ------------------------------------------------------------------------------------
def edit_distance(a, b):
    """Levenshtein distance between two sequences (insertions, deletions, substitutions cost 1)."""
    a, b = list(a), list(b)
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        current = [i]
        for j, y in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1]


def _variants(ref):
    return [ref] if isinstance(ref, str) else list(ref)


def exact_match(predictions, references):
    """Share of predictions equal to their reference (or to any of its variants, given a list)."""
    if not predictions:
        return float("nan")
    return sum(p in _variants(r) for p, r in zip(predictions, references)) / len(predictions)


def word_error_rate(predictions, references):
    """g2p's word error rate: share of words whose output equals none of the reference variants."""
    return 1.0 - exact_match(predictions, references)


def phoneme_error_rate(predictions, references):
    """Sum over words of the edit distance (over whitespace-separated symbols) to the closest
    reference variant, divided by the sum of those variants' lengths."""
    errors = total = 0
    for p, r in zip(predictions, references):
        p = p.split()
        best = min(((edit_distance(p, v.split()), len(v.split())) for v in _variants(r)))
        errors += best[0]
        total += best[1]
    return errors / total if total else float("nan")


def char_accuracy(predictions, references):
    """Per-character accuracy as Keras's addition example measures it: position by position
    over the longer of prediction and reference (a missing or extra character is wrong)."""
    right = total = 0
    for p, r in zip(predictions, references):
        n = max(len(p), len(r))
        right += sum(1 for i in range(min(len(p), len(r))) if p[i] == r[i])
        total += n
    return right / total if total else float("nan")


def bleu(predictions, references):
    """Corpus BLEU (0-100) of detokenised ``predictions`` against one reference each, by
    ``sacrebleu`` with its defaults (13a tokenisation, case-sensitive, exponential smoothing off).

    >>> round(bleu(["the cat sat on the mat"], ["the cat sat on the mat"]), 1)
    100.0
    """
    import sacrebleu

    return float(sacrebleu.corpus_bleu(list(predictions), [list(references)]).score)


def chrf(predictions, references):
    """Corpus chrF (0-100, character 6-grams, beta 2) by ``sacrebleu`` with its defaults."""
    import sacrebleu

    return float(sacrebleu.corpus_chrf(list(predictions), [list(references)]).score)


# ----- baselines ----------------------------------------------------------------------------------
def nearest_neighbour_translations(train_sources, train_targets, sources):
    """Retrieval baseline: for each of ``sources``, the target of the training source most similar
    by TF-IDF cosine (scikit-learn's ``TfidfVectorizer`` over lower-cased words, sublinear tf).

    >>> nearest_neighbour_translations(["a red cat", "a blue dog"], ["un chat rouge", "un chien bleu"],
    ...                                ["the blue dog"])
    ['un chien bleu']
    """
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(sublinear_tf=True, token_pattern=r"(?u)\b\w+\b")
    train = vectorizer.fit_transform(train_sources)   # rows L2-normalised: dot product = cosine
    nearest = np.asarray((vectorizer.transform(sources) @ train.T).argmax(axis=1)).ravel()
    return [train_targets[i] for i in nearest]
