"""``rnnkit forecast``: temperature forecasting end to end (Deep Learning with Python's Jena
example), on the built-in JFK weather of 2013 or on any CSV time series.

    rnnkit forecast                                  # JFK hourly weather, GRU, 24 h ahead
    rnnkit forecast --model all --out runs/jfk
    rnnkit forecast --data jena_climate_2009_2016.csv --model gru --model lstm
    rnnkit forecast --data my.csv --target "T (degC)" --time-column time --horizon 12h
    rnnkit forecast predict --model-file runs/jfk/model.rnnkit --data new.csv --output forecasts.csv

Python: :func:`run` (training) and :func:`predict` take the same options as the CLI.
"""
from __future__ import annotations

import argparse

from .._common import add_training_service_arguments, start_distributed
from .._common import nonnegative_int, positive_float, positive_int, seed, threads_or_default
from .models import DEFAULT_MODELS, MODELS
from .pipeline import DEFAULT_EPOCHS, DEFAULT_PATIENCE, Options, format_table, torch_threads
from .pipeline import run as _run
from .predict import run as _predict

__all__ = ["Options", "add_arguments", "format_table", "main", "predict", "run"]

EPILOG = f"""models: {', '.join(MODELS)} (or 'all'; --model may be repeated)

Every run also reports the baselines persistence (the last observed value), seasonal
persistence (the value a whole number of days before the target) and a small dense
model, on the same windows; MAE is in the target's unit. --out receives report.json,
training_curves.png, forecast_week.png, error_histogram.png, checkpoints/ and
model.rnnkit (the best model by validation MAE).

subcommand:
  rnnkit forecast predict --model-file M [--data FILE.csv] [--output OUT.csv]
"""


def add_arguments(subparsers):
    parser = subparsers.add_parser(
        "forecast", help="train and evaluate temperature forecasters (and predict with them)",
        description="Forecast a time series (default: the temperature at JFK airport 24 h ahead) with "
                    "recurrent networks, against persistence baselines.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", metavar="FILE.csv",
                        help="a CSV file with a time column (default: built-in JFK hourly weather 2013; "
                             "also 'lga' or 'ewr')")
    parser.add_argument("--target", help="column to forecast (default: temp for the built-in data, "
                                         "'T (degC)' for Jena files)")
    parser.add_argument("--time-column", help="timestamp column (default: detected)")
    parser.add_argument("--features", help="comma-separated value columns to use (default: all numeric ones)")
    parser.add_argument("--model", action="append", metavar="NAME",
                        help=f"model to train (repeatable, or 'all'; default: {', '.join(DEFAULT_MODELS)})")
    parser.add_argument("--epochs", type=positive_int, help=f"maximum epochs (default {DEFAULT_EPOCHS}; 1 with --quick); "
                                                   f"early stopping on validation MAE")
    parser.add_argument("--patience", type=nonnegative_int, default=DEFAULT_PATIENCE,
                        help=f"early-stopping patience in epochs (default {DEFAULT_PATIENCE})")
    parser.add_argument("--horizon", default="24h", help="how far ahead of the window's end (default 24h)")
    parser.add_argument("--sampling", default="1h",
                        help="time between the samples of a window (default 1h: Jena's sampling_rate=6)")
    parser.add_argument("--sequence-length", type=positive_int,
                        help="samples per window (default 120; 48 with --quick)")
    parser.add_argument("--batch-size", type=positive_int, default=256, help="windows per batch (default 256)")
    parser.add_argument("--learning-rate", type=positive_float, default=1e-3, help="RMSprop learning rate (default 0.001)")
    parser.add_argument("--max-gap", default="12h",
                        help="interpolate gaps up to this long; longer ones split the series (default 12h)")
    parser.add_argument("--time-of-year", choices=("on", "off"), default="on",
                        help="sin/cos of the time of year as features (default on)")
    parser.add_argument("--target-mode", choices=("change", "value"), default="change",
                        help="what the network outputs: 'change' since the last observed value (default; "
                             "0 = persistence) or the 'value' itself (Deep Learning with Python's setup)")
    parser.add_argument("--out", default="runs/forecast", metavar="DIR",
                        help="output folder (default runs/forecast)")
    parser.add_argument("--seed", type=seed, default=1337, help="random seed (default 1337)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: first 2400 samples, 48-sample windows, 1 epoch unless --epochs")
    parser.add_argument("--threads", type=threads_or_default, default=1,
                        help="PyTorch CPU threads (default 1, fastest for these small models, above all on "
                             "a busy machine; 0 = PyTorch's default)")
    parser.add_argument("--verbose", type=int, choices=(0, 1, 2), default=1,
                        help="1: progress bar per epoch (default), 2: one line per epoch, 0: table only")
    add_training_service_arguments(parser)

    sub = parser.add_subparsers(dest="forecast_command", metavar="{predict}")
    pred = sub.add_parser("predict", help="forecasts for new data from a saved model",
                          description="Forecast with a model saved by 'rnnkit forecast': every complete "
                                      "window of the data gives the forecast for the horizon after its end.")
    pred.add_argument("--model-file", required=True, metavar="M.rnnkit", help="model saved by rnnkit forecast")
    pred.add_argument("--data", metavar="FILE.csv",
                      help="CSV with the model's columns (default: the built-in data it was trained on)")
    pred.add_argument("--time-column", help="timestamp column (default: the training data's)")
    pred.add_argument("--output", metavar="OUT.csv", help="write all forecasts to this CSV file")
    pred.add_argument("--show", type=nonnegative_int, default=10, help="forecasts to print (default 10, the latest)")
    pred.add_argument("--threads", type=threads_or_default, default=1, help="PyTorch CPU threads (default 1; 0 = PyTorch's default)")
    return parser


def options_from_args(args):
    features = None
    if getattr(args, "features", None):
        features = [c.strip() for c in args.features.split(",") if c.strip()]
    return Options(
        data=args.data, target=args.target, time_column=args.time_column, features=features,
        models=args.model or list(DEFAULT_MODELS), epochs=args.epochs, horizon=args.horizon,
        sampling=args.sampling, sequence_length=args.sequence_length, batch_size=args.batch_size,
        learning_rate=args.learning_rate, patience=args.patience, max_gap=args.max_gap,
        time_of_year=args.time_of_year, target_mode=args.target_mode, out=args.out, seed=args.seed, quick=args.quick, verbose=args.verbose, threads=args.threads,
        tensorboard=args.tensorboard,
        command=getattr(args, "command_line", None))


def main(args):
    if getattr(args, "forecast_command", None) == "predict":
        with torch_threads(args.threads):
            _predict(args.model_file, data=args.data, time_column=args.time_column, output=args.output,
                     show=args.show)
        return 0
    if (code := start_distributed(args)) is not None:  # --distributed N: this command in N processes
        return code
    _run(options_from_args(args))
    return 0


def run(**kwargs):
    """Train and evaluate, as ``rnnkit forecast`` does; keyword arguments are :class:`Options` fields."""
    return _run(Options(**kwargs))


def predict(model_file, data=None, time_column=None, output=None, show=10, verbose=1):
    """Forecasts for ``data`` from a saved model, as ``rnnkit forecast predict`` does; returns a DataFrame."""
    return _predict(model_file, data=data, time_column=time_column, output=output, show=show, verbose=verbose)
