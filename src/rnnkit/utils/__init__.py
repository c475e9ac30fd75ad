"""Utilities with Keras's names: seeds, padding, one-hot, datasets from arrays and folders, file
downloads, progress bars."""
from .._naming import clear_session
from ..random import get_random_seed, set_random_seed
from .file_utils import get_file
from .model_plot import plot_model
from .progbar import Progbar
from .sequences import pad_sequences, to_categorical
from .text_dataset import text_dataset_from_directory
from .timeseries import timeseries_dataset_from_array

__all__ = ["Progbar", "clear_session", "get_file", "get_random_seed", "pad_sequences", "plot_model", "set_random_seed",
           "text_dataset_from_directory", "timeseries_dataset_from_array", "to_categorical"]
