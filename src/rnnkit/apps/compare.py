"""``rnnkit compare``: how closely related are two sequences? (stock tickers)

    rnnkit compare stocks [--out runs/compare-stocks] [--epochs 20] [--ensemble 1] [--threads 1] [--seed 0]
    rnnkit compare stocks --data prices.csv --sectors sectors.csv --train-end 2018 --test-start 2019
    rnnkit compare stocks predict --model-file runs/compare-stocks/model.rnnkit --data prices.csv --window 2024Q3

Data (default): skfolio 1.12.2's 20 S&P 500 stocks, daily adjusted close 1990-2022
(``rnnkit.datasets.stocks.sp500_prices``), with their GICS sectors
(``rnnkit.datasets.stocks.SP500_SECTORS``).

Protocol (the issue's): daily log returns; training uses 1990-2014 only (the encoder is fitted
on 1990-2009 and its epoch chosen by the MAP of 2010-2014's quarters); the test is each calendar
quarter of 2015-2022 (32 quarters): for each ticker with another ticker of its sector (all but
GE), the other 19 are ranked by a similarity computed on that quarter's returns alone; an item
is relevant when it shares the query's sector; the score is the mean average precision over the
608 queries (also MRR, precision@1 and recall@3). Methods, all on exactly these windows:

- random: the exact expected MAP of a uniformly random ranking (no sampling);
- pearson: correlation of daily log returns;
- pearson-residual: correlation of the residuals after regressing each stock on the index
  (beta and intercept fitted on the quarter; the equal-weighted mean of the tickers when the
  file has no index);
- dtw: dynamic time warping distance (dtaidistance 2.5.1, its C implementation, no window
  constraint) between z-normalised cumulative log returns; dtw-window: the same with a
  Sakoe-Chiba band, its width (none, 2, 5 or 10 days) chosen on the validation quarters;
- siamese-gru: the model. One encoder, shared by both sequences (``rnnkit.compare.siamese``):
  input per day (the stock's log return, the equal-weighted mean return of the universe), each
  divided by its standard deviation over the window and clipped at +-8;
  ``Bidirectional(GRU(units, return_sequences=True))``, concatenated with the input, ->
  ``Dense(channels)`` -> each channel centred over the window and flattened
  (``rnnkit.compare.center_over_time``); similarity = ``Dot(axes=1, normalize=True)`` of two
  codes, so it is the correlation of two learned series: the encoder can learn to remove the
  market, damp outliers and rescale days, and a constant offset cannot enter the code (it
  can still weigh a ticker's days by what the window shows of it, e.g. its volatility). Trained with the supervised contrastive loss
  (``rnnkit.compare.supervised_contrastive_loss``) on random windows of 1990-2009, all tickers
  of a window in one softmax, positives = the same sector. ``--ensemble K`` trains K encoders
  (seeds seed..seed+K-1) and averages their cosines (one model: their unit codes concatenated).

Settings were chosen on the validation quarters (2010-2014) alone, seed 0, best of 14-30
epochs: --channels 1 / 4 / 8: MAP 0.602 / 0.621 / 0.618; --units 64: 0.619; --temperature
0.05 / 0.2: 0.619 / 0.617; --ensemble 3 (15 epochs each): 0.619 (members 0.621, 0.621, 0.614).
The best epoch was 13 or 14 in every run, hence --epochs 20.

Why dtaidistance for DTW: maintained (2.5.1, 2026), Apache-2.0, needs only NumPy, a C
implementation with whole distance matrices and Sakoe-Chiba windows; fastdtw is an
approximation last released in 2019, tslearn brings much more than DTW, dtw-python is GPL.

Writes into ``--out``: ``report.json``, ``similarity.png`` (the learned similarity matrix of one
test quarter, tickers ordered by sector, beside the Pearson matrix), ``model.rnnkit`` (the
siamese model; ``predict`` loads it).
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

from . import UsageError
from . import _text_common as common

TASK = "compare-stocks"
MARKET = "equal-weighted mean log return of the file's tickers"
MIN_WINDOW_DAYS = 20
CLIP = 8.0


# ----- CLI ------------------------------------------------------------------------------------
def add_arguments(subparsers):
    parser = subparsers.add_parser("compare", help="how closely related are two sequences (stock tickers)",
                                   description="Compare sequences with a siamese recurrent encoder, "
                                               "measured by retrieval against baselines.")
    kinds = parser.add_subparsers(dest="kind", metavar="KIND")
    stocks = kinds.add_parser("stocks", help="which tickers move together: rank tickers by similarity per quarter",
                              description=__doc__.split("Writes into")[0],
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    stocks.add_argument("--data", metavar="PRICES.csv",
                        help="your own prices: a date column, then one column of prices per ticker "
                             "(default: skfolio's 20 S&P 500 stocks 1990-2022)")
    stocks.add_argument("--sectors", metavar="SECTORS.csv",
                        help="ticker,sector rows (needed with --data: they define the training pairs "
                             "and what counts as relevant)")
    stocks.add_argument("--train-end", type=common.bounded_int(1800, 2200, "a year"), metavar="YEAR",
                        help="last year used for training (default 2014)")
    stocks.add_argument("--test-start", type=common.bounded_int(1800, 2200, "a year"), metavar="YEAR",
                        help="first test year (default 2015); the test runs to the last year of the data")
    stocks.add_argument("--out", default="runs/compare-stocks", help="output folder (default runs/compare-stocks)")
    stocks.add_argument("--epochs", type=common.positive_int, default=20,
                        help="maximum epochs; the best epoch on the validation quarters is kept (default 20)")
    stocks.add_argument("--steps", type=common.positive_int, default=40, help="batches per epoch (default 40)")
    stocks.add_argument("--windows", type=common.positive_int, default=16,
                        help="training windows per batch, each with every ticker (default 16)")
    stocks.add_argument("--ensemble", type=common.positive_int, default=1,
                        help="encoders trained with seeds seed, seed+1, ...; their cosines averaged (default 1)")
    stocks.add_argument("--units", type=common.positive_int, default=32, help="GRU units per direction (default 32)")
    stocks.add_argument("--channels", type=common.positive_int, default=4,
                        help="code channels per day (default 4)")
    stocks.add_argument("--temperature", type=common.positive_float, default=0.1,
                        help="softmax temperature of the contrastive loss (default 0.1)")
    stocks.add_argument("--learning-rate", type=common.positive_float, default=2e-3)
    stocks.add_argument("--plot-quarter", default=None, help="test quarter to plot (default: the last one)")
    stocks.add_argument("--seed", type=common.seed, default=0)
    stocks.add_argument("--no-dtw", action="store_true", help="skip the DTW baseline")
    common.add_threads_argument(stocks)
    stocks.set_defaults(action=_train)
    actions = stocks.add_subparsers(dest="stocks_action", metavar="ACTION")
    predict = actions.add_parser("predict", help="similarity matrix and nearest neighbours of a window")
    predict.add_argument("--model-file", required=True, help="model.rnnkit written by `rnnkit compare stocks`")
    predict.add_argument("--data", required=True, metavar="PRICES.csv",
                         help="a date column, then one column of prices per ticker")
    predict.add_argument("--window", required=True,
                         help="a calendar quarter (2024Q3) or START:END dates (2024-07-01:2024-09-30)")
    predict.add_argument("--neighbours", type=common.positive_int, default=3, help="neighbours to list (default 3)")
    common.add_threads_argument(predict)
    predict.set_defaults(action=_predict)
    common.add_subcommand_help(parser)
    return parser


def main(args):
    return args.action(args)


# ----- data -----------------------------------------------------------------------------------
def load_universe(data=None, sectors_file=None):
    """(StockPrices, {ticker: sector})."""
    from ..datasets import stocks

    if data is None:
        if sectors_file is not None:
            universe = stocks.sp500_prices()
            return universe, stocks.read_sectors_file(sectors_file, universe.tickers)
        universe = stocks.sp500_prices()
        return universe, dict(stocks.SP500_SECTORS)
    universe = stocks.read_price_file(data)
    if sectors_file is None:
        raise UsageError("training on --data needs --sectors SECTORS.csv (ticker,sector rows): the sectors "
                         "define the training pairs and the relevant answers. To apply a trained model to "
                         "your prices, use `rnnkit compare stocks predict --model-file M --data FILE --window Q`.")
    return universe, stocks.read_sectors_file(sectors_file, universe.tickers)


def returns_and_market(universe):
    """Daily log returns (DataFrame), the model's market series (equal-weighted mean) and the
    index's log returns for the residual baseline (the index when the data has one)."""
    from ..datasets.stocks import log_returns

    returns = log_returns(universe.prices)
    market = returns.mean(axis=1)
    index = log_returns(universe.index) if universe.index is not None else market
    return returns, market, index


