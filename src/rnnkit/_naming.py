"""Keras-style unique default names: simple_rnn, simple_rnn_1, ..."""
import collections
import difflib
import re

_counts = collections.Counter()


def snake_case(name):
    name = re.sub(r"(.)([A-Z][a-z0-9]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def unique_name(base):
    n = _counts[base]
    _counts[base] += 1
    return base if n == 0 else f"{base}_{n}"


def clear_session():
    """Reset default-name counters, as ``keras.backend.clear_session()`` does."""
    _counts.clear()


def edit_distance(a, b):
    """Optimal string alignment distance, ignoring case (a swap of two neighbours counts as one edit)."""
    a, b = a.lower(), b.lower()
    d = [[i + j if i * j == 0 else 0 for j in range(len(b) + 1)] for i in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1]))
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
    return d[len(a)][len(b)]


def closest(word, candidates):
    """The candidate ``word`` was most likely meant to be, or None: the same letters in another case,
    then a typo (an edit distance of at most a third of its length), then difflib's best match.
    The package's one "did you mean" rule (names of layers, arguments, losses, columns, commands)."""
    word, candidates = str(word), [str(c) for c in candidates]
    for candidate in candidates:
        if candidate.lower() == word.lower():
            return candidate
    scored = sorted((edit_distance(word, c), i, c) for i, c in enumerate(candidates))
    if scored and scored[0][0] <= max(1, len(word) // 3):
        return scored[0][2]
    close = difflib.get_close_matches(word, candidates, n=1, cutoff=0.5)
    return close[0] if close else None


def suggest(word, candidates):
    """' Did you mean 'x'?' for the closest candidate, or ''."""
    match = closest(word, candidates)
    return f" Did you mean '{match}'?" if match is not None else ""


def unknown_name_error(kind, name, choices):
    """The ValueError for an unknown ``name`` among ``choices``, with the closest and the known names."""
    return ValueError(f"Unknown {kind}: {name!r}.{suggest(name, choices)} Known {kind}s: "
                      f"{', '.join(sorted(map(str, choices)))}.")
