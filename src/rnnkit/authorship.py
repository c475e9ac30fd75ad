"""Authorship attribution: who wrote a text, from how it is written.

Four methods, all fitted on the known texts of a training fold only:

* **Per-author character language models** (the lecture's method). One GRU language model per
  author learns to predict the next character of that author's texts, read through
  :func:`distort` (content words masked, so that the models learn style rather than topic).
  :func:`author_lms` trains a model on all training texts, then fine-tunes a copy on each
  author's texts with the same number of steps per author and (``balanced``) on no more
  distinct text than the second most prolific author wrote, so that the gaps in bpc measure
  style, not how much each author wrote or how long a model trained. A new text x_1..x_n is
  scored by each model in bits per character,

      bpc_a(x) = -(1/n) * sum_t log2 p_a(x_t | x_<t),

  and attributed to the author whose model is least surprised (lowest bpc). The margin is the
  runner-up's bpc minus the winner's (bits/char; larger = surer).
* **A recurrent classifier on word chunks**: each text is cut into chunks of ``size`` words, a
  GRU classifies each chunk, and a paper's chunks are pooled by summing their log-probabilities
  (:func:`pool_chunks`).
* **Function words -> linear classifier**: rates per 1,000 words of :data:`FUNCTION_WORDS`
  (Mosteller & Wallace's 70 words), standardised, then logistic regression (scikit-learn).
* **Burrows's Delta**: the ``n`` most frequent words of the training texts, their rates
  z-scored with the training mean and standard deviation, and the distance of a text to
  each author's centroid z-vector c_a,

      Delta_a(x) = (1/n) * sum_i |z_i(x) - c_a,i|      (``kind="burrows"``)
      1 - cos(z(x), c_a)                              (``kind="cosine"``, Smith & Aldridge 2011)

Evaluation splits are by *paper*: :func:`paper_folds` gives leave-one-paper-out or stratified
K folds, and :func:`check_fold` asserts that no chunk of a held-out paper is in its training
fold.

    >>> from rnnkit.authorship import words, word_rates, burrows_delta
    >>> x = word_rates(["the cat and the dog", "upon the hill upon it", "the cat the dog"], ["the", "upon"])
    >>> d = burrows_delta(x[:2], ["A", "B"], x[2:])      # (1 text, 2 authors) distances
    >>> ["A", "B"][int(d.argmin())]
    'A'
"""
from __future__ import annotations

import math
import re
from collections import Counter

import numpy as np

__all__ = ["FUNCTION_WORDS", "words", "distort", "word_rates", "most_frequent_words", "burrows_delta",
           "function_word_classifier", "chunk_tokens", "paper_folds", "check_fold", "pool_chunks",
           "attribution", "build_char_lm", "train_char_lm", "cap_texts", "author_lms", "bits_per_char",
           "build_chunk_classifier", "combined_lm"]

LN2 = math.log(2)

# Mosteller & Wallace's 70 function words (Inference and Disputed Authorship: The Federalist,
# 1964; the list of Bosch & Smith 1998 and most later Federalist studies).
FUNCTION_WORDS = tuple("""
a all also an and any are as at be been but by can do down even every for from had has have her his
if in into is it its may more must my no not now of on one only or our shall should so some such than
that the their then there things this to up upon was were what when which who will with would your
""".split())


# ----- words and their rates ------------------------------------------------------------------
_WORD = re.compile(r"[a-z]+(?:['\u2019][a-z]+)*", re.IGNORECASE | re.ASCII)  # ASCII letters, inner apostrophes


def words(text):
    """Lower-case word tokens (letters and inner apostrophes): ``words("Upon it, isn't")`` ->
    ``['upon', 'it', "isn't"]``."""
    return _WORD.findall(text.lower())


def distort(text, keep):
    """Text distortion (Stamatatos 2017, "multiple asterisks"): every word whose lower case is not
    in ``keep`` becomes as many ``*`` as it has characters, and every digit becomes ``#``; the
    kept words, punctuation and spacing stay. A character model of the result sees how an author
    writes (function words, punctuation, word lengths), not what the text is about. ``keep=None``
    returns the text unchanged.

    >>> distort("Upon the 4th of July, whilst...", {"upon", "the", "of", "whilst"})
    'Upon the #** of ****, whilst...'
    """
    if keep is None:
        return text
    keep = frozenset(keep)
    text = _WORD.sub(lambda m: m.group(0) if m.group(0).lower() in keep else "*" * len(m.group(0)), text)
    return re.sub(r"[0-9]", "#", text)


