"""A user's own labelled texts: a folder of ``.txt`` files per class, or a CSV / TSV / JSON
Lines table, read into texts, labels and class names and split for training.

Two layouts:

* a folder with one sub-folder per class (Keras' ``text_dataset_from_directory`` layout);
  the sub-folder names, sorted, are the class names; every ``*.txt`` file below a class
  folder is one text, its id ``<class>/<path below the class folder>``; files directly in
  the top folder and hidden files or folders (``.name``) are ignored::

      reviews/neg/0001.txt   reviews/neg/0002.txt   reviews/pos/0001.txt ...

* a table, ``.csv``, ``.tsv`` (tab-separated) or ``.jsonl`` (one JSON object a line), with
  a text column and a label column (read with pandas, every cell as text); the id of a row
  is ``row<N>``, 1 = the first data row.

Files must be UTF-8 (a byte-order mark is allowed). Runs of whitespace become single
spaces. A text that repeats an earlier text of the same file or folder is dropped (so it
cannot sit in both training and test); the report counts them, and how many of them came
with a different label. Anything unusable is a one-line :class:`DataError` that names the
file, row or class: an empty folder, a file that is not UTF-8, an empty text, a missing
column (with the columns present), a single class, a class too small to split.

    data = read_labelled_texts("reviews/")
    splits = user_text_splits("reviews/", seed=0, val_fraction=0.1, test_fraction=0.15)
    splits.train.texts[0], splits.class_names[splits.train.labels[0]]

The split is :func:`rnnkit.datasets.text_corpora.stratified_split`, the one of the built-in
corpora: within each class, texts ordered by SHA-256 of ``"<seed>:<id>"``, the first
``test_fraction`` to test, the next ``val_fraction`` to validation, the rest to training.
So a built-in corpus written out as a folder with the same ids splits the same way.
"""
from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .cleaning import DataError, _list_columns, _missing_column
from .text_corpora import TextSet, TextSplits, stratified_split

__all__ = ["LabelledTexts", "TABLE_FORMATS", "read_labelled_texts", "read_text_folder", "read_text_table",
           "user_text_splits"]

TABLE_FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl"}
_SHOWN = 3  # file or row names quoted in one error message


@dataclass
class LabelledTexts:
    """Texts with their labels (strings) and ids, in reading order, and where they came from."""

    texts: list
    labels: list
    ids: list
    info: dict = field(default_factory=dict)

    def __len__(self):
        return len(self.texts)

    @property
    def class_names(self):
        return sorted(set(self.labels))


def _some(names, total=None):
    """'a, b, c and 4 more' for an error message."""
    names = list(names)
    total = len(names) if total is None else total
    shown = ", ".join(str(n) for n in names[:_SHOWN])
    return shown + (f" and {total - _SHOWN} more" if total > _SHOWN else "")


def _decode(data, where):
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{where} is not UTF-8 text ({exc.reason} at byte offset {exc.start}); re-save it as UTF-8, "
                        f"e.g. `iconv -f cp1252 -t utf-8`.") from None


def _normalise(text):
    return re.sub(r"\s+", " ", text).strip()


def _deduplicated(texts, labels, ids, info):
    """Drop texts that repeat an earlier one; count them (and those with another label) in ``info``."""
    first, keep, conflicting = {}, [], 0
    for i, text in enumerate(texts):
        if text in first:
            conflicting += labels[first[text]] != labels[i]
            continue
        first[text] = i
        keep.append(i)
    info.update(dropped_duplicates=len(texts) - len(keep), duplicates_with_another_label=conflicting)
    return LabelledTexts([texts[i] for i in keep], [labels[i] for i in keep], [ids[i] for i in keep], info)


# ----- a folder of class folders ----------------------------------------------------------------
def read_text_folder(root):
    """Texts from ``root/<class>/**/*.txt`` (see the module doc); returns :class:`LabelledTexts`."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root} is not a folder.")
    classes = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    loose = [p.name for p in root.glob("*.txt")]
    if not classes:
        hint = (f" ({len(loose)} .txt files lie directly in it: move them into one sub-folder per class)"
                if loose else "")
        raise DataError(f"{root} holds no class sub-folders{hint}; the layout is {root}/<class>/<name>.txt, "
                        f"one sub-folder per class.")
    texts, labels, ids, not_utf8, empty = [], [], [], [], []
    for folder in classes:
        files = sorted(p for p in folder.rglob("*.txt") if p.is_file()
                       and not any(part.startswith(".") for part in p.relative_to(folder).parts))
        if not files:
            raise DataError(f"class folder {folder} holds no .txt files; add some or remove the folder.")
        for path in files:
            try:
                text = _normalise(path.read_bytes().decode("utf-8-sig"))
            except UnicodeDecodeError:
                not_utf8.append(path)
                continue
            if not text:
                empty.append(path)
                continue
            texts.append(text)
            labels.append(folder.name)
            ids.append(f"{folder.name}/{path.relative_to(folder).as_posix()}")
    if not_utf8:
        raise DataError(f"{len(not_utf8)} file(s) are not UTF-8 text: {_some(not_utf8)}; re-save them as UTF-8 "
                        f"(e.g. `iconv -f cp1252 -t utf-8`) or remove them.")
    if empty:
        raise DataError(f"{len(empty)} file(s) hold no text: {_some(empty)}; remove them or add their text.")
    info = {"corpus": str(root), "format": "folder", "path": str(root.resolve()), "files": len(texts)}
    return _deduplicated(texts, labels, ids, info)


# ----- a table ----------------------------------------------------------------------------------
def _cell(value):
    """A table cell as text ('' when missing); 1.0 read from JSON as a label stays '1'."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


