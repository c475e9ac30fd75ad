"""``rnnkit.backend``: the parts of ``keras.backend`` / ``keras.config`` that programs call.

    rnnkit.backend.clear_session()       # fresh default layer names (lstm, lstm_1, ...)
    rnnkit.backend.floatx()              # 'float32'
"""
from ._naming import clear_session

__all__ = ["backend", "clear_session", "epsilon", "floatx", "image_data_format", "set_epsilon"]

_EPSILON = 1e-7


def backend():
    """The name of the tensor library underneath: ``"torch"``."""
    return "torch"


def floatx():
    """The float type of rnnkit's weights: ``"float32"`` (rnnkit's layers compute in float32, so
    there is no ``set_floatx``)."""
    return "float32"


def epsilon():
    """The fuzz factor of numeric expressions, ``1e-7`` as Keras."""
    return _EPSILON


def set_epsilon(value):
    """Set the value :func:`epsilon` returns."""
    global _EPSILON
    _EPSILON = float(value)


def image_data_format():
    """``"channels_last"``, Keras's default (rnnkit's layers are channels-last)."""
    return "channels_last"
