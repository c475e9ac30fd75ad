"""Keras 3 on the torch backend for the tests that compare rnnkit with Keras itself, or a skip.

``conftest.py`` sets ``KERAS_BACKEND=torch`` before any test module imports keras.

    from keras_or_skip import import_keras
    keras = import_keras()
"""
import pytest


def import_keras():
    keras = pytest.importorskip("keras")
    if not keras.__version__.startswith("3."):
        pytest.skip(f"needs Keras 3, found {keras.__version__}", allow_module_level=True)
    if keras.backend.backend() != "torch":
        pytest.skip(f"keras was already imported with the {keras.backend.backend()} backend", allow_module_level=True)
    return keras
