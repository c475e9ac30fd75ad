"""Comparing sequences: siamese encoders, similarities, pair and triplet losses, retrieval metrics.

A *siamese* model applies one encoder, with one set of weights, to two sequences and
scores the pair from the two codes. With rnnkit's functional API it is the Keras recipe::

    import rnnkit
    from rnnkit import layers
    from rnnkit.compare import siamese

    encoder = rnnkit.Sequential([layers.Input((None, 3)), layers.LSTM(32)])
    model = siamese(encoder, input_shape=(None, 3), similarity="cosine")   # or "manhattan"
    # = one encoder called on two Inputs, then Dot(axes=1, normalize=True)([code_a, code_b]);
    #   "manhattan" is MaLSTM's exp(-||code_a - code_b||_1) (Subtract + Lambda)
    model.compile(optimizer="adam", loss="mse"); model.fit([left, right], same, ...)

Pair losses train such a model with ``fit``. In-batch losses (InfoNCE, supervised
contrastive, batch-hard triplets) need the codes of a whole batch at once: call the encoder
(a ``torch.nn.Module``) in a plain PyTorch loop and use the loss functions below; the
siamese model built afterwards from the same encoder shares the trained weights.

Similarities (:func:`similarity_matrix`, :func:`cosine_similarity`,
:func:`manhattan_similarity`) and losses take torch tensors; the retrieval metrics
(:func:`retrieval_metrics`, :func:`average_precision`, :func:`reciprocal_rank`,
:func:`recall_at_k`, :func:`expected_random_average_precision`) take NumPy arrays (or
anything ``np.asarray`` accepts), so they work on any embeddings, rnnkit's or not.

Ranking convention of the metrics: items are sorted by decreasing score; ties keep the
order of the items (a stable sort), so give ties no meaning. Items masked by ``exclude``
(the query itself, say) are removed before ranking. Queries with no relevant item are
left out of the means and counted in ``queries_without_relevant``.
"""
from __future__ import annotations

import collections
import re
import unicodedata
import zlib

import numpy as np
import torch
import torch.nn.functional as F

from .registry import register_keras_serializable

__all__ = [
    "siamese", "shared_encoder", "center_over_time", "manhattan_similarity_of_difference",
    "cosine_similarity", "manhattan_similarity", "similarity_matrix",
    "contrastive_loss", "triplet_margin_loss", "info_nce_loss", "supervised_contrastive_loss",
    "hardest_negatives", "batch_hard_triplet_loss",
    "rank_items", "average_precision", "reciprocal_rank", "recall_at_k", "retrieval_metrics",
    "expected_random_average_precision",
    "sum_word_pieces", "any_word_piece", "WordPieces",
]

SIMILARITIES = ("cosine", "manhattan")


# ----- functions used inside models (saved by name) ---------------------------------------------
@register_keras_serializable(package="rnnkit.compare")
def center_over_time(x):
    """(batch, steps, channels) -> (batch, steps * channels): each channel minus its mean over
    the steps, flattened, scaled to unit length. Followed by a cosine (``Dot(normalize=True)``),
    two such codes score the Pearson correlation of the encoder's output series, for any number
    of steps; the dot product of concatenated unit codes averages their cosines (ensembles)."""
    x = x - x.mean(dim=1, keepdim=True)
    x = x.reshape(x.shape[0], -1)
    return x / torch.linalg.vector_norm(x, dim=1, keepdim=True).clamp_min(1e-12)


@register_keras_serializable(package="rnnkit.compare")
def manhattan_similarity_of_difference(d):
    """MaLSTM's similarity from ``code_a - code_b``: exp(-||d||_1), shape (batch, 1)."""
    return torch.exp(-d.abs().sum(dim=1, keepdim=True))


