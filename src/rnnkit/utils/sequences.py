"""Sequence helpers with Keras semantics: pad_sequences and to_categorical."""
import numpy as np


def pad_sequences(sequences, maxlen=None, dtype="int32", padding="pre", truncating="pre", value=0.0):
    """Pad (or cut) sequences to one length, as ``keras.utils.pad_sequences``.

    Args:
        sequences: a list of sequences (lists or arrays; each step may itself be an array,
            whose shape is taken from the first non-empty sequence).
        maxlen: the length of the result; default the longest sequence.
        dtype: dtype of the result (``object`` or a string dtype for strings).
        padding: ``"pre"`` pads at the start, ``"post"`` at the end.
        truncating: ``"pre"`` cuts longer sequences at the start, ``"post"`` at the end.
        value: the padding value.

    Returns:
        An array of shape ``(len(sequences), maxlen, *step_shape)``.

        pad_sequences([[1, 2, 3], [4]], maxlen=2)         # [[2, 3], [0, 4]]
    """
    if padding not in ("pre", "post"):
        raise ValueError(f"padding must be 'pre' or 'post', got {padding!r}.")
    if truncating not in ("pre", "post"):
        raise ValueError(f"truncating must be 'pre' or 'post', got {truncating!r}.")
    if not hasattr(sequences, "__len__"):
        raise ValueError("`sequences` must be a list of sequences.")
    lengths, sample_shape = [], None
    for seq in sequences:
        try:
            lengths.append(len(seq))
        except TypeError:
            raise ValueError(f"`sequences` must be a list of iterables. Found non-iterable: {seq!r}") from None
        if sample_shape is None and len(seq):
            sample_shape = np.asarray(seq).shape[1:]
    sample_shape = sample_shape or ()
    if maxlen is None:
        maxlen = max(lengths, default=0)
    is_dtype_str = np.issubdtype(dtype, np.str_) or np.issubdtype(dtype, np.bytes_)
    if isinstance(value, str) and dtype is not object and not is_dtype_str:
        raise ValueError(f"`dtype` {dtype} is not compatible with the string `value` {value!r}: "
                         "set dtype=object for variable-length strings.")
    out = np.full((len(lengths), maxlen) + sample_shape, value, dtype=dtype)
    for i, seq in enumerate(sequences):
        if not len(seq) or maxlen == 0:
            continue
        kept = np.asarray(seq[-maxlen:] if truncating == "pre" else seq[:maxlen], dtype=dtype)
        if kept.shape[1:] != sample_shape:
            raise ValueError(f"Shape of sample {kept.shape[1:]} of sequence at position {i} is different from "
                             f"expected shape {sample_shape}")
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
