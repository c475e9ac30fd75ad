"""Text to token ids for rnnkit's applications: ``TextVectorizer`` for words or characters.

``TextVectorizer`` is :class:`rnnkit.layers.TextVectorization` (which does the work) with the
applications' tokenisation rules below instead of Keras's, a ``min_count``, equal counts kept
in first-appearance order, a choice of truncating side, NumPy results and ``inverse``.

    from rnnkit.text import TextVectorizer
    vec = TextVectorizer(max_tokens=20000, output_sequence_length=60)
    vec.adapt(train_texts)
    x = vec(["A tedious, overlong film."])      # int64 array (1, 60), 0-padded at the end
    vec.inverse(x)                               # ['a tedious overlong film']

Index rules (as Keras's ``Tokenizer(oov_token=...)``, ``TextVectorization``):

* 0 is padding and never a token; 1 is the out-of-vocabulary token ``"[UNK]"``.
* The other tokens follow by descending count in the adapted texts; equal counts keep
  the order in which the tokens first appeared (Keras's ``TextVectorization`` puts them in
  descending string order instead).
* ``max_tokens`` caps the vocabulary size *including* padding and OOV, so it is the
  ``input_dim`` of the ``Embedding`` that reads the ids (``vocabulary_size()``).

Standardisation, in this order:

1. ``lower=True`` lower-cases with ``str.lower()`` (default for words; off for characters).
2. Typographic apostrophes (U+2018, U+2019, U+02BC) become ``'``.
3. Word level only -- ``punctuation`` decides what counts as a token:

   * ``"strip"`` (default): a token is a run of letters and digits (any script), with
     apostrophes kept *inside* a word (``it's``, ``o'clock``). Everything else --
     punctuation, symbols, ``_``, hyphens, apostrophes at a word's edge -- separates
     tokens and is dropped: ``"After-effects, it's 'great'!"`` ->
     ``after effects it's great``.
   * ``"split"``: as ``"strip"``, but each punctuation or symbol character is a token of
     its own: ``"great!"`` -> ``great !``.
   * ``"keep"``: split on whitespace only; punctuation stays attached to words.

Character level: every character (after step 1-2) is a token; nothing is dropped.

Sequences are padded with 0 at the end (``padding='post'``), which is what lets masked
recurrent layers run the fused packed-sequence kernel, and cut at the end when longer
than ``output_sequence_length`` (``truncating='post'``, keeping the start; pass
``truncating='pre'`` to keep the end). With ``output_sequence_length=None`` a batch is
padded to its longest sequence.
"""
from __future__ import annotations

import re

import numpy as np

from .layers.text_vectorization import TextVectorization
from .utils.sequences import pad_sequences

__all__ = ["TextVectorizer", "PAD_TOKEN", "OOV_TOKEN", "standardize", "tokenize"]

PAD_TOKEN = ""
OOV_TOKEN = "[UNK]"
PAD_INDEX, OOV_INDEX = 0, 1

_APOSTROPHES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u02bc": "'"})
_WORD = r"[^\W_]+(?:'[^\W_]+)*"
_PATTERNS = {
    "strip": re.compile(_WORD),
    "split": re.compile(_WORD + r"|[^\w\s]|_"),
}
SPLITS = ("word", "char")
PUNCTUATION = ("strip", "split", "keep")
TRUNCATING = ("pre", "post")


def standardize(text, lower=True):
    """Step 1-2 of the rules above: optional lower-casing and apostrophe normalisation."""
    if not isinstance(text, str):
        raise TypeError(f"TextVectorizer takes strings, got {type(text).__name__}.")
    if lower:
        text = text.lower()
    return text.translate(_APOSTROPHES)


def tokenize(text, split="word", lower=True, punctuation="strip"):
    """The tokens of one string under the rules above (a list of str)."""
    text = standardize(text, lower)
    if split == "char":
        return list(text)
    if punctuation == "keep":
        return text.split()
    return _PATTERNS[punctuation].findall(text)


class _AppVectorization(TextVectorization):
    """TextVectorization ranking equal counts by first appearance and dropping tokens seen fewer
    than ``min_count`` times: the vocabulary rule of :class:`TextVectorizer`."""

    def __init__(self, min_count=1, **kwargs):
        super().__init__(**kwargs)
        self.min_count = min_count

    def _rank_tokens(self, counts):
        # Counter keeps first-appearance order; sorted() is stable, so ties keep it too.
        return [tok for tok, n in sorted(counts.items(), key=lambda kv: -kv[1]) if n >= self.min_count]