# ----- the siamese recipe -------------------------------------------------------------------------
def siamese(encoder, input_shape, similarity="cosine", dtype=None, name="siamese"):
    """A functional model ``[a, b] -> similarity`` that applies ``encoder`` (one layer or model,
    so one set of weights) to both inputs.

    ``similarity``: ``"cosine"`` (``Dot(axes=1, normalize=True)``, in [-1, 1]) or
    ``"manhattan"`` (exp(-L1) as MaLSTM, in (0, 1]). The encoder must map a batch of sequences
    to a batch of vectors (batch, features). :func:`shared_encoder` gives it back.
    """
    from . import layers
    from .layers import Input
    from .models import Model

    if similarity not in SIMILARITIES:
        raise ValueError(f"similarity must be one of {', '.join(SIMILARITIES)}, got {similarity!r}.")
    left = Input(shape=tuple(input_shape), dtype=dtype, name="left")
    right = Input(shape=tuple(input_shape), dtype=dtype, name="right")
    code_left, code_right = encoder(left), encoder(right)
    if similarity == "cosine":
        score = layers.Dot(axes=1, normalize=True, name="cosine")([code_left, code_right])
    else:
        difference = layers.Subtract(name="difference")([code_left, code_right])
        score = layers.Lambda(manhattan_similarity_of_difference, name="manhattan")(difference)
    return Model([left, right], score, name=name)


def shared_encoder(model):
    """The encoder inside a model made by :func:`siamese` (the one layer called on both inputs)."""
    candidates = [layer for layer in model.layers
                  if type(layer).__name__ not in ("InputLayer", "Dot", "Subtract", "Lambda")]
    if len(candidates) != 1:
        raise ValueError("cannot tell which layer is the shared encoder of this model.")
    return candidates[0]


# ----- similarities (torch) -----------------------------------------------------------------------
def cosine_similarity(a, b=None, eps=1e-8):
    """Cosine similarity of every row of ``a`` with every row of ``b`` (default ``a``): (n, m)."""
    b = a if b is None else b
    return F.normalize(a, dim=-1, eps=eps) @ F.normalize(b, dim=-1, eps=eps).transpose(-1, -2)


def manhattan_similarity(a, b=None):
    """exp(-||a_i - b_j||_1) for every pair of rows: (n, m), in (0, 1]."""
    b = a if b is None else b
    return torch.exp(-torch.cdist(a, b, p=1))


def similarity_matrix(a, b=None, kind="cosine"):
    """Pairwise similarities of the rows of ``a`` and ``b``; ``a`` may be a NumPy array (the
    result is then NumPy too). ``kind``: cosine, manhattan or pearson (cosine of centred rows)."""
    as_numpy = isinstance(a, np.ndarray)
    ta = torch.as_tensor(np.asarray(a, dtype=np.float64) if as_numpy else a)
    tb = None if b is None else torch.as_tensor(np.asarray(b, dtype=np.float64) if as_numpy else b)
    if kind == "pearson":
        ta = ta - ta.mean(dim=-1, keepdim=True)
        tb = None if tb is None else tb - tb.mean(dim=-1, keepdim=True)
        kind = "cosine"
    if kind == "cosine":
        out = cosine_similarity(ta, tb)
    elif kind == "manhattan":
        out = manhattan_similarity(ta, tb)
    else:
        raise ValueError(f"kind must be cosine, manhattan or pearson, got {kind!r}.")
    return out.numpy() if as_numpy else out


# ----- losses (torch) ---------------------------------------------------------------------------
def contrastive_loss(distance, same, margin=1.0):
    """Hadsell, Chopra & LeCun's pair loss: ``same * d^2 + (1 - same) * max(0, margin - d)^2``,
    averaged. ``distance``: (batch,) distances (e.g. ``1 - cosine``); ``same``: 1 for a matching
    pair, 0 otherwise."""
    distance = distance.reshape(-1)
    same = torch.as_tensor(same, dtype=distance.dtype, device=distance.device).reshape(-1)
    return (same * distance.pow(2) + (1 - same) * F.relu(margin - distance).pow(2)).mean()


def _pair_similarity(a, b, similarity):
    if similarity == "cosine":
        return F.cosine_similarity(a, b, dim=-1)
    if similarity == "euclidean":
        return -torch.linalg.vector_norm(a - b, dim=-1)
    raise ValueError(f"similarity must be cosine or euclidean, got {similarity!r}.")


def triplet_margin_loss(anchor, positive, negative, margin=0.2, similarity="cosine"):
    """``mean(max(0, margin - s(anchor, positive) + s(anchor, negative)))``; ``similarity``:
    cosine, or euclidean (s = -distance, i.e. the classic ``d(a,p) - d(a,n) + margin``)."""
    return F.relu(margin - _pair_similarity(anchor, positive, similarity)
                  + _pair_similarity(anchor, negative, similarity)).mean()


