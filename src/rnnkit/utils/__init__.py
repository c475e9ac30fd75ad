"""Utilities with Keras's names: seeds, padding, one-hot, datasets from arrays and folders, file
downloads, progress bars."""
from .._naming import clear_session
from ..random import get_random_seed, set_random_seed
from .file_utils import get_file
from .progbar import Progbar
from .sequences import pad_sequences, to_categorical
from .text_dataset import text_dataset_from_directory
from .timeseries import timeseries_dataset_from_array

__all__ = ["Progbar", "clear_session", "get_file", "get_random_seed", "pad_sequences", "set_random_seed",
           "text_dataset_from_directory", "timeseries_dataset_from_array", "to_categorical"]
