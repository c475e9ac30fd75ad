"""``rnnkit.preprocessing.sequence``: Keras's ``keras.preprocessing.sequence`` path.

    from rnnkit.preprocessing.sequence import pad_sequences
    pad_sequences([[1, 2, 3], [4]], maxlen=2)         # [[2, 3], [0, 4]]
"""
from ..utils.sequences import pad_sequences

__all__ = ["pad_sequences"]