def info_nce_loss(queries, keys, temperature=0.1, symmetric=False):
    """In-batch softmax (InfoNCE): ``queries[i]`` should be closer (cosine) to ``keys[i]`` than
    to every other key of the batch; cross-entropy over the batch. ``symmetric`` averages it
    with the keys -> queries direction."""
    logits = cosine_similarity(queries, keys) / temperature
    target = torch.arange(logits.shape[0], device=logits.device)
    loss = F.cross_entropy(logits, target)
    if symmetric:
        loss = 0.5 * (loss + F.cross_entropy(logits.transpose(0, 1), target))
    return loss


def supervised_contrastive_loss(embeddings, labels, temperature=0.1):
    """Khosla et al.'s supervised contrastive loss (InfoNCE with every item of the same label as
    a positive), on the cosine similarities of one batch. Items without a positive in the batch
    only serve as negatives. Returns 0 (with a gradient path) when no item has a positive."""
    labels = torch.as_tensor(labels, device=embeddings.device).reshape(-1)
    n = embeddings.shape[0]
    logits = cosine_similarity(embeddings) / temperature
    self_mask = torch.eye(n, dtype=torch.bool, device=embeddings.device)
    logits = logits.masked_fill(self_mask, float("-inf"))
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    positive = (labels[:, None] == labels[None, :]) & ~self_mask
    counts = positive.sum(dim=1)
    has = counts > 0
    if not bool(has.any()):
        return embeddings.sum() * 0.0
    per_anchor = -(log_prob.masked_fill(~positive, 0.0)).sum(dim=1)[has] / counts[has]
    return per_anchor.mean()


def hardest_negatives(similarities, labels):
    """Batch-hard mining: for each row, the index of the most similar item with another label
    (-1 where there is none). ``similarities``: (n, n) tensor; ``labels``: (n,)."""
    labels = torch.as_tensor(labels, device=similarities.device).reshape(-1)
    other = labels[:, None] != labels[None, :]
    masked = similarities.masked_fill(~other, float("-inf"))
    index = masked.argmax(dim=1)
    return torch.where(other.any(dim=1), index, torch.full_like(index, -1))


def batch_hard_triplet_loss(embeddings, labels, margin=0.2):
    """Hermans et al.'s batch-hard triplet loss on cosine similarity: for each anchor with a
    positive and a negative in the batch, the least similar positive against the most similar
    negative: ``mean(max(0, margin - min_pos_sim + max_neg_sim))``."""
    labels = torch.as_tensor(labels, device=embeddings.device).reshape(-1)
    sim = cosine_similarity(embeddings)
    n = sim.shape[0]
    eye = torch.eye(n, dtype=torch.bool, device=sim.device)
    same = (labels[:, None] == labels[None, :]) & ~eye
    other = labels[:, None] != labels[None, :]
    valid = same.any(dim=1) & other.any(dim=1)
    if not bool(valid.any()):
        return embeddings.sum() * 0.0
    hardest_pos = sim.masked_fill(~same, float("inf")).min(dim=1).values
    hardest_neg = sim.masked_fill(~other, float("-inf")).max(dim=1).values
    return F.relu(margin - hardest_pos + hardest_neg)[valid].mean()


# ----- retrieval metrics (NumPy) ----------------------------------------------------------------
def rank_items(scores, exclude=None):
    """Indices of the items by decreasing score (stable for ties), without the excluded ones."""
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    order = np.argsort(-scores, kind="stable")
    if exclude is not None:
        exclude = np.asarray(exclude, dtype=bool).reshape(-1)
        order = order[~exclude[order]]
    return order


def _ranked_relevance(scores, relevant, exclude=None):
    relevant = np.asarray(relevant, dtype=bool).reshape(-1)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if relevant.shape != scores.shape:
        raise ValueError(f"scores and relevant differ in length: {scores.shape[0]} and {relevant.shape[0]}.")
    return relevant[rank_items(scores, exclude)]


def average_precision(scores, relevant, exclude=None):
    """Average precision of one query: the mean over its relevant items of the precision at
    their ranks. NaN when no (non-excluded) item is relevant."""
    hits = _ranked_relevance(scores, relevant, exclude)
    if not hits.any():
        return float("nan")
    ranks = np.flatnonzero(hits) + 1
    return float(np.mean(np.arange(1, len(ranks) + 1) / ranks))


