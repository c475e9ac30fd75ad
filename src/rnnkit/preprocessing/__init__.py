"""``rnnkit.preprocessing``: Keras's ``keras.preprocessing`` paths, the same functions as ``rnnkit.utils``.

    from rnnkit.preprocessing import text_dataset_from_directory, timeseries_dataset_from_array
    from rnnkit.preprocessing.sequence import pad_sequences
"""
from ..utils.text_dataset import text_dataset_from_directory
from ..utils.timeseries import timeseries_dataset_from_array
from . import sequence

__all__ = ["sequence", "text_dataset_from_directory", "timeseries_dataset_from_array"]
