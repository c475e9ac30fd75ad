"""TextVectorizer and pad_sequences against hand-computed cases; masked batches equal
unpadded single-sequence runs."""
import json

import numpy as np
import pytest
import torch

import rnnkit
from rnnkit.layers import GRU, LSTM, Bidirectional, Dense, Embedding, SimpleRNN
from rnnkit.text import TextVectorizer, tokenize
from rnnkit.utils import pad_sequences


# ----- pad_sequences (Keras semantics) --------------------------------------------------------
SEQS = [[1, 2, 3], [4, 5], [6, 7, 8, 9, 10], []]


def test_pad_sequences_defaults_pad_and_cut_at_the_start():
    out = pad_sequences(SEQS)
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out, [[0, 0, 1, 2, 3], [0, 0, 0, 4, 5], [6, 7, 8, 9, 10], [0, 0, 0, 0, 0]])
    np.testing.assert_array_equal(pad_sequences(SEQS, maxlen=3), [[1, 2, 3], [0, 4, 5], [8, 9, 10], [0, 0, 0]])


def test_pad_sequences_post_padding_and_truncating():
    np.testing.assert_array_equal(pad_sequences(SEQS, maxlen=4, padding="post"),
                                  [[1, 2, 3, 0], [4, 5, 0, 0], [7, 8, 9, 10], [0, 0, 0, 0]])
    np.testing.assert_array_equal(pad_sequences(SEQS, maxlen=4, truncating="post"),
                                  [[0, 1, 2, 3], [0, 0, 4, 5], [6, 7, 8, 9], [0, 0, 0, 0]])
    np.testing.assert_array_equal(pad_sequences(SEQS, maxlen=2, padding="post", truncating="post"),
                                  [[1, 2], [4, 5], [6, 7], [0, 0]])


def test_pad_sequences_value_dtype_and_errors():
    out = pad_sequences([[1.5], [2.5, 3.5]], dtype="float32", value=-1.0, padding="post")
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [[1.5, -1.0], [2.5, 3.5]])
    np.testing.assert_array_equal(pad_sequences([[1, 2]], maxlen=4, value=9), [[9, 9, 1, 2]])
    assert pad_sequences([]).shape == (0, 0)
    with pytest.raises(ValueError, match="padding"):
        pad_sequences(SEQS, padding="middle")
    with pytest.raises(ValueError, match="truncating"):
        pad_sequences(SEQS, truncating="both")


# ----- tokenisation rules ---------------------------------------------------------------------
def test_word_tokenisation_rules():
    text = "After-effects, it\u2019s 'GREAT'! 3.5 stars -- caf\u00e9_bar"
    assert tokenize(text) == ["after", "effects", "it's", "great", "3", "5", "stars", "caf\u00e9", "bar"]
    assert tokenize("Great, isn't it?!", punctuation="split") == ["great", ",", "isn't", "it", "?", "!"]
    assert tokenize("Great, isn't it?!", punctuation="keep") == ["great,", "isn't", "it?!"]
    assert tokenize("Great", lower=False) == ["Great"]
    assert tokenize("Ab c", split="char", lower=False) == ["A", "b", " ", "c"]


def test_vocabulary_order_max_tokens_and_padding():
    vec = TextVectorizer(max_tokens=5).adapt(["b a b c", "c b d e", "a"])
    # counts: b 3, a 2, c 2, d 1, e 1 -> ties in first-appearance order (a before c)
    assert vec.get_vocabulary() == ["", "[UNK]", "b", "a", "c"]
    assert vec.vocabulary_size() == 5
    out = vec(["B, z a!", "e", "c c c"])
    assert out.dtype == np.int64
    np.testing.assert_array_equal(out, [[2, 1, 3], [1, 0, 0], [4, 4, 4]])
    np.testing.assert_array_equal(vec("a b", output_sequence_length=4), [[3, 2, 0, 0]])
    assert vec.inverse(out) == ["b [UNK] a", "[UNK]", "c c c"]
    assert vec.inverse(out[0]) == "b [UNK] a"
    assert vec.texts_to_sequences(["", "!!"]) == [[], []]


def test_output_sequence_length_and_truncating():
    vec = TextVectorizer(output_sequence_length=3).adapt(["a b c d e"])
    np.testing.assert_array_equal(vec(["a b c d e", "e"]), [[2, 3, 4], [6, 0, 0]])
    vec_pre = TextVectorizer(output_sequence_length=3, truncating="pre").adapt(["a b c d e"])
    np.testing.assert_array_equal(vec_pre(["a b c d e"]), [[4, 5, 6]])
    np.testing.assert_array_equal(vec.lengths(["a b c d e", ""]), [5, 0])


