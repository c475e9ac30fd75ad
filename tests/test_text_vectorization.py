"""TextVectorization against Keras 3's documented rules, with expected values worked out by hand
(Keras's own layer needs TensorFlow, which is not installed)."""
import json
import math

import numpy as np
import pytest
import torch

import rnnkit
from rnnkit.data import Dataset
from rnnkit.layers import TextVectorization
from rnnkit.text import TextVectorizer

CORPUS = ["The cat sat on the mat.", "The dog ate my homework!", "A cat, a dog?"]
# standardised: "the cat sat on the mat" / "the dog ate my homework" / "a cat a dog"
# counts: the 3; cat, dog, a 2; sat, on, mat, ate, my, homework 1. Equal counts in descending
# string order (Keras's lexsort): dog > cat > a, and sat > on > my > mat > homework > ate.
FULL_VOCABULARY = ["", "[UNK]", "the", "dog", "cat", "a", "sat", "on", "my", "mat", "homework", "ate"]


def ids(tensor):
    assert tensor.dtype == torch.int64
    return tensor.tolist()


def test_adapt_orders_by_count_then_descending_token():
    layer = TextVectorization()
    layer.adapt(CORPUS)
    assert layer.get_vocabulary() == FULL_VOCABULARY
    assert layer.get_vocabulary(include_special_tokens=False) == FULL_VOCABULARY[2:]
    assert layer.vocabulary_size() == 12


def test_max_tokens_and_int_output_padding():
    layer = TextVectorization(max_tokens=6, output_sequence_length=4)
    layer.adapt(CORPUS)
    assert layer.get_vocabulary() == FULL_VOCABULARY[:6]
    assert ids(layer(["The bird sat", "a DOG"])) == [[2, 1, 1, 0], [5, 3, 0, 0]]
    assert ids(layer(["the cat the cat the"])) == [[2, 4, 2, 4]]          # cut at the end
    unpadded = TextVectorization(max_tokens=6)
    unpadded.adapt(CORPUS)
    assert ids(unpadded(["The bird sat", "a DOG"])) == [[2, 1, 1], [5, 3, 0]]  # padded to the longest
    assert ids(unpadded("a dog")) == [5, 3]                                 # one string: no batch axis
    assert ids(unpadded(np.array([["a dog"], ["cat"]]))) == [[5, 3], [4, 0]]  # (batch, 1) input
    assert ids(unpadded([b"the dog"])) == [[2, 3]]                          # bytes are decoded


def test_standardize_modes_follow_tensorflow_string_ops():
    # lower-casing touches ASCII letters only (tf.strings.lower); punctuation is deleted, not split on;
    # whitespace is ASCII whitespace only (a no-break space stays inside the token)
    layer = TextVectorization(vocabulary=["École", "dont", "aftereffects", "«hi»", "a\u00a0b", "x"])
    assert ids(layer(["ÉCOLE École", "Don't after-effects", "«hi» a\u00a0b\tx"])) == [
        [2, 2, 0], [3, 4, 0], [5, 6, 7]]
    lower = TextVectorization(standardize="lower", vocabulary=["don't", "hi!"])
    assert ids(lower(["DON'T Hi!"])) == [[2, 3]]
    strip = TextVectorization(standardize="strip_punctuation", vocabulary=["Hi", "hi"])
    assert ids(strip(["Hi! hi."])) == [[2, 3]]
    none = TextVectorization(standardize=None, vocabulary=["Hi!"])
    assert ids(none(["Hi! hi!"])) == [[2, 1]]


def test_split_modes_and_callables():
    chars = TextVectorization(split="character", standardize=None)
    chars.adapt(["abca", "é"])
    assert chars.get_vocabulary() == ["", "[UNK]", "a", "é", "c", "b"]
    assert ids(chars(["cab", "d"])) == [[4, 2, 5], [1, 0, 0]]
    whole = TextVectorization(split=None)
    whole.adapt(["New York", "new york", "Paris"])
    assert whole.get_vocabulary() == ["", "[UNK]", "new york", "paris"]
    assert ids(whole(["paris", "NEW YORK", "Rome"])) == [3, 2, 1]
    custom = TextVectorization(standardize=lambda texts: np.char.upper(texts),
                               split=lambda texts: [t.split(",") for t in texts])
    custom.adapt(["a,b", "b,c"])
    assert custom.get_vocabulary() == ["", "[UNK]", "B", "C", "A"]
    assert ids(custom(["c,a,z"])) == [[3, 4, 1]]