def split_periods(dates, train_end, test_start, test_end=None):
    """Training positions (fit, validation) and test quarters; asserts no test date trains."""
    from ..datasets.stocks import quarter_windows

    years = dates.year
    first_year, last_year = int(years.min()), int(years.max()) if test_end is None else int(test_end)
    if not first_year <= train_end < test_start <= last_year:
        raise UsageError(f"need {first_year} <= --train-end ({train_end}) < --test-start ({test_start}) <= "
                         f"{last_year} (the data's years).")
    train_years = train_end - first_year + 1
    if train_years < 2:
        raise UsageError(f"--train-end {train_end} leaves {train_years} year of training data; need at least 2.")
    val_years = max(1, round(train_years / 5))
    fit_end = train_end - val_years
    fit = np.flatnonzero(years <= fit_end)
    validation = quarter_windows(dates, fit_end + 1, train_end)
    test = quarter_windows(dates, test_start, last_year)
    # the guarantee the tests check: nothing after --train-end is ever used to fit or choose
    test_first = min(p[0] for p in test.values())
    assert fit.max() < min(p[0] for p in validation.values()) and fit.max() < test_first
    assert max(p[-1] for p in validation.values()) < test_first
    return {"fit": fit, "validation": validation, "test": test, "fit_end": fit_end}


