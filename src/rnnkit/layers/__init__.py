"""Keras's layers as ``torch.nn.Module`` subclasses, and the functional API's ``Input``.

Every layer class registers itself by name (``rnnkit.registry``), which is what configs and
saved models are rebuilt from; ``serialize`` / ``deserialize`` are the registry's.
"""
from ..registry import deserialize, serialize
from .attention import AdditiveAttention, Attention
from .core import (Activation, Conv1D, Dense, Dropout, Embedding, Flatten, GlobalAveragePooling1D,
                   GlobalMaxPooling1D, MaxPooling1D, RepeatVector, SpatialDropout1D)
from .input import Input, InputLayer
from .layer import Layer
from .merging import (Add, Average, Concatenate, Dot, Maximum, Minimum, Multiply, Subtract, add, average,
                      concatenate, dot, maximum, minimum, multiply, subtract)
from .normalization import BatchNormalization, LayerNormalization
from .recurrent import GRU, LSTM, RNN, RecurrentLayer, SimpleRNN
from .reshaping import Lambda, Masking, Permute, Reshape
from .rnn_cells import GRUCell, LSTMCell, SimpleRNNCell, StackedRNNCells
from .text_vectorization import TextVectorization
from .wrappers import Bidirectional, TimeDistributed

__all__ = [
    "Activation", "Add", "AdditiveAttention", "Attention", "Average", "BatchNormalization", "Bidirectional",
    "Concatenate", "Conv1D", "Dense", "Dot", "Dropout", "Embedding", "Flatten", "GRU", "GRUCell",
    "GlobalAveragePooling1D", "GlobalMaxPooling1D", "Input", "InputLayer", "LSTM", "LSTMCell", "Lambda", "Layer",
    "LayerNormalization", "Masking", "MaxPooling1D", "Maximum", "Minimum", "Multiply", "Permute", "RNN",
    "RecurrentLayer", "RepeatVector", "Reshape", "SimpleRNN", "SimpleRNNCell", "SpatialDropout1D",
    "StackedRNNCells", "Subtract", "TextVectorization", "TimeDistributed", "add", "average", "concatenate",
    "deserialize", "dot", "maximum", "minimum", "multiply", "serialize", "subtract",
]
