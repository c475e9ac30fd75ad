"""``text_dataset_from_directory``: a folder of ``.txt`` files (one sub-folder per class) as a
:class:`rnnkit.data.Dataset` of ``(texts, labels)`` batches, with Keras 3's semantics."""
from __future__ import annotations

import os

import numpy as np

from ..data import Dataset

__all__ = ["text_dataset_from_directory"]

LABEL_MODES = ("int", "categorical", "binary", None)


def text_dataset_from_directory(directory, labels="inferred", label_mode="int", class_names=None,
                                batch_size=32, max_length=None, shuffle=True, seed=None,
                                validation_split=None, subset=None, follow_links=False, verbose=True):
    """Read the ``.txt`` files under ``directory`` as a dataset of ``(texts, labels)``, as Keras does.

    With ``labels="inferred"`` every sub-folder is a class: class names are the sub-folder
    names in alphanumeric order (or ``class_names``, in its order), and the files of a class
    are found recursively, in sorted order. Files are read lazily, as UTF-8, when the dataset
    is iterated; a file that is not UTF-8 raises a ``ValueError`` naming it.

    Args:
        directory: the folder with one sub-folder per class (``labels="inferred"``), or any
            folder of ``.txt`` files (then its structure is ignored).
        labels: ``"inferred"``; ``None`` (texts only); or a list of integer labels, one per
            ``.txt`` file in the sorted order of their paths.
        label_mode: ``"int"`` (int32 class indices, shape ``(batch,)``), ``"categorical"``
            (float32 one-hot, ``(batch, num_classes)``), ``"binary"`` (float32 0/1,
            ``(batch, 1)``; exactly two classes) or ``None`` (texts only).
        class_names: with ``labels="inferred"``, the sub-folders to use, in label order.
        batch_size: texts per batch; ``None`` yields single texts.
        max_length: cut every text to at most this many UTF-8 bytes (Keras cuts bytes; a
            character the cut would split is dropped).
        shuffle: shuffle the files (with ``seed``), else keep them in alphanumeric order.
        seed: seed of the shuffling; needed with ``validation_split`` and ``shuffle``.
        validation_split: fraction of the files (taken from the end of the shuffled list)
            kept for validation.
        subset: ``"training"``, ``"validation"`` or ``"both"`` (returns both datasets);
            only with ``validation_split``.
        follow_links: also walk into sub-folders that are symbolic links.
        verbose: print how many files and classes were found, as Keras does.

    Returns:
        A :class:`rnnkit.data.Dataset` yielding ``(texts, labels)`` (``texts`` a NumPy array of
        ``str``), or texts only without labels; ``dataset.class_names`` lists the classes.
        With ``subset="both"``, a ``[training, validation]`` pair.

        train, val = text_dataset_from_directory("aclImdb/train", batch_size=32,
                                                 validation_split=0.2, subset="both", seed=1337)
        for texts, labels in train.take(1):
            print(texts[0][:80], labels[0])
    """
    if labels not in ("inferred", None):
        if not isinstance(labels, (list, tuple, np.ndarray)):
            raise ValueError("`labels` must be 'inferred', None, or a list of integer labels (one per .txt "
                             f"file, in sorted path order). Received: labels={labels!r}")
        if class_names:
            raise ValueError(f"You can only pass `class_names` with labels='inferred'. Received: "
                             f"labels={labels!r}, class_names={class_names!r}")
    if label_mode not in LABEL_MODES:
        raise ValueError(f"`label_mode` must be one of 'int', 'categorical', 'binary' or None. "
                         f"Received: label_mode={label_mode!r}")
    if labels is None or label_mode is None:
        labels, label_mode = None, None
    _check_validation_split(validation_split, subset, shuffle, seed)
    if not os.path.isdir(directory):
        raise ValueError(f"Directory not found: {directory}")
    if seed is None:
        seed = int(np.random.randint(1e6))

    paths, labels, class_names = _index_directory(directory, labels, class_names, shuffle, seed,
                                                  follow_links, verbose)
    if label_mode == "binary" and len(class_names) != 2:
        raise ValueError(f"label_mode='binary' needs exactly 2 classes. Received: class_names={class_names}")
    num_classes = len(class_names) if class_names else 0

    def make(subset_name, shuffled):
        subset_paths, subset_labels = _split(paths, labels, validation_split, subset_name, verbose)
        if not subset_paths:
            what = f"{subset_name} " if subset_name else ""
            raise ValueError(f"No {what}text files found in directory {directory}. Allowed format: .txt"
                             + (f" (validation_split={validation_split} of {len(paths)} files)"
                                if validation_split else ""))
        ds = _paths_and_labels_to_dataset(subset_paths, subset_labels, label_mode, num_classes, max_length,
                                          shuffled, batch_size, seed)
        if batch_size is not None:
            ds = ds.batch(batch_size)
        ds.class_names = class_names
        return ds

    if subset == "both":
        return [make("training", shuffle), make("validation", False)]
    return make(subset, shuffle)


