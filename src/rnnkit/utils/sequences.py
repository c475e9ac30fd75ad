"""Sequence helpers with Keras semantics: pad_sequences and to_categorical."""
import numpy as np


def pad_sequences(sequences, maxlen=None, dtype="int32", padding="pre", truncating="pre", value=0.0):
    """Pad (or cut) lists of ids to one length, as ``keras.utils.pad_sequences``.

    ``padding``/``truncating``: 'pre' pads or cuts at the start, 'post' at the end.
    ``maxlen`` defaults to the longest sequence.
    """
    if padding not in ("pre", "post"):
        raise ValueError(f"padding must be 'pre' or 'post', got {padding!r}.")
    if truncating not in ("pre", "post"):
        raise ValueError(f"truncating must be 'pre' or 'post', got {truncating!r}.")
    sequences = [list(s) for s in sequences]
    if maxlen is None:
        maxlen = max((len(s) for s in sequences), default=0)
    out = np.full((len(sequences), maxlen), value, dtype=dtype)
    for i, seq in enumerate(sequences):
        if not seq or maxlen == 0:
            continue
        kept = seq[-maxlen:] if truncating == "pre" else seq[:maxlen]
        if padding == "post":
            out[i, : len(kept)] = kept
        else:
            out[i, maxlen - len(kept):] = kept
    return out


def to_categorical(y, num_classes=None, dtype="float32"):
    """Integer labels -> one-hot rows."""
    y = np.asarray(y, dtype="int64")
    shape = y.shape[:-1] if y.ndim > 1 and y.shape[-1] == 1 else y.shape
    y = y.reshape(-1)
    num_classes = int(num_classes or (y.max() + 1 if y.size else 0))
    out = np.zeros((y.size, num_classes), dtype=dtype)
    out[np.arange(y.size), y] = 1
    return out.reshape(shape + (num_classes,))