def read_text_table(path, text_column="text", label_column="label"):
    """Texts and labels from two columns of a ``.csv``, ``.tsv`` or ``.jsonl`` file."""
    path = Path(path)
    kind = TABLE_FORMATS.get(path.suffix.lower())
    if kind is None:
        raise DataError(f"{path}: expected a folder (one sub-folder per class) or a file ending in "
                        f"{', '.join(TABLE_FORMATS)}.")
    if not path.is_file():
        raise FileNotFoundError(f"no data file at {path}")
    content = _decode(path.read_bytes(), path)
    try:
        if kind == "jsonl":
            frame = pd.read_json(io.StringIO(content), lines=True, dtype=False)
        else:
            frame = pd.read_csv(io.StringIO(content), sep="," if kind == "csv" else "\t", dtype=str,
                                keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path} is empty.") from None
    except ValueError as exc:  # pandas' ParserError and JSON errors are ValueErrors
        raise DataError(f"{path} cannot be read as {kind.upper()}: {str(exc).strip().splitlines()[0]}") from None
    columns = [str(c) for c in frame.columns]
    for what, name in (("text", text_column), ("label", label_column)):
        if name not in columns:
            raise _missing_column(what, name, columns, str(path))
    if len(frame) == 0:
        raise DataError(f"{path} has columns ({_list_columns(columns)}) but no rows.")
    texts = [_normalise(_cell(v)) for v in frame[text_column]]
    labels = [_cell(v).strip() for v in frame[label_column]]
    for what, values in (("text", texts), ("label", labels)):
        missing = [f"row {i + 1}" for i, v in enumerate(values) if not v]
        if missing:
            raise DataError(f"{path}: {len(missing)} row(s) have an empty {what} in column '"
                            f"{text_column if what == 'text' else label_column}': {_some(missing)} "
                            f"(row 1 = the first data row); fill or remove them.")
    info = {"corpus": str(path), "format": kind, "path": str(path.resolve()), "rows": len(frame),
            "text_column": text_column, "label_column": label_column}
    return _deduplicated(texts, labels, [f"row{i + 1}" for i in range(len(texts))], info)


def read_labelled_texts(path, text_column=None, label_column=None):
    """A folder (:func:`read_text_folder`) or a table (:func:`read_text_table`; columns default
    to ``text`` and ``label``)."""
    path = Path(path)
    if path.is_dir():
        return read_text_folder(path)
    if not path.exists():
        raise FileNotFoundError(f"no data folder or file at {path}")
    return read_text_table(path, text_column or "text", label_column or "label")


# ----- splits -----------------------------------------------------------------------------------
def _check_classes(data):
    names = data.class_names
    if len(names) < 2:
        raise DataError(f"{data.info['corpus']} holds a single class ('{names[0]}'); a classifier needs texts of "
                        f"at least two classes.")
    return names


def user_text_splits(data, test_data=None, *, text_column=None, label_column=None, seed=0, val_fraction=0.1,
                     test_fraction=0.1):
    """:class:`TextSplits` of the texts at ``data``: stratified train / validation / test for
    ``seed``, or, with ``test_data``, train / validation from ``data`` and every text of
    ``test_data`` as the test split (its labels must all occur in ``data``).

    ``text_column`` / ``label_column`` name the columns of tables (default text / label).
    """
    train_all = read_labelled_texts(data, text_column, label_column)
    class_names = _check_classes(train_all)
    counts = {name: train_all.labels.count(name) for name in class_names}
    small = [name for name, n in counts.items() if n < 2]
    if small:
        raise DataError(f"class{'es' if len(small) > 1 else ''} {_some(repr(s) for s in small)} of "
                        f"{train_all.info['corpus']} {'have' if len(small) > 1 else 'has'} a single text, so it "
                        f"cannot be split stratified (that needs two or more per class); add texts or remove the "
                        f"class.")
    index = {name: i for i, name in enumerate(class_names)}
    labels = np.array([index[label] for label in train_all.labels], dtype=np.int64)
    ids = train_all.ids
    info = {**train_all.info, "classes": counts, "seed": seed, "val_fraction": val_fraction,
            "split_rule": "per class, ordered by sha256('<seed>:<id>'): test first, then val, rest train"}

    def take(rows):
        return TextSet([train_all.texts[i] for i in rows], labels[rows], [ids[i] for i in rows])

    if test_data is None:
        train, val, test = stratified_split(ids, labels, seed, val_fraction, test_fraction)
        info["test_fraction"] = test_fraction
        parts = [take(train), take(val), take(test)]
    else:
        train, val, _ = stratified_split(ids, labels, seed, val_fraction, 0.0)
        info["split_rule"] = "per class, ordered by sha256('<seed>:<id>'): val first, rest train; test: test_data"
        held_out = read_labelled_texts(test_data, text_column, label_column)
        unseen = sorted(set(held_out.labels) - set(class_names))
        if unseen:
            raise DataError(f"{held_out.info['corpus']} has label(s) never seen in {train_all.info['corpus']}: "
                            f"{_some(repr(u) for u in unseen)}; the classes there are {', '.join(class_names)}.")
        seen = set(train_all.texts)
        info["test_data"] = {k: held_out.info[k] for k in held_out.info if k != "corpus"}
        info["test_data"]["texts_also_in_data"] = sum(text in seen for text in held_out.texts)
        test = TextSet(list(held_out.texts), np.array([index[label] for label in held_out.labels], dtype=np.int64),
                       list(held_out.ids))
        parts = [take(train), take(val), test]
    for name, part in zip(("training", "validation", "test"), parts):
        if len(part) == 0:
            raise DataError(f"{train_all.info['corpus']}: {len(train_all)} texts leave the {name} split empty "
                            f"(validation {val_fraction:g}, test {test_fraction:g} of each class); add texts.")
    return TextSplits(*parts, class_names, info)