def test_min_count():
    vec = TextVectorizer(min_count=2).adapt(["x y y z z z"])
    assert vec.get_vocabulary() == ["", "[UNK]", "z", "y"]


def test_char_level_and_encode():
    vec = TextVectorizer(split="char").adapt("abba\n")
    assert vec.get_vocabulary() == ["", "[UNK]", "a", "b", "\n"]
    assert vec.lower is False
    np.testing.assert_array_equal(vec.encode("ab\nA"), [2, 3, 4, 1])
    assert vec.inverse([2, 3, 4, 0, 0]) == "ab\n"
    lower = TextVectorizer(split="char", lower=True).adapt("AB")
    assert lower.get_vocabulary() == ["", "[UNK]", "a", "b"]


def test_config_round_trip_through_json():
    vec = TextVectorizer(max_tokens=50, output_sequence_length=7, punctuation="split").adapt(
        ["One fine day!", "one more day?"])
    clone = TextVectorizer.from_config(json.loads(json.dumps(vec.get_config())))
    texts = ["one day, fine!", "unknown words"]
    np.testing.assert_array_equal(clone(texts), vec(texts))
    assert clone.get_vocabulary() == vec.get_vocabulary()


def test_errors():
    with pytest.raises(RuntimeError, match="adapt"):
        TextVectorizer()(["x"])
    with pytest.raises(ValueError, match="split"):
        TextVectorizer(split="sentence")
    with pytest.raises(ValueError, match="no tokens"):
        TextVectorizer().adapt(["", "?!"])
    with pytest.raises(TypeError, match="strings"):
        TextVectorizer().adapt([3])
    with pytest.raises(ValueError, match="config"):
        TextVectorizer.from_config({"bogus": 1})


# ----- masking: padded batch == each sequence alone -------------------------------------------
def _texts_model(recurrent):
    rnnkit.utils.set_random_seed(3)
    return rnnkit.Sequential([Embedding(30, 8, mask_zero=True), recurrent, Dense(3)])


@pytest.mark.parametrize("make", [lambda **kw: LSTM(6, **kw), lambda **kw: GRU(5, **kw),
                                  lambda **kw: SimpleRNN(4, **kw), lambda **kw: Bidirectional(LSTM(6, **kw))],
                         ids=["lstm", "gru", "simplernn", "bilstm"])
def test_padded_batch_matches_unpadded_runs(make):
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    seqs = [rng.integers(1, 30, size=n).tolist() for n in (7, 3, 1, 5, 7)]
    padded = pad_sequences(seqs, padding="post")
    model = _texts_model(make())
    batch = model.predict(padded)
    recurrent = model.layers[1]
    # right-padded batches take the fused packed-sequence kernel, not the step-by-step path
    assert recurrent.execution_path.startswith("fused"), recurrent.execution_path
    for seq, row in zip(seqs, batch):
        alone = model.predict(np.array([seq]))
        np.testing.assert_allclose(row, alone[0], rtol=1e-5, atol=1e-6)
    # extra padding changes nothing
    longer = pad_sequences(seqs, maxlen=10, padding="post")
    np.testing.assert_allclose(model.predict(longer), batch, rtol=1e-5, atol=1e-6)
    # and the fused packed-sequence result equals the step-by-step reference with the same weights
    reference = _texts_model(make(use_fused=False))
    reference.predict(padded[:1])
    reference.set_weights(model.get_weights())
    np.testing.assert_allclose(reference.predict(padded), batch, rtol=1e-5, atol=1e-6)
    assert not reference.layers[1].execution_path.startswith("fused")


def test_return_sequences_masked_steps_match():
    rnnkit.utils.set_random_seed(1)
    model = rnnkit.Sequential([Embedding(20, 4, mask_zero=True), LSTM(5, return_sequences=True),
                               rnnkit.layers.GlobalAveragePooling1D(), Dense(2)])
    seqs = [[3, 4, 5, 6], [7, 8]]
    batch = model.predict(pad_sequences(seqs, padding="post"))
    for seq, row in zip(seqs, batch):
        np.testing.assert_allclose(row, model.predict(np.array([seq]))[0], rtol=1e-5, atol=1e-6)