def word_rates(texts, vocabulary):
    """(n_texts, len(vocabulary)) occurrences of each word per 1,000 words of each text (texts
    as strings or as lists of words from :func:`words`)."""
    index = {w: i for i, w in enumerate(vocabulary)}
    out = np.zeros((len(texts), len(vocabulary)))
    for row, text in enumerate(texts):
        tokens = words(text) if isinstance(text, str) else text
        for word, count in Counter(t for t in tokens if t in index).items():
            out[row, index[word]] = count
        out[row] *= 1000.0 / max(len(tokens), 1)
    return out


def most_frequent_words(texts, n):
    """The ``n`` most frequent words over ``texts`` (strings or lists of words; ties: alphabetical)."""
    counts = Counter(w for text in texts for w in (words(text) if isinstance(text, str) else text))
    return [w for w, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n]]


def burrows_delta(train_rates, train_labels, test_rates, kind="burrows"):
    """Delta distances (n_test, n_authors) to each author's centroid, authors in sorted order.

    Rates are z-scored with the *training* standard deviation around the mean of the authors'
    mean rates (each author weighs the same: with one author writing most texts, the plain mean
    would put that author's centroid at about 0, which has no direction for cosine Delta);
    features constant in training are dropped. ``kind`` is ``"burrows"`` (mean absolute
    difference) or ``"cosine"``.
    """
    train_rates, test_rates = np.asarray(train_rates, float), np.asarray(test_rates, float)
    labels = np.asarray(train_labels)
    authors = sorted(set(labels.tolist()))
    mean = np.mean([train_rates[labels == a].mean(axis=0) for a in authors], axis=0)
    std = train_rates.std(axis=0)
    keep = std > 0
    z_train = (train_rates[:, keep] - mean[keep]) / std[keep]
    z_test = (test_rates[:, keep] - mean[keep]) / std[keep]
    centroids = np.stack([z_train[labels == a].mean(axis=0) for a in authors])
    if kind == "burrows":
        return np.abs(z_test[:, None, :] - centroids[None, :, :]).mean(axis=2)
    if kind == "cosine":
        unit = lambda v: v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)  # noqa: E731
        return 1.0 - unit(z_test) @ unit(centroids).T
    raise ValueError(f"unknown Delta kind {kind!r}; choose 'burrows' or 'cosine'")


