"""Timeseries classification: input preparation, recurrent classifiers, nearest-neighbour
baselines and the published accuracies they are compared with.

Inputs. A data set is a list of float arrays ``(steps, channels)`` whose lengths may differ.

- :func:`normalize`: per series and channel ``z = (x - mean(x)) / std(x)`` (the UCR practice for
  univariate series: only the shape counts), or per channel with the training set's mean and
  standard deviation (``"channel"``: keeps each case's amplitude, which tells e.g. running from
  standing apart in BasicMotions).
- :func:`paa`: piecewise aggregate approximation, the mean of each run of ``factor`` steps, so a
  recurrent layer sees ``ceil(steps / factor)`` steps.
- :func:`pad`: zero-padded batch ``x`` (n, T, channels) and ``present`` (n, T, 1), 1 on real steps.

Models (:func:`build_model`, the functional API; two inputs, ``series`` and ``present``): every
recurrent layer receives ``Concatenate([h, present])`` through ``Masking(0.0)``, so padded steps
(all zeros, ``present`` 0) are skipped and real steps (``present`` 1) never are, whatever their
values; its sequence is averaged over the real steps (``GlobalAveragePooling1D`` honours the
mask), then ``Dropout -> Dense(classes, softmax)``. A padded batch therefore gives the same
probabilities as each series run alone (the tests check it).

    lstm | gru        one recurrent layer           bigru   Bidirectional(GRU)
    stacked           GRU -> GRU                    conv-gru  Conv1D front end + GRU

``conv-gru``: ``Conv1D(filters, kernel 2s+1, strides=s, padding="causal", relu) ->
Conv1D(filters, 5, causal, relu) -> GRU``; causal padding only looks back, so the steps of a
shorter series are computed exactly as if it were alone, and ``present`` is subsampled with
``MaxPooling1D(pool_size=1, strides=s)`` (its step ``j*s``, the last step the output ``j`` sees)
and multiplied in after each convolution. The stride ``s`` shortens a 1,460-step series to
``ceil(1460 / s)`` steps for the GRU.

Baselines: 1-nearest neighbour with the Euclidean distance (series of unequal lengths are first
linearly resampled to the longest training length) and with dynamic time warping, full window:
``dtaidistance`` 2.5.1, ``dtw.distance_matrix_fast`` (``dtw_ndim`` for multivariate series:
dependent DTW, one warping path for all channels; its cost is the squared Euclidean distance of
two steps' channel vectors, and the distance is the square root of the path's total cost). Why
dtaidistance: maintained, Apache-2.0, only NumPy as a dependency, a C implementation that fills
the train x test block of the distance matrix for series of different lengths without a Python
loop per pair; tslearn brings far more than DTW, dtw-python is GPL, fastdtw approximates.

    from rnnkit.tsclassify import build_model, normalize, pad
    model = build_model("conv-gru", channels=1, num_classes=2, stride=3)
    x, present = pad(normalize(train.series))
    model.predict([x, present])
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["MODEL_KINDS", "NORMALIZATIONS", "PUBLISHED", "build_model", "ensemble", "normalize", "channel_stats", "paa",
           "pad", "random_crops", "stride_for", "euclidean_distances", "dtw_distances", "dtw_nearest", "nearest_neighbour", "resample"]

MODEL_KINDS = ("lstm", "gru", "bigru", "stacked", "conv-gru")
NORMALIZATIONS = ("series", "channel", "none")

# Published test accuracies on the archive's splits (UCR archive summary, the 2024 "bake off
# redux", Fawaz et al. 2019), as listed in issue 14. TWIESN: an echo-state network.
PUBLISHED = {
    "GunPoint": {"1NN-DTW": 0.907, "ROCKET": 1.000, "TWIESN": 0.989},
    "ItalyPowerDemand": {"1NN-DTW": 0.950, "ROCKET": 0.970, "TWIESN": 0.871},
    "ArrowHead": {"1NN-DTW": 0.703, "ROCKET": 0.814, "HIVE-COTE 2": 0.869},
    "OSULeaf": {"1NN-DTW": 0.591, "ROCKET": 0.941, "TWIESN": 0.628},
    "ACSF1": {"1NN-DTW": 0.640, "ROCKET": 0.886, "TWIESN": 0.592},
    "PickupGestureWiimoteZ": {"1NN-DTW": 0.660, "ROCKET": 0.830},
    "BasicMotions": {"DTW (dependent)": 0.975, "ROCKET": 1.000},
    "JapaneseVowels": {"TWIESN": 0.965, "ResNet": 0.992},
}


# ----- inputs ------------------------------------------------------------------------------------
def channel_stats(series):
    """Per-channel mean and standard deviation over every step of ``series`` (the training set)."""
    steps = np.concatenate([np.asarray(s, dtype=np.float64) for s in series])
    return steps.mean(axis=0), np.maximum(steps.std(axis=0), 1e-8)


def normalize(series, how="series", stats=None):
    """``"series"``: z-normalise each series and channel by its own mean and std (a constant
    channel becomes zeros); ``"channel"``: ``(x - mean) / std`` with ``stats`` from
    :func:`channel_stats` of the training set; ``"none"``: unchanged. Returns float64 arrays."""
    out = []
    for s in series:
        s = np.asarray(s, dtype=np.float64)
        if how == "series":
            std = s.std(axis=0)
            s = (s - s.mean(axis=0)) / np.where(std > 1e-8, std, 1.0)
        elif how == "channel":
            mean, std = stats
            s = (s - mean) / std
        elif how != "none":
            raise ValueError(f"normalize: how must be one of {NORMALIZATIONS}, got {how!r}")
        out.append(s)
    return out


def paa(series, factor):
    """Piecewise aggregate approximation: the mean of each run of ``factor`` steps (the last run
    may be shorter). ``paa([x], 1)`` is ``[x]``."""
    if factor <= 1:
        return [np.asarray(s, dtype=np.float64) for s in series]
    out = []
    for s in series:
        s = np.asarray(s, dtype=np.float64)
        starts = np.arange(0, len(s), factor)
        sums = np.add.reduceat(s, starts, axis=0)
        counts = np.diff(np.append(starts, len(s)))[:, None]
        out.append(sums / counts)
    return out


def random_crops(series, rng, min_share):
    """Window slicing (Le Guennec et al. 2016), a training augmentation: of each series a random
    window of ``share * steps`` consecutive steps, ``share`` drawn uniformly from
    ``[min_share, 1]``, at a random start. ``min_share=1`` returns the series unchanged."""
    out = []
    for s in series:
        steps = len(s)
        keep = max(1, int(round(steps * rng.uniform(min_share, 1.0))))
        start = int(rng.integers(0, steps - keep + 1))
        out.append(s[start:start + keep])
    return out


def stride_for(length, max_steps):
    """The downsampling factor that leaves at most ``max_steps`` of ``length`` steps."""
    return max(1, math.ceil(length / max_steps))


def pad(series, length=None):
    """Zero-padded ``x`` (n, T, channels) float32 and ``present`` (n, T, 1) float32 (1 on a real step);
    ``T`` = ``length`` or the longest series."""
    length = length or max(len(s) for s in series)
    channels = np.asarray(series[0]).shape[1]
    x = np.zeros((len(series), length, channels), dtype=np.float32)
    present = np.zeros((len(series), length, 1), dtype=np.float32)
    for i, s in enumerate(series):
        n = min(len(s), length)
        x[i, :n] = np.asarray(s)[:n]
        present[i, :n] = 1.0
    return x, present


# ----- models ------------------------------------------------------------------------------------
def build_model(kind, channels, num_classes, units=64, stride=1, filters=64, dropout=0.2, name=None):
    """A classifier ``[series (batch, T, channels), present (batch, T, 1)] -> class probabilities``
    (see the module docstring for each ``kind``).

    Arguments:
        kind: one of :data:`MODEL_KINDS`.
        channels: features per step; num_classes: outputs of the softmax.
        units: recurrent units (per direction for ``bigru``); filters: of the convolutions.
        stride: ``conv-gru`` only, the first convolution's stride (downsampling factor).
        dropout: before the output layer.

    ``build_model("gru", channels=12, num_classes=9)``
    """
    import rnnkit
    from rnnkit import layers

    if kind not in MODEL_KINDS:
        raise ValueError(f"build_model: kind must be one of {MODEL_KINDS}, got {kind!r}")
    series = rnnkit.Input(shape=(None, channels), name="series")
    present = rnnkit.Input(shape=(None, 1), name="present")
    h = series
    if kind == "conv-gru":
        kept = layers.MaxPooling1D(pool_size=1, strides=stride, name="present_subsampled")(present)
        h = layers.Conv1D(filters, 2 * stride + 1, strides=stride, padding="causal", activation="relu",
                          name="conv_stride")(h)
        h = layers.Multiply(name="conv_stride_masked")([h, kept])
        h = layers.Conv1D(filters, 5, padding="causal", activation="relu", name="conv")(h)
        h = layers.Multiply(name="conv_masked")([h, kept])
    else:
        kept = present
    h = layers.Masking(0.0, name="skip_padding")(layers.Concatenate(name="with_present")([h, kept]))
    if kind == "lstm":
        h = layers.LSTM(units, return_sequences=True, name="lstm")(h)
    elif kind == "bigru":
        h = layers.Bidirectional(layers.GRU(units, return_sequences=True), name="bigru")(h)
    else:
        if kind == "stacked":
            h = layers.GRU(units, return_sequences=True, name="gru_1")(h)
        h = layers.GRU(units, return_sequences=True, name="gru" if kind != "stacked" else "gru_2")(h)
    h = layers.GlobalAveragePooling1D(name="mean_over_steps")(h)
    h = layers.Dropout(dropout, name="dropout")(h)
    probs = layers.Dense(num_classes, activation="softmax", name="classes")(h)
    return rnnkit.Model([series, present], probs, name=name or f"tsclassify_{kind.replace('-', '_')}")


def ensemble(models, name=None):
    """One model whose output is the mean of ``models``' class probabilities (each a
    :func:`build_model` classifier, e.g. one per seed), called on the same two inputs; it saves,
    loads and predicts like any other model. Each model is renamed ``NAME_i`` (its position) so
    that the names inside the ensemble differ."""
    import rnnkit
    from rnnkit import layers

    channels = models[0].inputs[0].shape[-1]
    series = rnnkit.Input(shape=(None, channels), name="series")
    present = rnnkit.Input(shape=(None, 1), name="present")
    for i, model in enumerate(models):
        model.name = f"{model.name}_{i}"
    probs = layers.Average(name="mean_probabilities")([m([series, present]) for m in models])
    return rnnkit.Model([series, present], probs, name=name or "tsclassify_ensemble")


# ----- baselines ---------------------------------------------------------------------------------
def resample(series, length):
    """Linear interpolation of each channel onto ``length`` equally spaced steps."""
    s = np.asarray(series, dtype=np.float64)
    if len(s) == length:
        return s
    old = np.linspace(0.0, 1.0, len(s))
    new = np.linspace(0.0, 1.0, length)
    return np.stack([np.interp(new, old, s[:, c]) for c in range(s.shape[1])], axis=1)


def euclidean_distances(train, test):
    """(n_test, n_train) Euclidean distances; unequal lengths are resampled to the longest
    training series first."""
    length = max(len(s) for s in train)
    a = np.stack([resample(s, length).ravel() for s in train])
    b = np.stack([resample(s, length).ravel() for s in test])
    squared = (b ** 2).sum(1)[:, None] + (a ** 2).sum(1)[None, :] - 2.0 * b @ a.T
    return np.sqrt(np.maximum(squared, 0.0))


def dtw_distances(train, test):
    """(n_test, n_train) DTW distances, full window (dtaidistance's C code, one thread; dependent
    DTW for several channels): ``sqrt(min over warping paths of sum ||a_i - b_j||^2)``."""
    from dtaidistance import dtw, dtw_ndim

    n = len(train)
    channels = np.asarray(train[0]).shape[1]
    if channels == 1:
        items = [np.ascontiguousarray(np.asarray(s, dtype=np.float64)[:, 0]) for s in list(train) + list(test)]
        full = dtw.distance_matrix_fast(items, block=((0, n), (n, len(items))), compact=False, parallel=False)
    else:
        items = [np.ascontiguousarray(s, dtype=np.float64) for s in list(train) + list(test)]
        full = dtw_ndim.distance_matrix_fast(items, ndim=channels, block=((0, n), (n, len(items))),
                                             compact=False, parallel=False)
    return np.asarray(full)[:n, n:].T.copy()


def dtw_nearest(train, test, whole_below=64):
    """Position of each test series' nearest training series by full-window DTW (as
    :func:`dtw_distances`), exactly, but with early abandoning: the training series are tried in
    the order of their Euclidean distance, and dtaidistance stops a pair as soon as its cost
    exceeds the best distance found so far (``max_dist``), so most pairs never fill their matrix.
    Ties go to the candidate tried first. Short series (at most ``whole_below`` steps) take the
    whole block of :func:`dtw_distances` instead: there a Python call per pair costs more than
    the cells it saves."""
    from dtaidistance import dtw, dtw_ndim

    if max(len(s) for s in list(train) + list(test)) <= whole_below:
        return np.argmin(dtw_distances(train, test), axis=1)
    channels = np.asarray(train[0]).shape[1]
    if channels == 1:
        items = [np.ascontiguousarray(np.asarray(s, dtype=np.float64)[:, 0]) for s in train]
        queries = [np.ascontiguousarray(np.asarray(s, dtype=np.float64)[:, 0]) for s in test]
        distance = dtw.distance_fast
    else:
        items = [np.ascontiguousarray(s, dtype=np.float64) for s in train]
        queries = [np.ascontiguousarray(s, dtype=np.float64) for s in test]
        distance = dtw_ndim.distance_fast
    order = np.argsort(euclidean_distances(train, test), axis=1, kind="stable")
    nearest = np.empty(len(test), dtype=np.int64)
    for i, query in enumerate(queries):
        best, best_j = math.inf, int(order[i, 0])
        for j in order[i]:
            d = distance(query, items[j], use_pruning=False, max_dist=None if math.isinf(best) else best)
            if d < best:
                best, best_j = d, int(j)
        nearest[i] = best_j
    return nearest


def nearest_neighbour(distances, train_labels):
    """Label of each row's nearest training series (ties: the first)."""
    return np.asarray(train_labels)[np.argmin(distances, axis=1)]