def test_ngrams():
    layer = TextVectorization(ngrams=2)
    layer.adapt(["a b c", "b c"])
    # unigrams then bigrams; counts b, c, "b c" 2 and a, "a b" 1, ties in descending order
    assert layer.get_vocabulary() == ["", "[UNK]", "c", "b c", "b", "a b", "a"]
    assert ids(layer(["a b c"])) == [[6, 4, 2, 5, 3]]
    only_bigrams = TextVectorization(ngrams=(2,), vocabulary=["a b"])
    assert ids(only_bigrams(["a b c"])) == [[2, 1]]


def test_multi_hot_count_and_tf_idf():
    corpus = np.array(["a b b", "c", "b"])
    # counts b 3, a 1, c 1 -> ["[UNK]", "b", "c", "a"] (no padding id in these modes)
    multi_hot = TextVectorization(output_mode="multi_hot")
    multi_hot.adapt(corpus)
    assert multi_hot.get_vocabulary() == ["[UNK]", "b", "c", "a"]
    out = multi_hot(["b z b", "a a c"])
    assert out.dtype == torch.float32 and out.tolist() == [[1, 1, 0, 0], [0, 0, 1, 1]]
    assert multi_hot("b").tolist() == [0, 1, 0, 0]
    count = TextVectorization(output_mode="count", max_tokens=6, pad_to_max_tokens=True)
    count.adapt(corpus)
    assert count(["b z b", "a a c"]).tolist() == [[1, 2, 0, 0, 0, 0], [0, 0, 1, 2, 0, 0]]
    tf_idf = TextVectorization(output_mode="tf_idf")
    tf_idf.adapt(corpus)
    # idf = log(1 + documents / (1 + documents with the token)); OOV gets the mean
    idf_b, idf_c = math.log(1 + 3 / 3), math.log(1 + 3 / 2)
    mean = (idf_b + 2 * idf_c) / 3
    np.testing.assert_allclose(tf_idf(["b z b", "a"]).numpy(), [[mean, 2 * idf_b, 0, 0], [0, 0, 0, idf_c]],
                               rtol=1e-6)
    given = TextVectorization(output_mode="tf_idf", vocabulary=["x", "y"], idf_weights=[1.0, 3.0])
    np.testing.assert_allclose(given(["y x y q"]).numpy(), [[2.0, 1.0, 6.0]])
    binary = TextVectorization(output_mode="binary", vocabulary=["x"])
    assert binary.output_mode == "multi_hot"


def test_fixed_vocabulary_and_set_vocabulary(tmp_path):
    layer = TextVectorization(vocabulary=["cat", "dog"])
    assert layer.get_vocabulary() == ["", "[UNK]", "cat", "dog"]
    assert TextVectorization(vocabulary=["", "[UNK]", "cat"]).get_vocabulary() == ["", "[UNK]", "cat"]
    with pytest.raises(ValueError, match="fixed vocabulary"):
        layer.adapt(["cat"])
    adapted = TextVectorization()
    adapted.set_vocabulary(["z", "y"])
    assert ids(adapted(["y z"])) == [[3, 2]]
    adapted.adapt(["q"])                                   # an adaptable layer stays adaptable
    assert adapted.get_vocabulary() == ["", "[UNK]", "q"]
    path = tmp_path / "vocab.txt"
    path.write_text("ant\nbee\n", encoding="utf-8")
    assert TextVectorization(vocabulary=str(path)).get_vocabulary() == ["", "[UNK]", "ant", "bee"]
    with pytest.raises(ValueError, match="repeated"):
        TextVectorization(vocabulary=["a", "a"])
    with pytest.raises(ValueError, match="OOV token"):
        TextVectorization(vocabulary=["a", "[UNK]"])
    with pytest.raises(ValueError, match="max_tokens"):
        TextVectorization(max_tokens=3, vocabulary=["a", "b"])
    with pytest.raises(ValueError, match="idf_weights"):
        TextVectorization(output_mode="tf_idf", vocabulary=["a"])


