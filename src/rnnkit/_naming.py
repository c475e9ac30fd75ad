"""Keras-style unique default names: simple_rnn, simple_rnn_1, ..."""
import collections
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


def suggest(word, candidates):
    """' Did you mean 'x'?' for the closest candidate, or ''."""
    import difflib

    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" Did you mean '{close[0]}'?" if close else ""