# ----- the encoder ----------------------------------------------------------------------------
def build_encoder(units=32, channels=4, name="encoder"):
    """(batch, days, 2) -> (batch, days * channels), a unit vector: see the module docstring."""
    import rnnkit
    from rnnkit import layers
    from rnnkit.compare import center_over_time

    series = rnnkit.Input(shape=(None, 2), name="series")
    h = layers.Bidirectional(layers.GRU(units, return_sequences=True), name=f"{name}_bigru")(series)
    h = layers.Concatenate(name=f"{name}_with_input")([series, h])
    h = layers.Dense(channels, name=f"{name}_daily_code")(h)
    code = layers.Lambda(center_over_time, name=f"{name}_center_over_time")(h)
    return rnnkit.Model(series, code, name=name)


def ensemble_encoder(members):
    """One encoder from several: their unit codes concatenated, so the cosine of two ensemble
    codes is the mean of the members' cosines."""
    import rnnkit
    from rnnkit import layers

    if len(members) == 1:
        return members[0]
    series = rnnkit.Input(shape=(None, 2), name="series")
    code = layers.Concatenate(name="members")([m(series) for m in members])
    return rnnkit.Model(series, code, name="encoder")


def encoder_inputs(returns, market):
    """(days, tickers) returns and (days,) market -> (tickers, days, 2) float32, each series
    divided by its standard deviation over the window and clipped."""
    r = np.asarray(returns, dtype=np.float64)
    m = np.asarray(market, dtype=np.float64).reshape(-1, 1)
    r = r / np.maximum(r.std(axis=0, keepdims=True), 1e-12)
    m = m / max(float(m.std()), 1e-12)
    x = np.stack([r.T, np.broadcast_to(m.T, r.T.shape)], axis=-1)
    return np.clip(x, -CLIP, CLIP).astype(np.float32)


def encode(encoder, returns, market):
    import torch

    with torch.no_grad():
        return encoder(torch.from_numpy(encoder_inputs(returns, market))).numpy()


# ----- similarities of the methods --------------------------------------------------------------
def pearson_scores(r, _index=None):
    return np.corrcoef(np.asarray(r, dtype=np.float64).T)


def residual_scores(r, index):
    r = np.asarray(r, dtype=np.float64)
    x = np.column_stack([np.ones(len(r)), np.asarray(index, dtype=np.float64)])
    coef, *_ = np.linalg.lstsq(x, r, rcond=None)
    return np.corrcoef((r - x @ coef).T)


DTW_WINDOWS = (None, 2, 5, 10)  # Sakoe-Chiba half-widths tried on the validation quarters


