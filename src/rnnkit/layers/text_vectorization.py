"""``TextVectorization``: strings to token ids (or bag-of-words vectors), with Keras 3's rules.

    vectorize = TextVectorization(max_tokens=20000, output_sequence_length=200)
    vectorize.adapt(train_texts)                    # a list, an array or a rnnkit.data.Dataset
    ids = vectorize(["The film was great!"])        # int64 tensor (1, 200), 0-padded at the end
    train_ds = train_ds.map(lambda x, y: (vectorize(x), y))

The rules, as Keras's layer (which needs TensorFlow) applies them:

* ``standardize="lower_and_strip_punctuation"`` lower-cases the ASCII letters A-Z (other
  letters are left as they are, as ``tf.strings.lower``) and deletes the ASCII punctuation
  ``!"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~`` (deletes: ``"don't"`` becomes ``"dont"``). ``"lower"``
  and ``"strip_punctuation"`` do one of the two; ``None`` neither; a callable gets a NumPy
  array of ``str`` and returns the standardised strings.
* ``split="whitespace"`` splits on runs of ASCII whitespace (space, tab, ``\\n``, ``\\r``,
  ``\\v``, ``\\f``); ``"character"`` makes every character a token; ``None`` keeps every string
  whole; a callable gets the NumPy array of standardised strings and returns one list of
  tokens per string (``split=lambda texts: [t.split(",") for t in texts]``).
* ``ngrams=n`` adds the 2..n-grams after the single tokens (words joined by one space),
  ``ngrams=(2, 3)`` uses exactly those widths.
* Vocabulary (``adapt``): tokens by descending count, equal counts in *descending* order of
  the token (Keras's ``lexsort`` order), cut to ``max_tokens`` ids. In ``"int"`` mode id 0 is
  the padding ``""`` and id 1 the out-of-vocabulary ``"[UNK]"``, so tokens start at 2; in
  the other modes there is no padding id: ``"[UNK]"`` is 0 and tokens start at 1.
* ``output_mode="int"``: id sequences, cut at the end to ``output_sequence_length`` and
  padded with 0 at the end (without it, to the longest sequence of the batch);
  ``"multi_hot"``: 1.0 for every id present; ``"count"``: how often each id occurs;
  ``"tf_idf"``: counts times ``log(1 + documents / (1 + documents containing the token))``
  (the OOV id gets the mean of the tokens' weights). Vectors are as long as the vocabulary,
  or ``max_tokens`` with ``pad_to_max_tokens=True``.

A single string gives one result without the batch axis. Results are torch tensors (int64
ids, float32 vectors) on the CPU. Not supported: ``sparse``, ``ragged`` and
``output_mode="one_hot"``.
"""
from __future__ import annotations

import collections
import math
import os
import re
import string

import numpy as np
import torch

from .. import registry
from .layer import Layer
from .symbolic import is_symbolic

__all__ = ["TextVectorization"]

MASK_TOKEN = ""
OOV_TOKEN = "[UNK]"
STANDARDIZE = ("lower_and_strip_punctuation", "lower", "strip_punctuation")
SPLIT = ("whitespace", "character")
OUTPUT_MODES = ("int", "multi_hot", "count", "tf_idf")

_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
_STRIP_PUNCTUATION = str.maketrans("", "", string.punctuation)
_ASCII_SPACE_RUNS = re.compile(r"[^ \t\n\r\v\f]+")