def function_word_classifier(C=1.0, seed=0):
    """StandardScaler -> LogisticRegression, for rows of :func:`word_rates` over FUNCTION_WORDS."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=2000, random_state=seed))


# ----- tokens, chunks and folds ---------------------------------------------------------------
def chunk_tokens(ids, size):
    """Consecutive chunks of ``size`` ids, (n_chunks, size); a last piece shorter than half a
    chunk joins nothing and is dropped, a longer one is padded with 0. A text shorter than
    half a chunk still gives one (padded) chunk."""
    ids = np.asarray(ids)
    full, rest = divmod(len(ids), size)
    n = full + (1 if rest >= size / 2 or full == 0 else 0)
    out = np.zeros((n, size), dtype=ids.dtype)
    for i in range(n):
        piece = ids[i * size:(i + 1) * size]
        out[i, :len(piece)] = piece
    return out


def paper_folds(labels, k=None, seed=0):
    """Folds over papers: a list of (train_papers, test_papers) index arrays. ``k=None``: leave
    one paper out (one fold per paper); else stratified K folds by author (scikit-learn's
    StratifiedKFold, shuffled with ``seed``; an author with fewer papers than ``k`` simply
    appears in fewer test folds)."""
    labels = np.asarray(labels)
    papers = np.arange(len(labels))
    if k is None:
        return [(papers[papers != i], papers[[i]]) for i in papers]
    import warnings

    from sklearn.model_selection import StratifiedKFold

    with warnings.catch_warnings():  # "The least populated class has only 3 members": expected here
        warnings.simplefilter("ignore", UserWarning)
        return list(StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(papers, labels))


def check_fold(train_groups, test_groups):
    """Assert that no paper (group id) of the test side is on the training side; returns True."""
    overlap = set(np.asarray(train_groups).tolist()) & set(np.asarray(test_groups).tolist())
    assert not overlap, f"papers {sorted(overlap)[:5]} are in both the training and the test fold"
    return True


def pool_chunks(chunk_log_probs, groups, n_groups):
    """Sum each paper's chunk log-probabilities (= multiply the chunks' probabilities, as if the
    chunks were independent evidence): (n_groups, n_classes). Divide by a paper's chunk count
    for the mean."""
    chunk_log_probs, groups = np.asarray(chunk_log_probs), np.asarray(groups)
    out = np.zeros((n_groups, chunk_log_probs.shape[1]))
    np.add.at(out, groups, chunk_log_probs)
    return out


def attribution(scores, lower_is_better=True):
    """(winner index, margin) per row of ``scores``: margin = runner-up minus winner (for
    distances / bpc) or winner minus runner-up (for scores where higher wins); >= 0."""
    scores = np.asarray(scores, float)
    s = scores if lower_is_better else -scores
    order = np.argsort(s, axis=1)
    rows = np.arange(len(s))
    return order[:, 0], s[rows, order[:, 1]] - s[rows, order[:, 0]]


# ----- character language models --------------------------------------------------------------
def build_char_lm(vocab_size, units=128, embed_dim=16, name="char_lm"):
    """Embedding -> GRU(units, all steps) -> Dense(vocab_size) next-character logits."""
    import rnnkit
    from rnnkit.layers import GRU, Dense, Embedding

    model = rnnkit.Sequential([Embedding(vocab_size, embed_dim), GRU(units, return_sequences=True),
                               Dense(vocab_size)], name=name)
    model.build((None, None))
    return model


def _windows(ids, seq_length, full_only=False):
    """Windows of seq_length + 1 ids with stride seq_length, the last one 0-padded: every id but
    the first is a target exactly once (``full_only``: no padded window)."""
    ids = np.asarray(ids)
    n = (len(ids) - 1) // seq_length if full_only else max(1, math.ceil((len(ids) - 1) / seq_length))
    out = np.zeros((n, seq_length + 1), dtype=np.int64)
    for i in range(n):
        piece = ids[i * seq_length:i * seq_length + seq_length + 1]
        out[i, :len(piece)] = piece
    return out


def train_char_lm(model, texts_ids, seq_length=100, epochs=3, batch_size=32, max_windows=None, seed=0,
                  learning_rate=3e-3):
    """Teach ``model`` to predict each next character of ``texts_ids`` (a list of id arrays, one
    per paper; windows never cross papers). Each epoch uses ``max_windows`` windows drawn at
    random (without replacement, or with it when there are fewer; all windows once when None),
    so every model given the same ``max_windows`` takes the same number of steps. Returns the
    final epoch's training loss in bits/char."""
    import rnnkit

    windows = np.concatenate([_windows(ids, seq_length, full_only=True) for ids in texts_ids])
    rng = np.random.default_rng(seed)
    model.compile(optimizer=rnnkit.optimizers.Adam(learning_rate=learning_rate, clipnorm=1.0),
                  loss=rnnkit.losses.SparseCategoricalCrossentropy(from_logits=True))
    loss = float("nan")
    for _ in range(epochs):
        if max_windows is None:
            pick = rng.permutation(len(windows))
        else:
            pick = rng.choice(len(windows), size=max_windows, replace=len(windows) < max_windows)
        batch = windows[pick]
        history = model.fit(batch[:, :-1], batch[:, 1:], batch_size=batch_size, epochs=1, shuffle=True, verbose=0)
        loss = history.history["loss"][-1] / LN2
        if not math.isfinite(loss):
            raise FloatingPointError("a character language model's training loss became NaN/inf")
    return loss


def cap_texts(texts, limit, rng):
    """Whole texts of ``texts`` in a random order (``rng``) until they hold at least ``limit``
    ids: an author who wrote more than ``limit`` is cut down to about that much (all texts
    when they hold no more)."""
    if sum(map(len, texts)) <= limit:
        return list(texts)
    kept, total = [], 0
    for i in rng.permutation(len(texts)):
        if total >= limit:
            break
        kept.append(texts[i])
        total += len(texts[i])
    return kept