def dtw_scores(r, _index=None, window=None):
    """-DTW distance between z-normalised cumulative log returns (dtaidistance's C code);
    ``window``: Sakoe-Chiba band in days (None: unconstrained)."""
    try:
        from dtaidistance import dtw
    except ImportError:
        raise UsageError("the DTW baseline needs dtaidistance (pip install dtaidistance==2.5.1); "
                         "or pass --no-dtw.") from None

    c = np.cumsum(np.asarray(r, dtype=np.float64), axis=0)
    z = (c - c.mean(axis=0)) / np.maximum(c.std(axis=0), 1e-12)
    series = np.ascontiguousarray(z.T)
    if dtw.try_import_c():
        d = dtw.distance_matrix_fast(series, compact=False, window=window)
    else:
        d = dtw.distance_matrix(series, compact=False, use_c=False, window=window)
    d = np.asarray(d, dtype=np.float64)
    d = np.where(np.isfinite(d), d, 0.0)
    d = np.maximum(d, d.T)
    return -d


def sector_relevance(tickers, sectors):
    labels = [sectors.get(t) for t in tickers]
    n = len(tickers)
    rel = np.array([[labels[i] is not None and i != j and labels[i] == labels[j] for j in range(n)]
                    for i in range(n)])
    return rel, np.eye(n, dtype=bool)


def evaluate(score_fn, windows, returns, index, tickers, sectors):
    """MAP/MRR/recall over every window's queries; ``score_fn(r, index) -> (n, n)``."""
    from ..compare import retrieval_metrics

    rel, exclude = sector_relevance(tickers, sectors)
    per_window, all_scores, aps = {}, [], []
    scores_out = {}
    rows = []
    for label, pos in windows.items():
        s = score_fn(returns[pos], index[pos])
        scores_out[label] = s
        m = retrieval_metrics(s, rel, exclude=exclude, ks=(1, 3))
        per_window[label] = round(m["map"], 5)
        aps.extend(m["average_precisions"])
        rows.append(m)
        all_scores.append(s)
    count = sum(r["queries"] for r in rows)
    total = {"map": float(np.mean(aps))}
    for key in ("mrr", "precision@1", "recall@3"):
        total[key] = float(sum(r[key] * r["queries"] for r in rows) / count)
    total.update({"queries": int(len(aps)), "windows": len(windows), "map_per_window": per_window})
    return total, scores_out


def random_expected(windows, tickers, sectors):
    from ..compare import expected_random_average_precision

    rel, _ = sector_relevance(tickers, sectors)
    n_items = len(tickers) - 1
    aps = [expected_random_average_precision(int(row.sum()), n_items) for row in rel if row.any()]
    return {"map": float(np.mean(aps)), "queries": len(aps) * len(windows), "windows": len(windows),
            "note": "exact expectation over random rankings"}


# ----- training -------------------------------------------------------------------------------
def train_encoder(encoder, returns, market, fit_positions, sector_ids, validate, *, epochs, steps, windows,
                  temperature, learning_rate, seed, say=print, min_len=50, max_len=76):
    """Supervised contrastive training on random windows inside ``fit_positions`` (contiguous);
    keeps the weights of the epoch with the best ``validate(encoder)`` (a MAP)."""
    import torch

    from ..compare import supervised_contrastive_loss

    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    r_all = np.asarray(returns, dtype=np.float64)[fit_positions]
    m_all = np.asarray(market, dtype=np.float64)[fit_positions]
    labels = torch.as_tensor(sector_ids)
    n = r_all.shape[1]
    if len(r_all) <= max_len:
        raise UsageError(f"the fit period has {len(r_all)} daily returns; training windows need more than "
                         f"{max_len}. Give more history before --train-end.")
    optimizer = torch.optim.Adam(encoder.parameters(), lr=learning_rate)
    best, best_state, history = -math.inf, None, []
    for epoch in range(1, epochs + 1):
        encoder.train()
        start = time.perf_counter()
        losses = []
        for _ in range(steps):
            length = int(rng.integers(min_len, max_len + 1))
            starts = rng.integers(0, len(r_all) - length, size=windows)
            batch = np.concatenate([encoder_inputs(r_all[s:s + length], m_all[s:s + length]) for s in starts])
            if rng.random() < 0.5:  # the sign of all series at once: correlations unchanged
                batch = -batch
            codes = encoder(torch.from_numpy(batch)).reshape(windows, n, -1)
            loss = torch.stack([supervised_contrastive_loss(codes[w], labels, temperature)
                                for w in range(windows)]).mean()
            if not torch.isfinite(loss):
                raise FloatingPointError("training diverged (non-finite loss); try a lower --learning-rate.")
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(encoder.parameters(), 1.0)
            optimizer.step()
            losses.append(float(loss.detach()))
        encoder.eval()
        val = validate(encoder)
        history.append({"epoch": epoch, "loss": round(float(np.mean(losses)), 5), "val_map": round(val, 5),
                        "seconds": round(time.perf_counter() - start, 1)})
        marker = ""
        if val > best:
            best, marker = val, " *"
            best_state = {k: v.detach().clone() for k, v in encoder.state_dict().items()}
        say(f"epoch {epoch:3d}  loss {np.mean(losses):.4f}  validation MAP {val:.4f}"
            f"  ({history[-1]['seconds']:.1f} s){marker}")
    encoder.load_state_dict(best_state)
    return history, best