class TextVectorization(Layer):
    """Map strings to token ids or bag-of-words vectors, as ``keras.layers.TextVectorization``.

    Args:
        max_tokens: the most ids, padding and OOV included (``None``: every token seen).
        standardize: ``"lower_and_strip_punctuation"``, ``"lower"``, ``"strip_punctuation"``,
            ``None`` or a callable (see the module docstring for the exact rules).
        split: ``"whitespace"``, ``"character"``, ``None`` or a callable.
        ngrams: ``None``, an int n (1..n-grams) or a tuple of widths.
        output_mode: ``"int"``, ``"multi_hot"`` (also ``"binary"``), ``"count"`` or
            ``"tf_idf"`` (also ``"tf-idf"``).
        output_sequence_length: ``"int"`` mode only: pad or cut every sequence to this length.
        pad_to_max_tokens: vector modes: make vectors ``max_tokens`` long.
        vocabulary: a list of tokens (with or without ``["", "[UNK]"]`` in front) or the path
            of a text file with one token per line, instead of ``adapt``.
        idf_weights: ``"tf_idf"`` mode with ``vocabulary``: one weight per token.
        encoding: how ``bytes`` inputs are decoded.

        vectorize = TextVectorization(max_tokens=5, output_sequence_length=4)
        vectorize.adapt(["the cat sat", "the dog"])
        vectorize.get_vocabulary()                  # ['', '[UNK]', 'the', 'sat', 'dog']
        vectorize(["the cat", "a dog sat"])         # tensor([[2, 1, 0, 0], [1, 4, 3, 0]])
    """

    def __init__(self, max_tokens=None, standardize="lower_and_strip_punctuation", split="whitespace",
                 ngrams=None, output_mode="int", output_sequence_length=None, pad_to_max_tokens=False,
                 vocabulary=None, idf_weights=None, sparse=False, ragged=False, encoding="utf-8", name=None,
                 **kwargs):
        has_input_vocabulary = kwargs.pop("has_input_vocabulary", vocabulary is not None)
        kwargs.pop("vocabulary_size", None)
        super().__init__(name=name, **kwargs)
        standardize, split = _resolve(standardize, "standardize"), _resolve(split, "split")
        if not (standardize is None or standardize in STANDARDIZE or callable(standardize)):
            raise ValueError(f"standardize must be one of {STANDARDIZE}, None or a callable, got {standardize!r}.")
        if not (split is None or split in SPLIT or callable(split)):
            raise ValueError(f"split must be one of {SPLIT}, None or a callable, got {split!r}.")
        output_mode = {"binary": "multi_hot", "tf-idf": "tf_idf"}.get(output_mode, output_mode)
        if output_mode not in OUTPUT_MODES:
            raise ValueError(f"output_mode must be one of {OUTPUT_MODES}, got {output_mode!r}."
                             + (" rnnkit has no one_hot mode for text: use multi_hot." if output_mode == "one_hot"
                                else ""))
        if isinstance(ngrams, list):
            ngrams = tuple(ngrams)
        if not (ngrams is None or isinstance(ngrams, int) and ngrams > 0
                or isinstance(ngrams, tuple) and all(isinstance(n, int) and n > 0 for n in ngrams)):
            raise ValueError(f"ngrams must be None, a positive integer or a tuple of them, got {ngrams!r}.")
        if output_sequence_length is not None:
            if output_mode != "int":
                raise ValueError("output_sequence_length can only be set with output_mode='int'; "
                                 f"got output_mode={output_mode!r}.")
            if not isinstance(output_sequence_length, int) or output_sequence_length < 0:
                raise ValueError(f"output_sequence_length must be None or an integer >= 0, "
                                 f"got {output_sequence_length!r}.")
        if max_tokens is not None and max_tokens <= 1:
            raise ValueError(f"If set, max_tokens must be greater than 1, got {max_tokens}.")
        if pad_to_max_tokens and max_tokens is None:
            raise ValueError("pad_to_max_tokens=True needs max_tokens.")
        if sparse or ragged:
            raise ValueError("rnnkit has no sparse or ragged tensors: leave sparse=False and ragged=False.")
        if idf_weights is not None and output_mode != "tf_idf":
            raise ValueError("idf_weights can only be set with output_mode='tf_idf'.")
        if output_mode == "tf_idf" and vocabulary is not None and idf_weights is None:
            raise ValueError("With output_mode='tf_idf' and a vocabulary, idf_weights must be given too.")
        self.max_tokens = max_tokens
        self.standardize = standardize
        self.split = split
        self.ngrams = ngrams
        self._widths = tuple(range(1, ngrams + 1)) if isinstance(ngrams, int) else ngrams
        self.output_mode = output_mode
        self.output_sequence_length = output_sequence_length
        self.pad_to_max_tokens = bool(pad_to_max_tokens)
        self.encoding = encoding
        self._has_input_vocabulary = bool(has_input_vocabulary)
        self._tokens = []           # the learned tokens, without the special ones
        self._index = {}
        self._idf = None            # float32 weights by id (tf_idf)
        self.built = True
        if vocabulary is not None:
            self.set_vocabulary(vocabulary, idf_weights)

    # ----- the special ids ---------------------------------------------------------------------------
    @property
    def _token_start(self):
        """The first id of a learned token: 2 in "int" mode (padding, OOV), else 1 (OOV)."""
        return 2 if self.output_mode == "int" else 1

    @property
    def _oov_id(self):
        return 1 if self.output_mode == "int" else 0

    # ----- strings to tokens -------------------------------------------------------------------------
    def _strings(self, inputs):
        """``inputs`` as a NumPy array of ``str`` and whether it was a single string."""
        if isinstance(inputs, torch.Tensor):
            raise TypeError("TextVectorization takes strings (a str, a list or a NumPy array of str), "
                            "got a torch tensor.")
        array = np.asarray(inputs, dtype=object)
        if array.dtype.kind != "O":
            array = array.astype(object)
        flat = array.reshape(-1)
        for i, value in enumerate(flat):
            if isinstance(value, (bytes, np.bytes_)):
                flat[i] = bytes(value).decode(self.encoding)
            elif not isinstance(value, str):
                raise TypeError(f"TextVectorization takes strings, got {type(value).__name__} ({value!r:.40}).")
        array = flat.reshape(array.shape)
        if self.split is not None and array.ndim == 2:
            if array.shape[-1] != 1:
                raise ValueError("To split strings, the input must have rank 1 or a last dimension of 1; got "
                                 f"shape {array.shape}.")
            array = array[:, 0]
        if array.ndim > (1 if self.split is not None else 2):
            raise ValueError(f"TextVectorization takes a string or a batch of strings; got shape {array.shape}.")
        return array, array.ndim == 0

    def _standardized(self, strings):
        """The standardised strings of a 1-D (or, with split=None, 2-D) array."""
        if self.standardize is None:
            return strings
        if callable(self.standardize):
            out = np.asarray(self.standardize(strings.astype(str)), dtype=object)
            if out.shape != strings.shape:
                raise ValueError(f"The standardize callable returned shape {out.shape} for inputs of shape "
                                 f"{strings.shape}.")
            return out
        lower = self.standardize in ("lower", "lower_and_strip_punctuation")
        strip = self.standardize in ("strip_punctuation", "lower_and_strip_punctuation")
        out = np.empty(strings.shape, dtype=object)
        flat, flat_out = strings.reshape(-1), out.reshape(-1)
        for i, text in enumerate(flat):
            if lower:
                text = text.lower() if text.isascii() else text.translate(_ASCII_LOWER)
            if strip:
                text = text.translate(_STRIP_PUNCTUATION)
            flat_out[i] = text
        return out

    def _token_lists(self, strings):
        """One list of tokens (n-grams included) per string of the batch."""
        strings = self._standardized(strings)
        if self.split is None:
            tokens = [list(row) for row in strings] if strings.ndim == 2 else [[s] for s in strings]
        elif self.split == "whitespace":
            tokens = [_ASCII_SPACE_RUNS.findall(s) for s in strings]
        elif self.split == "character":
            tokens = [list(s) for s in strings]
        else:
            tokens = [list(t) for t in self.split(strings.astype(str))]
            if len(tokens) != len(strings):
                raise ValueError(f"The split callable returned {len(tokens)} token lists for {len(strings)} strings.")
        if self._widths is not None:
            tokens = [_ngrams(t, self._widths) for t in tokens]
        return tokens

    # ----- vocabulary ------------------------------------------------------------------------------
    def adapt(self, data, batch_size=None, steps=None):
        """Learn the vocabulary (and, for ``"tf_idf"``, the document frequencies) from ``data``.

        Args:
            data: a string, a list / tuple / NumPy array of strings, a ``rnnkit.data.Dataset``
                of string batches, or any iterable of string batches.
            batch_size: ignored (accepted as in Keras).
            steps: for datasets and iterables, the most batches to read.

            vectorize.adapt(["a b b", "c"])      # vocabulary ['', '[UNK]', 'b', 'c', 'a']
        """
        if self._has_input_vocabulary:
            raise ValueError(f"Cannot adapt layer '{self.name}': it was given a fixed vocabulary via the "
                             "`vocabulary` argument.")
        if isinstance(data, (str, bytes, list, tuple, np.ndarray)):
            batches = [data]
        elif hasattr(data, "__iter__"):
            batches = data if steps is None else _first(data, steps)
        else:
            raise TypeError(f"adapt() takes strings, a list or array of strings, or a dataset of string batches; "
                            f"got {type(data).__name__}.")
        counts, document_counts, documents = collections.Counter(), collections.Counter(), 0
        for batch in batches:
            if isinstance(batch, (tuple, dict)) and not isinstance(data, (list, tuple)):
                raise ValueError("adapt() needs batches of strings, but the dataset yields tuples or dicts; pass "
                                 "only the texts, e.g. ds.map(lambda x, y: x).")
            strings, _ = self._strings(batch)
            for tokens in self._token_lists(strings.reshape(-1) if self.split is not None else strings):
                counts.update(tokens)
                if self.output_mode == "tf_idf":
                    document_counts.update(set(tokens))
                    documents += 1
        counts.pop(MASK_TOKEN, None)
        counts.pop(OOV_TOKEN, None)
        tokens = self._rank_tokens(counts)
        if self.max_tokens is not None:
            tokens = tokens[: self.max_tokens - self._token_start]
        self._set_tokens(tokens)
        if self.output_mode == "tf_idf":
            weights = [math.log(1 + documents / (1 + document_counts[t])) for t in tokens]
            mean = float(np.mean(np.asarray(weights, dtype=np.float32))) if weights else 0.0
            self._set_idf(np.asarray([mean] + weights, dtype=np.float32))

    def _rank_tokens(self, counts):
        """Tokens by descending count, ties by descending token (Keras's order); ``counts`` is a
        Counter in first-seen order (``rnnkit.text.TextVectorizer`` ranks differently)."""
        return [token for token, _ in sorted(counts.items(), key=lambda kv: (kv[1], kv[0]), reverse=True)]

    def set_vocabulary(self, vocabulary, idf_weights=None):
        """Use ``vocabulary`` instead of an adapted one (``idf_weights`` too, in ``"tf_idf"`` mode).

        Args:
            vocabulary: a list / array of tokens, with or without the special tokens in front
                (``["", "[UNK]"]`` in ``"int"`` mode, ``["[UNK]"]`` otherwise), or the path of
                a UTF-8 text file with one token per line.
            idf_weights: one weight per entry of ``vocabulary`` (``"tf_idf"`` mode only).

            vectorize.set_vocabulary(["cat", "dog"])    # ids 2 and 3
        """
        if self.output_mode == "tf_idf" and idf_weights is None:
            raise ValueError("idf_weights must be set if output_mode is 'tf_idf'.")
        if self.output_mode != "tf_idf" and idf_weights is not None:
            raise ValueError(f"idf_weights should only be set if output_mode is 'tf_idf', not {self.output_mode!r}.")
        if isinstance(vocabulary, (str, os.PathLike)):
            if not os.path.isfile(vocabulary):
                raise ValueError(f"Vocabulary file {vocabulary} does not exist.")
            with open(vocabulary, encoding="utf-8") as f:
                vocabulary = f.read().splitlines()
            while vocabulary and vocabulary[-1] == "":
                vocabulary.pop()
        vocabulary = [t.decode(self.encoding) if isinstance(t, bytes) else str(t) for t in np.asarray(
            vocabulary, dtype=object).reshape(-1)]
        if not vocabulary:
            raise ValueError("Cannot set an empty vocabulary.")
        special = [MASK_TOKEN, OOV_TOKEN][2 - self._token_start:]
        found_special = vocabulary[:len(special)] == special
        tokens = vocabulary[len(special):] if found_special else vocabulary
        repeated = [t for t, n in collections.Counter(tokens).items() if n > 1]
        if repeated:
            raise ValueError(f"The vocabulary has repeated tokens: {repeated[:5]}. Make it unique.")
        for token, what in ((MASK_TOKEN, "padding"), (OOV_TOKEN, "OOV")):
            if token in tokens and (token == OOV_TOKEN or self.output_mode == "int"):
                raise ValueError(f"The vocabulary holds the {what} token {token!r} at position "
                                 f"{vocabulary.index(token)}; leave the special tokens out, or put exactly "
                                 f"{special} first.")
        if self.max_tokens is not None and self._token_start + len(tokens) > self.max_tokens:
            raise ValueError(f"The vocabulary has {self._token_start + len(tokens)} ids with the special ones, more "
                             f"than max_tokens={self.max_tokens}.")
        self._set_tokens(tokens)
        if idf_weights is not None:
            weights = np.asarray(idf_weights, dtype=np.float32).reshape(-1)
            if len(weights) != len(vocabulary):
                raise ValueError(f"idf_weights must be as long as the vocabulary: {len(weights)} weights for "
                                 f"{len(vocabulary)} tokens.")
            if not found_special:
                weights = np.concatenate([[weights.mean()], weights]).astype(np.float32)
            self._set_idf(weights)

    def _set_tokens(self, tokens):
        self._tokens = list(tokens)
        self._index = {token: i for i, token in enumerate(self._tokens, self._token_start)}
        if self.output_mode == "int":
            self._index[MASK_TOKEN] = 0

    def _set_idf(self, weights):
        if self.pad_to_max_tokens:
            weights = np.pad(weights, (0, self.max_tokens - len(weights)))
        self._idf = torch.from_numpy(np.asarray(weights, dtype=np.float32))

    def get_vocabulary(self, include_special_tokens=True):
        """The tokens by id: ``["", "[UNK]", most frequent, ...]`` in ``"int"`` mode,
        ``["[UNK]", ...]`` otherwise; without the special tokens if asked.

            vectorize.get_vocabulary()[:3]              # ['', '[UNK]', 'the']
        """
        special = [MASK_TOKEN, OOV_TOKEN][2 - self._token_start:]
        return (special if include_special_tokens else []) + list(self._tokens)

    def vocabulary_size(self):
        """The number of ids, special ones included (the ``Embedding``'s ``input_dim``)."""
        return self._token_start + len(self._tokens)

    # ----- calling -------------------------------------------------------------------------------------
    def __call__(self, inputs, *args, **kwargs):
        if is_symbolic(inputs):
            return super().__call__(inputs, *args, **kwargs)
        return self.call(inputs)

    def forward(self, inputs):
        return self.call(inputs)

    def call(self, inputs):
        """Vectorise a string or a batch of strings (see the class docstring)."""
        strings, single = self._strings(inputs)
        if not self._tokens and not self.pad_to_max_tokens:
            raise RuntimeError(f"Layer '{self.name}' has no vocabulary yet: call adapt(texts) or "
                               "set_vocabulary(tokens) first.")
        rows = self._token_lists(strings.reshape(1) if single else strings)
        ids = self._ids(rows)
        if self.output_mode == "int":
            if self.split is None and strings.ndim <= 1 and self.output_sequence_length is None:
                out = torch.tensor([row[0] for row in ids], dtype=torch.int64)
            else:
                out = _pad(ids, self.output_sequence_length)
        else:
            out = self._encode(ids)
        return out[0] if single else out

    def _ids(self, token_lists):
        get, oov = self._index.get, self._oov_id
        if self.output_mode == "int":
            return [[get(token, oov) for token in tokens] for tokens in token_lists]
        return [[get(token, oov) for token in tokens if token != MASK_TOKEN] for tokens in token_lists]

    def _encode(self, ids):
        """multi_hot / count / tf_idf vectors of id lists (the padding token "" counts nowhere)."""
        depth = self.max_tokens if self.pad_to_max_tokens else self.vocabulary_size()
        out = np.zeros((len(ids), depth), dtype=np.float32)
        for row, row_ids in zip(out, ids):
            np.add.at(row, np.asarray(row_ids, dtype=np.int64), 1.0)
        if self.output_mode == "multi_hot":
            out = np.minimum(out, 1.0)
        out = torch.from_numpy(out)
        if self.output_mode == "tf_idf":
            if self._idf is None:
                raise RuntimeError(f"Layer '{self.name}' has no idf weights: adapt it or set_vocabulary(tokens, "
                                   "idf_weights).")
            out = out * self._idf
        return out

    def compute_output_shape(self, input_shape):
        self._traced_dtypes = "int64" if self.output_mode == "int" else "float32"
        batch = tuple(input_shape[:1])
        if self.output_mode == "int":
            return batch + (self.output_sequence_length,)
        return batch + (self.max_tokens if self.pad_to_max_tokens else self.vocabulary_size(),)

    # ----- config -----------------------------------------------------------------------------------
    def get_config(self):
        """The settings, the vocabulary (special tokens included) and the idf weights: JSON-able
        unless ``standardize`` or ``split`` is a callable that is not registered with
        ``rnnkit.saving.register_keras_serializable``."""
        vocabulary = self.get_vocabulary() if self._tokens else None
        idf = None if self._idf is None or vocabulary is None else self._idf[:len(vocabulary)].tolist()
        return {**super().get_config(), "max_tokens": self.max_tokens, "standardize": _serialized(self.standardize),
                "split": _serialized(self.split), "ngrams": self.ngrams, "output_mode": self.output_mode,
                "output_sequence_length": self.output_sequence_length, "pad_to_max_tokens": self.pad_to_max_tokens,
                "vocabulary": vocabulary, "idf_weights": idf, "encoding": self.encoding,
                "has_input_vocabulary": self._has_input_vocabulary, "vocabulary_size": self.vocabulary_size()}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _resolve(option, what):
    """A registered function's name (``"package>name"``, from a config) back to the function."""
    modes = STANDARDIZE if what == "standardize" else SPLIT
    if isinstance(option, str) and option not in modes:
        try:
            return registry.lookup(option)
        except ValueError:
            raise ValueError(f"{what} must be one of {modes}, None, a callable or the name of a registered "
                             f"function, got {option!r}.") from None
    return option


def _serialized(option):
    if callable(option):
        return getattr(option, "_registered_name", option)
    return option


def _ngrams(tokens, widths):
    """``tf.strings.ngrams``: all n-grams of the first width, then of the next, ... joined by " "."""
    return [" ".join(tokens[i:i + n]) for n in widths for i in range(len(tokens) - n + 1)]


def _pad(ids, length):
    """Id lists as an int64 tensor, cut at the end to ``length`` and padded with 0 at the end."""
    if length is None:
        length = max((len(row) for row in ids), default=0)
    out = np.zeros((len(ids), length), dtype=np.int64)
    for row, row_ids in zip(out, ids):
        row_ids = row_ids[:length]
        row[:len(row_ids)] = row_ids
    return torch.from_numpy(out)


def _first(iterable, steps):
    for i, batch in enumerate(iterable):
        if i >= steps:
            return
        yield batch