def reciprocal_rank(scores, relevant, exclude=None):
    """1 / the rank of the first relevant item (NaN when none is relevant)."""
    hits = _ranked_relevance(scores, relevant, exclude)
    if not hits.any():
        return float("nan")
    return 1.0 / (int(np.argmax(hits)) + 1)


def recall_at_k(scores, relevant, k, exclude=None):
    """The share of the relevant items found in the top ``k`` (with one relevant item per query:
    whether it is in the top ``k``). NaN when none is relevant."""
    hits = _ranked_relevance(scores, relevant, exclude)
    total = hits.sum()
    if total == 0:
        return float("nan")
    return float(hits[:k].sum() / total)


def retrieval_metrics(scores, relevant, exclude=None, ks=(1, 10)):
    """MAP, MRR and recall@k over queries. ``scores``, ``relevant`` (and ``exclude``): (queries,
    items) arrays, e.g. ``similarity_matrix(query_codes, corpus_codes)`` and a boolean matrix of
    which corpus item answers which query. Returns a dict with ``map``, ``mrr``,
    ``recall@k`` (share of the query's relevant items in its top k) and ``precision@k`` (share
    of the top k that is relevant) for each k, ``average_precisions`` (per counted query), ``queries`` (counted) and ``queries_without_relevant``."""
    scores = np.atleast_2d(np.asarray(scores, dtype=np.float64))
    relevant = np.atleast_2d(np.asarray(relevant, dtype=bool))
    if scores.shape != relevant.shape:
        raise ValueError(f"scores {scores.shape} and relevant {relevant.shape} differ in shape.")
    if exclude is not None:
        exclude = np.broadcast_to(np.asarray(exclude, dtype=bool), scores.shape)
    aps, rrs, recalls, precisions = [], [], {k: [] for k in ks}, {k: [] for k in ks}
    skipped = 0
    for i in range(scores.shape[0]):
        ex = None if exclude is None else exclude[i]
        hits = _ranked_relevance(scores[i], relevant[i], ex)
        if not hits.any():
            skipped += 1
            continue
        ranks = np.flatnonzero(hits) + 1
        aps.append(float(np.mean(np.arange(1, len(ranks) + 1) / ranks)))
        rrs.append(1.0 / ranks[0])
        for k in ks:
            recalls[k].append(float(hits[:k].sum() / len(ranks)))
            precisions[k].append(float(hits[:k].sum() / k))
    out = {"map": float(np.mean(aps)) if aps else float("nan"),
           "mrr": float(np.mean(rrs)) if rrs else float("nan")}
    for k in ks:
        out[f"recall@{k}"] = float(np.mean(recalls[k])) if recalls[k] else float("nan")
        out[f"precision@{k}"] = float(np.mean(precisions[k])) if precisions[k] else float("nan")
    out["queries"] = len(aps)
    out["queries_without_relevant"] = skipped
    out["average_precisions"] = aps
    return out


def expected_random_average_precision(n_relevant, n_items):
    """The exact expected average precision of a uniformly random ranking of ``n_items`` items
    of which ``n_relevant`` are relevant: (1/N) sum_k [1/k + (R-1)(k-1) / (k(N-1))]."""
    n, r = int(n_items), int(n_relevant)
    if not 0 < r <= n:
        raise ValueError(f"need 0 < n_relevant <= n_items, got {r} and {n}.")
    if n == 1:
        return 1.0
    k = np.arange(1, n + 1, dtype=np.float64)
    return float(np.sum(1.0 / k + (r - 1) * (k - 1) / (k * (n - 1))) / n)



# ----- texts: words as a word id plus hashed character n-grams ----------------------------------
@register_keras_serializable(package="rnnkit.compare")
def sum_word_pieces(x, mask=None):
    """(batch, words, pieces, dim) piece vectors -> (batch, words, dim) word vectors: the sum of
    a word's pieces (those the mask keeps, i.e. not padding), as fastText builds a word."""
    if mask is not None:
        x = x * mask.unsqueeze(-1).to(x.dtype)
    return x.sum(dim=2)


@register_keras_serializable(package="rnnkit.compare")
def any_word_piece(inputs, mask):
    """The word mask after :func:`sum_word_pieces`: a word is there when one of its pieces is."""
    return None if mask is None else mask.any(dim=-1)