# ----- plots ----------------------------------------------------------------------------------
def save_similarity_png(path, learned, pearson, tickers, sectors, quarter):
    from .. import plots

    order = sorted(range(len(tickers)), key=lambda i: (sectors.get(tickers[i]) or "~", tickers[i]))
    names = [tickers[i] for i in order]
    fig = plots.new_figure(14, 6.6)
    for k, (matrix, title) in enumerate(((learned, f"siamese GRU similarity, {quarter}"),
                                         (pearson, f"Pearson correlation of daily returns, {quarter}"))):
        ax = fig.add_subplot(1, 2, k + 1)
        m = np.asarray(matrix)[np.ix_(order, order)].copy()
        np.fill_diagonal(m, np.nan)
        image = ax.imshow(m, cmap="RdBu_r", vmin=-1, vmax=1)
        ax.set_xticks(range(len(names)), names, rotation=90, fontsize=7)
        ax.set_yticks(range(len(names)), names, fontsize=7)
        secs = [sectors.get(t) for t in names]
        for i in range(1, len(secs)):
            if secs[i] != secs[i - 1]:
                ax.axhline(i - 0.5, color="black", lw=0.8)
                ax.axvline(i - 0.5, color="black", lw=0.8)
        ax.set_title(title, fontsize=10)
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    fig.suptitle("tickers ordered by sector (black lines: sector boundaries; diagonal blank)")
    return plots.save_png(fig, path)


# ----- commands -------------------------------------------------------------------------------
def _train(args):
    """Train and evaluate; the files land in ``args.out`` when the run completes."""
    with common.output_folder(args.out) as out:
        return _train_into(args, out)