def author_lms(ids_by_author, vocab_size, units=128, seq_length=100, trunk_epochs=2, trunk_windows=None,
               tune_windows=1000, seed=0, balanced=True, log=None):
    """One character language model per author: a GRU LM trained on every author's texts (the
    English all of them share), then one copy per author fine-tuned on that author's texts alone
    with ``tune_windows`` windows (the same number of steps for every author, however much each
    wrote). ``ids_by_author``: a list (one entry per author) of lists of id arrays. Returns the
    fine-tuned models in the same order.

    ``balanced`` keeps the author who wrote most from being favoured: each author's copy is
    then fine-tuned on at most about as much distinct text as the second most prolific author
    wrote (whole texts, a different random choice for each seed), so that no copy learns from
    more varied text than the others."""
    import rnnkit

    rnnkit.random.set_random_seed(seed)
    trunk = build_char_lm(vocab_size, units=units, name="trunk")
    loss = train_char_lm(trunk, [ids for texts in ids_by_author for ids in texts], seq_length=seq_length,
                         epochs=trunk_epochs, max_windows=trunk_windows, seed=seed)
    if log:
        log(f"shared LM: {loss:.3f} bits/char on its training windows")
    sizes = sorted(sum(map(len, texts)) for texts in ids_by_author)
    weights, models = trunk.get_weights(), []
    for a, texts in enumerate(ids_by_author):
        if balanced and len(sizes) > 1:
            texts = cap_texts(texts, sizes[-2], np.random.default_rng([seed, a]))
        model = build_char_lm(vocab_size, units=units, name=f"lm_{a}_seed{seed}")
        model.set_weights(weights)
        loss = train_char_lm(model, texts, seq_length=seq_length, epochs=1, max_windows=tune_windows,
                             seed=seed + 1 + a, learning_rate=1e-3)
        if log:
            log(f"author {a}: {loss:.3f} bits/char after fine-tuning")
        models.append(model)
    return models


def bits_per_char(logits_fn, ids, seq_length=100):
    """Bits per character of ``ids`` under a language model: every character but the first is
    predicted from those before it in its window (windows of ``seq_length``, each from a zero
    state). ``logits_fn(x)`` maps (n, seq) ids to (n, seq, vocab) logits, e.g. ``model.predict``."""
    w = _windows(ids, seq_length)
    logits = np.asarray(logits_fn(w[:, :-1]), dtype=np.float64)
    return bits_from_logits(logits, w[:, 1:])


def bits_from_logits(logits, targets):
    """Mean -log2 softmax(logits)[target] over the non-zero targets."""
    logits = logits - logits.max(axis=-1, keepdims=True)
    log_probs = logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True))
    picked = np.take_along_axis(log_probs, targets[..., None], axis=-1)[..., 0]
    mask = targets != 0
    return float(-picked[mask].sum() / max(mask.sum(), 1) / LN2)


def combined_lm(models, name="author_lms"):
    """One functional model holding every author's language model: ids -> [logits per author]
    (for saving them as one file)."""
    import rnnkit

    ids = rnnkit.Input(shape=(None,), dtype="int64", name="char_ids")
    return rnnkit.Model(ids, [m(ids) for m in models], name=name)


# ----- chunk classifier ------------------------------------------------------------------------
def build_chunk_classifier(vocab_size, num_classes, units=32, embed_dim=32, dropout=0.3):
    """Embedding(mask_zero) -> GRU(units) -> Dropout -> Dense(num_classes, softmax), for chunks
    of word ids."""
    import rnnkit
    from rnnkit.layers import GRU, Dense, Dropout, Embedding

    model = rnnkit.Sequential([Embedding(vocab_size, embed_dim, mask_zero=True), GRU(units), Dropout(dropout),
                               Dense(num_classes, activation="softmax")], name="chunk_classifier")
    model.build((None, None))
    model.compile(optimizer=rnnkit.optimizers.Adam(learning_rate=3e-3, clipnorm=1.0),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model