class WordPieces:
    """Text -> (words, pieces) integer ids: each word is its id in a vocabulary (words seen at
    least ``min_count`` times when fitting) plus the hashed ids of its character n-grams
    (``"<word>"``, n in ``ngrams``), as in fastText. Words never seen still get their n-grams, so
    "jesus" shares pieces with "jesu", and a French and an English word spelt alike
    ("disciples", "apotres"/"apostles") share some. Text is lower-cased and accents are dropped
    (NFKD) before splitting into runs of letters or digits. Id 0 is padding.

    Arguments:
        buckets: number of hash buckets for n-grams (ids after the word ids).
        ngrams: n-gram lengths.
        max_pieces: pieces per word (the word id first, then n-grams, shortest n first).
        min_count: how often a word must occur in the fitting texts to get its own id.

    >>> wp = WordPieces(buckets=1000).fit(["the son of David", "fils de David"])
    >>> wp.encode(["David"]).shape                   # (texts, words, pieces)
    (1, 1, 12)
    """

    def __init__(self, buckets=2 ** 15, ngrams=(3, 4, 5), max_pieces=12, min_count=2, vocabulary=()):
        self.buckets, self.ngrams, self.max_pieces = int(buckets), tuple(int(n) for n in ngrams), int(max_pieces)
        self.min_count = int(min_count)
        self.vocabulary = list(vocabulary)
        self._index = {w: i + 1 for i, w in enumerate(self.vocabulary)}
        self._cache = {}

    _WORD = re.compile(r"[^\W_]+")

    @staticmethod
    def normalize(text):
        """Lower case, accents dropped: "Jésus" -> "jesus"."""
        text = unicodedata.normalize("NFKD", str(text).lower())
        return "".join(c for c in text if not unicodedata.combining(c))

    def words(self, text):
        return self._WORD.findall(self.normalize(text))

    def fit(self, texts):
        counts = collections.Counter(w for t in texts for w in self.words(t))
        self.vocabulary = sorted(w for w, c in counts.items() if c >= self.min_count)
        self._index = {w: i + 1 for i, w in enumerate(self.vocabulary)}
        self._cache = {}
        return self

    @property
    def input_dim(self):
        """The embedding size the ids need: padding + words + buckets."""
        return 1 + len(self.vocabulary) + self.buckets

    def pieces(self, word):
        """The ids of one word: [word id (if known)] + hashed n-grams, at most ``max_pieces``."""
        cached = self._cache.get(word)
        if cached is None:
            ids = [self._index[word]] if word in self._index else []
            marked = f"<{word}>"
            offset = 1 + len(self.vocabulary)
            for n in self.ngrams:
                ids.extend(offset + zlib.crc32(marked[i:i + n].encode("utf-8")) % self.buckets
                           for i in range(max(1, len(marked) - n + 1)))
            cached = self._cache[word] = ids[:self.max_pieces]
        return cached

    def encode_one(self, text, max_words=None):
        """One text -> (words, max_pieces) int32 array (zero-padded pieces)."""
        words = self.words(text)[:max_words]
        out = np.zeros((len(words), self.max_pieces), dtype=np.int32)
        for i, w in enumerate(words):
            p = self.pieces(w)
            out[i, :len(p)] = p
        return out

    @staticmethod
    def pad(encoded, max_words=None):
        """Stack per-text arrays from :meth:`encode_one` into (texts, words, pieces), zero-padded."""
        width = max([len(e) for e in encoded] + [1])
        width = width if max_words is None else min(width, max_words)
        pieces = encoded[0].shape[1] if encoded else 1
        out = np.zeros((len(encoded), width, pieces), dtype=np.int32)
        for i, e in enumerate(encoded):
            out[i, :min(len(e), width)] = e[:width]
        return out

    def encode(self, texts, max_words=None):
        """Texts -> (texts, words, pieces) int32 array, zero-padded to the longest text."""
        return self.pad([self.encode_one(t, max_words) for t in texts], max_words)

    def get_config(self):
        return {"buckets": self.buckets, "ngrams": list(self.ngrams), "max_pieces": self.max_pieces,
                "min_count": self.min_count, "vocabulary": list(self.vocabulary)}

    @classmethod
    def from_config(cls, config):
        return cls(**config)