def _check_validation_split(validation_split, subset, shuffle, seed):
    if validation_split and not 0 < validation_split < 1:
        raise ValueError(f"`validation_split` must be between 0 and 1, received: {validation_split}")
    if (validation_split or subset) and not (validation_split and subset):
        raise ValueError("If `subset` is set, `validation_split` must be set, and inversely.")
    if subset not in ("training", "validation", "both", None):
        raise ValueError(f"`subset` must be 'training', 'validation' or 'both', received: {subset!r}")
    if validation_split and shuffle and seed is None:
        raise ValueError("If using `validation_split` and shuffling the data, you must provide a `seed` argument, "
                         "to make sure that there is no overlap between the training and validation subset.")


def _index_directory(directory, labels, class_names, shuffle, seed, follow_links, verbose):
    """Keras's ``index_directory``: (file paths, labels, class names), shuffled with ``seed``."""
    if labels == "inferred":
        subdirs = [d for d in sorted(os.listdir(directory))
                   if os.path.isdir(os.path.join(directory, d)) and not d.startswith(".")]
        if class_names is not None:
            if not set(class_names) <= set(subdirs):
                raise ValueError("The `class_names` passed did not match the names of the subdirectories of the "
                                 f"target directory. Expected: {subdirs} (or a subset of it), but received: "
                                 f"class_names={list(class_names)}")
            subdirs = list(class_names)
    else:
        subdirs = [""]
        if class_names is not None:
            raise ValueError("`class_names` can only be passed with labels='inferred'.")
    found, found_labels = [], []
    for index, subdir in enumerate(subdirs):
        for path in _txt_files(os.path.join(directory, subdir) if subdir else directory, follow_links):
            found.append(path)
            found_labels.append(index)
    if labels == "inferred":
        class_names = subdirs
        labels = np.asarray(found_labels, dtype=np.int32)
    elif labels is None:
        class_names = None
    else:
        if len(labels) != len(found):
            raise ValueError(f"Expected the lengths of `labels` to match the number of files in the target "
                             f"directory. len(labels) is {len(labels)} while we found {len(found)} files in "
                             f"directory {directory}.")
        class_names = [str(label) for label in sorted(set(np.asarray(labels).tolist()))]
        labels = np.asarray(labels)
    if verbose:
        if labels is None:
            print(f"Found {len(found)} files.")
        else:
            print(f"Found {len(found)} files belonging to {len(class_names)} classes.")
    if shuffle:  # Keras shuffles paths and labels with two generators of the same seed
        np.random.RandomState(seed).shuffle(found)
        if labels is not None:
            np.random.RandomState(seed).shuffle(labels)
    return found, labels, class_names


def _txt_files(folder, follow_links):
    """The ``.txt`` files under ``folder``, walked in sorted order (folder by folder)."""
    for root, _, files in sorted(os.walk(folder, followlinks=follow_links), key=lambda walked: walked[0]):
        for name in sorted(files):
            if name.lower().endswith(".txt"):
                yield os.path.join(root, name)


def _split(paths, labels, validation_split, subset, verbose):
    """Keras's training/validation split: validation is the last ``int(split * n)`` files."""
    if not validation_split:
        return paths, labels
    num_val = int(validation_split * len(paths))
    if subset == "training":
        if verbose:
            print(f"Using {len(paths) - num_val} files for training.")
        cut = len(paths) - num_val
        return paths[:cut], None if labels is None else labels[:cut]
    if verbose:
        print(f"Using {num_val} files for validation.")
    cut = len(paths) - num_val
    return paths[cut:], None if labels is None else labels[cut:]


def _paths_and_labels_to_dataset(paths, labels, label_mode, num_classes, max_length, shuffle, batch_size,
                                 seed):
    ds = Dataset.from_tensor_slices(np.asarray(paths, dtype=str))
    if label_mode:
        ds = Dataset.zip(ds, Dataset.from_tensor_slices(_encode_labels(labels, label_mode, num_classes)))
    if shuffle:
        ds = ds.shuffle(batch_size * 8 if batch_size is not None else 1024, seed=seed)
    if label_mode:
        return ds.map(lambda path, label: (_read_text(path, max_length), label))
    return ds.map(lambda path: _read_text(path, max_length))


def _encode_labels(labels, label_mode, num_classes):
    labels = np.asarray(labels)
    if label_mode == "binary":
        return labels.astype(np.float32)[:, None]
    if label_mode == "categorical":
        return np.eye(num_classes, dtype=np.float32)[labels]
    return labels.astype(np.int32)


def _read_text(path, max_length):
    """The text of one file as a NumPy ``str`` (at most ``max_length`` UTF-8 bytes of it)."""
    path = str(path)
    with open(path, "rb") as f:
        raw = f.read() if max_length is None else f.read(max_length)
    try:
        return np.str_(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        if max_length is not None and exc.reason == "unexpected end of data":  # a character cut in two
            return np.str_(raw[:exc.start].decode("utf-8"))
        raise ValueError(f"{path} is not UTF-8 text (invalid byte at position {exc.start}); convert it to "
                         "UTF-8 or remove it from the folder.") from None
