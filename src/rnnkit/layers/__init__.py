"""Keras's layers as ``torch.nn.Module`` subclasses."""
from .._naming import suggest
from .core import (Activation, Conv1D, Dense, Dropout, Embedding, Flatten, GlobalAveragePooling1D,
                   GlobalMaxPooling1D, MaxPooling1D, RepeatVector, SpatialDropout1D)
from .input import Input, InputLayer
from .layer import Layer
from .recurrent import GRU, LSTM, RNN, RecurrentLayer, SimpleRNN
from .rnn_cells import GRUCell, LSTMCell, SimpleRNNCell, StackedRNNCells
from .wrappers import Bidirectional, TimeDistributed
from .attention import AdditiveAttention, Attention
from .merging import (Add, Average, Concatenate, Dot, Maximum, Minimum, Multiply, Subtract, add, average,
                      concatenate, dot, maximum, minimum, multiply, subtract)
from .normalization import BatchNormalization, LayerNormalization
from .reshaping import Lambda, Masking, Permute, Reshape
from .text_vectorization import TextVectorization

_CLASSES = {cls.__name__: cls for cls in (
    Activation, Bidirectional, Conv1D, Dense, Dropout, Embedding, Flatten, GlobalAveragePooling1D,
    GlobalMaxPooling1D, GRU, InputLayer, LSTM, MaxPooling1D, RepeatVector, SimpleRNN, SpatialDropout1D,
    TimeDistributed)}
_CLASSES.update({cls.__name__: cls for cls in (
    Add, AdditiveAttention, Attention, Average, BatchNormalization, Concatenate, Dot, Lambda, LayerNormalization,
    Masking, Maximum, Minimum, Multiply, Permute, Reshape, Subtract)})
_CLASSES["TextVectorization"] = TextVectorization
_CLASSES.update({cls.__name__: cls for cls in (GRUCell, LSTMCell, RNN, SimpleRNNCell, StackedRNNCells)})


def serialize(layer):
    return {"class_name": type(layer).__name__, "config": layer.get_config()}


def deserialize(spec, custom_objects=None):
    """Rebuild a layer from ``{"class_name": ..., "config": ...}``."""
    classes = {**_CLASSES, **(custom_objects or {})}
    name = spec.get("class_name")
    if name not in classes:
        raise ValueError(f"Unknown layer class '{name}'.{suggest(str(name), classes)} "
                         "Pass custom_objects={'Name': cls} for your own layers.")
    return classes[name].from_config(dict(spec["config"]))


__all__ = sorted(_CLASSES) + ["Input", "Layer", "RecurrentLayer", "serialize", "deserialize"]
__all__ += ["add", "average", "concatenate", "dot", "maximum", "minimum", "multiply", "subtract"]
