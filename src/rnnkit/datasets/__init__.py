"""Dataset loaders and the checks and cleaning applied before windowing."""

from ._cache import ChecksumError, DownloadError, cache_dir
from .cleaning import DataError, clean_timeseries, validate_frame
from .jena import jena_climate
from .stocks import read_price_file, sp500_prices
from .text_corpora import bbc_news, rotten_tomatoes, shakespeare, text_file_corpus
from .weather import nyc_weather
from .seq2seq_data import addition_pairs, cmudict_g2p, read_pairs_file  # noqa: F401  (seq2seq tasks)
from .ucr import read_series_file, ucr_dataset  # noqa: F401  (timeseries classification)
from .bible import aligned_verses, bible_verses  # noqa: F401  (translation, text comparison)
from .federalist import federalist_papers  # noqa: F401  (authorship)

__all__ = [
    "ChecksumError",
    "bbc_news",
    "rotten_tomatoes",
    "shakespeare",
    "text_file_corpus",
    "DataError",
    "DownloadError",
    "cache_dir",
    "clean_timeseries",
    "jena_climate",
    "nyc_weather",
    "validate_frame",
]