class TextVectorizer:
    """Map strings to padded int arrays of token ids, word or character level.

    ``split``: "word" or "char". ``max_tokens``: the most ids, padding and OOV included
    (None: every token seen). ``min_count``: drop tokens seen fewer times when adapting.
    ``output_sequence_length``: pad/cut every sequence to this length (None: longest in
    the batch). ``lower``: lower-case first (default True for words, False for chars).
    ``punctuation``: "strip", "split" or "keep" (word level; see the module doc).
    ``vocabulary``: a ready list of tokens (without padding and OOV) instead of ``adapt``.
    """

    def __init__(self, split="word", max_tokens=None, output_sequence_length=None, lower=None,
                 punctuation="strip", truncating="post", min_count=1, vocabulary=None):
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}.")
        if punctuation not in PUNCTUATION:
            raise ValueError(f"punctuation must be one of {PUNCTUATION}, got {punctuation!r}.")
        if truncating not in TRUNCATING:
            raise ValueError(f"truncating must be 'pre' or 'post', got {truncating!r}.")
        if max_tokens is not None and int(max_tokens) < 3:
            raise ValueError(f"max_tokens must be at least 3 (padding, OOV and one token), got {max_tokens}.")
        if output_sequence_length is not None and int(output_sequence_length) < 1:
            raise ValueError(f"output_sequence_length must be positive, got {output_sequence_length}.")
        if int(min_count) < 1:
            raise ValueError(f"min_count must be at least 1, got {min_count}.")
        self.split = split
        self.max_tokens = None if max_tokens is None else int(max_tokens)
        self.output_sequence_length = None if output_sequence_length is None else int(output_sequence_length)
        self.lower = (split == "word") if lower is None else bool(lower)
        self.punctuation = punctuation
        self.truncating = truncating
        self.min_count = int(min_count)
        self._layer = _AppVectorization(min_count=self.min_count, max_tokens=self.max_tokens, standardize=None,
                                        split=self._tokenize_batch)
        self._has_vocabulary = False
        if vocabulary is not None:
            self.set_vocabulary(vocabulary)

    # ----- vocabulary ----------------------------------------------------------------------
    def tokenize(self, text):
        """Tokens of one string under this vectorizer's rules."""
        return tokenize(text, self.split, self.lower, self.punctuation)

    def _tokenize_batch(self, texts):
        return [self.tokenize(text) for text in texts]

    def adapt(self, texts):
        """Build the vocabulary from an iterable of strings (or one long string at char level)."""
        texts = [texts] if isinstance(texts, str) else list(texts)
        if not texts:
            raise ValueError("adapt() got no texts.")
        self._layer.adapt(texts)
        if not self._layer.get_vocabulary(include_special_tokens=False):
            raise ValueError("adapt() found no tokens in the texts (are they all empty or punctuation?).")
        self._has_vocabulary = True
        return self

    def set_vocabulary(self, vocabulary):
        """Use ``vocabulary`` (tokens, with or without ``["", "[UNK]"]`` in front)."""
        self._layer.set_vocabulary(list(vocabulary))
        self._has_vocabulary = True

    def _require_vocab(self):
        if not self._has_vocabulary:
            raise RuntimeError("This TextVectorizer has no vocabulary yet: call adapt(texts) first.")

    def get_vocabulary(self):
        """All tokens by id: ``["", "[UNK]", most frequent, ...]``."""
        self._require_vocab()
        return self._layer.get_vocabulary()

    def vocabulary_size(self):
        """Number of ids (padding and OOV included) = the ``Embedding``'s ``input_dim``."""
        self._require_vocab()
        return self._layer.vocabulary_size()

    # ----- encoding ------------------------------------------------------------------------
    def texts_to_sequences(self, texts):
        """Unpadded id lists, one per string (unknown tokens -> 1)."""
        self._require_vocab()
        strings, _ = self._layer._strings([texts] if isinstance(texts, str) else list(texts))
        return self._layer._ids(self._layer._token_lists(strings))

    def encode(self, text):
        """One string (e.g. a whole corpus at char level) -> 1-D int64 array, unpadded."""
        return np.asarray(self.texts_to_sequences([text])[0], dtype=np.int64)

    def __call__(self, texts, output_sequence_length=None):
        """Strings -> int64 array (n, length), padded with 0 at the end.

        A single string is treated as a batch of one. The length is
        ``output_sequence_length`` (argument, else the one set on the vectorizer), else
        the longest sequence in the batch.
        """
        sequences = self.texts_to_sequences(texts)
        length = output_sequence_length or self.output_sequence_length
        if length is None:
            length = max((len(s) for s in sequences), default=0)
        return pad_sequences(sequences, maxlen=length, dtype="int64", padding="post",
                             truncating=self.truncating, value=PAD_INDEX)

    def lengths(self, texts):
        """Token counts before padding or cutting (to measure what truncation drops)."""
        return np.array([len(s) for s in self.texts_to_sequences(texts)], dtype=np.int64)

    def inverse(self, ids):
        """Ids -> strings: padding is dropped, unknown ids read ``[UNK]``; words are joined
        with single spaces, characters with nothing. Takes one sequence or a batch; returns
        one string or a list of them."""
        self._require_vocab()
        array = np.asarray(ids)
        if array.ndim == 0:
            array = array.reshape(1)
        if array.ndim == 1:
            return self._decode(array)
        if array.ndim != 2:
            raise ValueError(f"inverse() takes a 1-D or 2-D array of ids, got shape {array.shape}.")
        return [self._decode(row) for row in array]

    def _decode(self, row):
        joiner = "" if self.split == "char" else " "
        vocabulary = self._layer.get_vocabulary()
        tokens = []
        for i in row.tolist():
            i = int(i)
            if i == PAD_INDEX:
                continue
            tokens.append(vocabulary[i] if 0 <= i < len(vocabulary) else OOV_TOKEN)
        return joiner.join(tokens)

    # ----- config --------------------------------------------------------------------------
    def get_config(self):
        """JSON-able settings and vocabulary; ``from_config`` rebuilds an identical vectorizer."""
        config = {"split": self.split, "max_tokens": self.max_tokens,
                  "output_sequence_length": self.output_sequence_length, "lower": self.lower,
                  "punctuation": self.punctuation, "truncating": self.truncating,
                  "min_count": self.min_count}
        config["vocabulary"] = self.get_vocabulary()[2:] if self._has_vocabulary else None
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        unknown = set(config) - {"split", "max_tokens", "output_sequence_length", "lower", "punctuation",
                                 "truncating", "min_count", "vocabulary"}
        if unknown:
            raise ValueError(f"Unknown TextVectorizer config key(s): {sorted(unknown)}.")
        return cls(**config)

    def __repr__(self):
        size = f"{self.vocabulary_size()} ids" if self._has_vocabulary else "not adapted"
        return (f"TextVectorizer(split={self.split!r}, max_tokens={self.max_tokens}, "
                f"output_sequence_length={self.output_sequence_length}, {size})")