def _train_into(args, out):
    import rnnkit

    from ..compare import siamese

    threads = common.apply_threads(args)
    started = time.perf_counter()
    universe, sectors = load_universe(args.data, args.sectors)
    returns, market, index = returns_and_market(universe)
    tickers = universe.tickers
    dates = returns.index
    default_protocol = args.data is None
    train_end = args.train_end if args.train_end is not None else (2014 if default_protocol else None)
    test_start = args.test_start if args.test_start is not None else (2015 if default_protocol else None)
    if train_end is None or test_start is None:
        last = int(dates.year.max())
        test_start = test_start if test_start is not None else last - max(1, (last - int(dates.year.min())) // 4) + 1
        train_end = train_end if train_end is not None else test_start - 1
    periods = split_periods(dates, train_end, test_start)
    labelled = [t for t in tickers if t in sectors]
    groups = sorted(set(sectors.values()))
    if not any(list(sectors.values()).count(g) > 1 for g in groups):
        raise UsageError("no two tickers share a sector: there is nothing to retrieve.")
    sector_ids = np.array([groups.index(sectors[t]) if t in sectors else -1 - i for i, t in enumerate(tickers)])
    r = returns.to_numpy()
    mk, ix = market.to_numpy(), index.to_numpy()
    skipped = {}
    for part in ("validation", "test"):
        for q in [q for q, p in periods[part].items() if len(p) < MIN_WINDOW_DAYS]:
            skipped[q] = len(periods[part].pop(q))
        if not periods[part]:
            raise UsageError(f"no {part} quarter has the {MIN_WINDOW_DAYS} daily returns the encoder needs "
                             f"(years from {test_start if part == 'test' else periods['fit_end'] + 1}).")
    if skipped:
        print("left out, shorter than the encoder needs (" + str(MIN_WINDOW_DAYS) + " daily returns): "
              + ", ".join(f"{q} ({n})" for q, n in skipped.items()))
    print(f"data: {universe.source}: {len(tickers)} tickers, {len(dates)} daily returns "
          f"{dates[0].date()}..{dates[-1].date()}; {len(labelled)} with a sector")
    print(f"fit on {dates[periods['fit'][0]].date()}..{dates[periods['fit'][-1]].date()}, choose the epoch on "
          f"{len(periods['validation'])} quarters {periods['fit_end'] + 1}-{train_end}, test on "
          f"{len(periods['test'])} quarters {test_start}-{dates.year.max()}; {threads} thread(s)")

    results = {}
    results["random"] = random_expected(periods["test"], tickers, sectors)
    timing = {}
    score_mats = {}
    baselines = [("pearson", pearson_scores), ("pearson-residual", residual_scores)]
    dtw_choice = None
    if not args.no_dtw:
        baselines.append(("dtw", dtw_scores))
        t0 = time.perf_counter()
        tried = {str(w): evaluate(lambda rw, iw, w=w: dtw_scores(rw, iw, w), periods["validation"], r, ix, tickers,
                                  sectors)[0]["map"] for w in DTW_WINDOWS}
        best_window = max(DTW_WINDOWS, key=lambda w: tried[str(w)])
        dtw_choice = {"validation_map_by_window": tried, "chosen_window_days": best_window,
                      "seconds": round(time.perf_counter() - t0, 2)}
        baselines.append(("dtw-window", lambda rw, iw: dtw_scores(rw, iw, best_window)))
    for name, fn in baselines:
        t0 = time.perf_counter()
        results[name], score_mats[name] = evaluate(fn, periods["test"], r, ix, tickers, sectors)
        timing[name] = round(time.perf_counter() - t0, 2)

    def learned_with(enc):
        from ..compare import similarity_matrix

        return lambda rw, mw: similarity_matrix(encode(enc, rw, mw), kind="cosine")

    def validate(enc):
        return evaluate(learned_with(enc), periods["validation"], r, mk, tickers, sectors)[0]["map"]

    t0 = time.perf_counter()
    members, history, member_val = [], [], []
    for k in range(args.ensemble):
        rnnkit.utils.set_random_seed(args.seed + k)
        member = build_encoder(args.units, args.channels, name="encoder" if args.ensemble == 1 else f"member{k + 1}")
        if args.ensemble > 1:
            print(f"member {k + 1} of {args.ensemble} (seed {args.seed + k})")
        h, best_val = train_encoder(member, r, mk, periods["fit"], sector_ids, validate, epochs=args.epochs,
                                    steps=args.steps, windows=args.windows, temperature=args.temperature,
                                    learning_rate=args.learning_rate, seed=args.seed + k)
        members.append(member)
        history.append(h)
        member_val.append(round(best_val, 5))
    encoder = ensemble_encoder(members)
    encoder.eval()
    timing["siamese-gru (training)"] = round(time.perf_counter() - t0, 1)
    t0 = time.perf_counter()
    results["siamese-gru"], score_mats["siamese-gru"] = evaluate(learned_with(encoder), periods["test"], r, mk,
                                                                 tickers, sectors)
    results["siamese-gru"]["validation_map"] = round(validate(encoder), 5)
    results["siamese-gru"]["validation_map_per_member"] = member_val
    if len(members) > 1:  # reported only (nothing is chosen on the test quarters)
        results["siamese-gru"]["test_map_per_member"] = [
            round(evaluate(learned_with(m), periods["test"], r, mk, tickers, sectors)[0]["map"], 5) for m in members]
    if dtw_choice is not None:
        results["dtw-window"]["window_choice"] = dtw_choice
    timing["siamese-gru"] = round(time.perf_counter() - t0, 2)

    model = siamese(encoder, (None, 2), similarity="cosine", name="siamese_stocks")
    model.metadata = {"task": TASK, "tickers": tickers, "sectors": sectors, "market": MARKET,
                      "min_window_days": MIN_WINDOW_DAYS, "clip": CLIP, "units": args.units,
                      "channels": args.channels, "train_end": train_end, "fit_end": periods["fit_end"]}
    model.save(out / "model.rnnkit", include_optimizer=False)

    quarter = args.plot_quarter or list(periods["test"])[-1]
    if quarter not in periods["test"]:
        raise UsageError(f"--plot-quarter {quarter} is not a test quarter ({', '.join(list(periods['test'])[:3])} ...).")
    save_similarity_png(out / "similarity.png", score_mats["siamese-gru"][quarter], score_mats["pearson"][quarter],
                        tickers, sectors, quarter)

    names = list(results)
    rows = []
    for name in names:
        m = results[name]
        rows.append([name, f"{m['map']:.4f}"] + [f"{m[key]:.4f}" if key in m else "-"
                                                 for key in ("mrr", "precision@1", "recall@3")]
                    + [str(m["queries"])])
    print()
    print(common.format_table(["method", "MAP", "MRR", "P@1", "R@3", "queries"], rows))
    ref = results["pearson-residual"]["map"]
    gap = results["siamese-gru"]["map"] - ref
    wins = sum(results["siamese-gru"]["map_per_window"][q] > results["pearson-residual"]["map_per_window"][q]
               for q in periods["test"])
    verdict = (f"siamese-gru {'beats' if gap > 0 else 'does not beat'} pearson-residual: "
               f"{gap:+.4f} MAP; better in {wins} of {len(periods['test'])} test quarters")
    print(verdict)
    report = {"task": TASK, "command": getattr(args, "command_line", None), "data": universe.source,
              "tickers": tickers, "sectors": sectors,
              "protocol": {"returns": "daily log returns", "fit": [str(dates[periods['fit'][0]].date()),
                                                                  str(dates[periods['fit'][-1]].date())],
                           "validation_quarters": list(periods["validation"]),
                           "test_quarters": list(periods["test"]),
                           "relevant": "same sector; the query itself excluded; tickers alone in their "
                                       "sector are not queried"},
              "methods": results, "verdict": verdict, "history": history,
              "settings": {k: getattr(args, k) for k in ("epochs", "steps", "windows", "ensemble", "units", "channels",
                                                          "temperature", "learning_rate", "seed")},
              "threads": threads, "seconds": timing, "total_seconds": round(time.perf_counter() - started, 1),
              "plot_quarter": quarter, "quarters_left_out_as_too_short": skipped}
    common.write_json(out / "report.json", report)
    final = Path(args.out)
    print(f"wrote {final / 'report.json'}, {final / 'similarity.png'}, {final / 'model.rnnkit'}")
    return 0


def load_stock_model(path):
    from .. import compare  # noqa: F401  (registers the functions the model's Lambdas name)

    model, meta = common.load_model_for(path, TASK)
    return model, compare.shared_encoder(model), meta


def similarity_for_window(encoder, meta, universe, window):
    from ..datasets import DataError
    from ..datasets.stocks import log_returns, window_positions

    returns = log_returns(universe.prices)
    market = returns.mean(axis=1)
    pos = window_positions(returns.index, window)
    need = int(meta.get("min_window_days", MIN_WINDOW_DAYS))
    if len(pos) < need:
        raise DataError(f"window {window} has {len(pos)} daily returns in {universe.source}; "
                        f"the encoder needs at least {need}.")
    from ..compare import similarity_matrix

    codes = encode(encoder, returns.to_numpy()[pos], market.to_numpy()[pos])
    return similarity_matrix(codes, kind="cosine"), returns.index[pos]


def _predict(args):
    from ..datasets.stocks import read_price_file

    common.apply_threads(args)
    model, encoder, meta = load_stock_model(args.model_file)
    universe = read_price_file(args.data)
    sim, dates = similarity_for_window(encoder, meta, universe, args.window)
    tickers = universe.tickers
    print(f"window {args.window}: {dates[0].date()}..{dates[-1].date()}, {len(dates)} daily returns, "
          f"{len(tickers)} tickers")
    rows = [[t] + [f"{v:+.2f}" for v in sim[i]] for i, t in enumerate(tickers)]
    print(common.format_table([""] + tickers, rows))
    print("\nnearest neighbours:")
    k = min(args.neighbours, len(tickers) - 1)
    for i, t in enumerate(tickers):
        order = [j for j in np.argsort(-sim[i], kind="stable") if j != i][:k]
        print(f"{t}: " + ", ".join(f"{tickers[j]} {sim[i, j]:+.2f}" for j in order))
    return 0


__all__ = ["add_arguments", "main", "build_encoder", "encoder_inputs", "evaluate", "split_periods",
           "pearson_scores", "residual_scores", "dtw_scores", "train_encoder", "load_universe"]

if __name__ == "__main__":
    sys.exit(common.run_standalone(sys.modules[__name__], "compare"))