def test_input_and_argument_errors():
    layer = TextVectorization()
    with pytest.raises(RuntimeError, match="adapt"):
        layer(["x"])
    with pytest.raises(TypeError, match="strings"):
        layer.adapt([1, 2])
    with pytest.raises(TypeError, match="strings"):
        layer(torch.zeros(2))
    with pytest.raises(ValueError, match="output_sequence_length"):
        TextVectorization(output_mode="count", output_sequence_length=3)
    with pytest.raises(ValueError, match="one_hot"):
        TextVectorization(output_mode="one_hot")
    with pytest.raises(ValueError, match="standardize"):
        TextVectorization(standardize="lowercase")
    with pytest.raises(ValueError, match="ragged"):
        TextVectorization(ragged=True)
    with pytest.raises(ValueError, match="last dimension of 1"):
        TextVectorization(vocabulary=["a"])(np.array([["a", "b"]]))


def test_adapt_and_map_on_datasets():
    texts = Dataset.from_tensor_slices(np.array(CORPUS)).batch(2)
    layer = TextVectorization(output_sequence_length=3)
    layer.adapt(texts)
    assert layer.get_vocabulary() == FULL_VOCABULARY
    steps = TextVectorization()
    steps.adapt(texts, steps=1)                            # only the first batch: 9 distinct words
    assert steps.vocabulary_size() == 2 + 9
    pairs = Dataset.from_tensor_slices((np.array(CORPUS), np.array([0, 1, 1]))).batch(3)
    x, y = next(iter(pairs.map(lambda x, y: (layer(x), y))))
    assert x.tolist() == [[2, 4, 6], [2, 3, 11], [5, 4, 5]] and y.tolist() == [0, 1, 1]
    unbatched = Dataset.from_tensor_slices(np.array(CORPUS)).map(layer).batch(3)
    np.testing.assert_array_equal(next(iter(unbatched)), x)
    with pytest.raises(ValueError, match="lambda x, y: x"):
        TextVectorization().adapt(pairs)


def test_config_round_trip_with_the_vocabulary():
    layer = TextVectorization(max_tokens=8, ngrams=2, output_sequence_length=5, name="vec")
    layer.adapt(CORPUS)
    config = json.loads(json.dumps(layer.get_config()))
    assert config["vocabulary"] == layer.get_vocabulary() and config["vocabulary_size"] == 8
    clone = TextVectorization.from_config(config)
    texts = ["the dog sat", "a cat on a mat"]
    assert torch.equal(clone(texts), layer(texts)) and clone.name == "vec"
    rebuilt = rnnkit.layers.deserialize(rnnkit.layers.serialize(layer))
    assert torch.equal(rebuilt(texts), layer(texts))
    clone.adapt(["fresh words"])                          # an adapted vocabulary stays re-adaptable
    tf_idf = TextVectorization(output_mode="tf_idf", max_tokens=6, pad_to_max_tokens=True)
    tf_idf.adapt(CORPUS)
    again = TextVectorization.from_config(json.loads(json.dumps(tf_idf.get_config())))
    torch.testing.assert_close(again(texts), tf_idf(texts))


def test_registered_callables_serialize_by_name():
    @rnnkit.registry.register_keras_serializable(package="test_tv")
    def shout(texts):
        return np.char.upper(texts)

    layer = TextVectorization(standardize=shout, vocabulary=["HI"])
    config = json.loads(json.dumps(layer.get_config()))
    assert config["standardize"] == "test_tv>shout"
    assert ids(TextVectorization.from_config(config)(["hi"])) == [[2]]


def test_symbolic_call_gives_the_output_shape_and_dtype():
    layer = TextVectorization(max_tokens=10, output_sequence_length=7, vocabulary=["a"])
    out = layer(rnnkit.Input(shape=(1,), dtype="string"))
    assert out.shape == (None, 7) and out.dtype == "int64"
    counts = TextVectorization(output_mode="count", vocabulary=["a", "b"])
    out = counts(rnnkit.Input(shape=(1,), dtype="string"))
    assert out.shape == (None, 3) and out.dtype == "float32"


def test_text_vectorizer_is_built_on_the_layer():
    vectorizer = TextVectorizer(max_tokens=5).adapt(["b a b c", "c b d e", "a"])
    assert isinstance(vectorizer._layer, TextVectorization)
    # the applications' rules: first-appearance ties (a before c), where the layer orders c before a
    assert vectorizer.get_vocabulary() == ["", "[UNK]", "b", "a", "c"]
    keras_rule = TextVectorization(max_tokens=5)
    keras_rule.adapt(["b a b c", "c b d e", "a"])
    assert keras_rule.get_vocabulary() == ["", "[UNK]", "b", "c", "a"]
