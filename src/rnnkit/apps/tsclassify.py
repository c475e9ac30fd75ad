"""``rnnkit tsclassify``: which class does a timeseries belong to? (UCR/UEA archive, or your own)

    rnnkit tsclassify train --dataset GunPoint [--model conv-gru] [--seeds 3] [--out runs/tsclassify]
    rnnkit tsclassify train --dataset all --threads 1          # the 8 archive sets, one table
    rnnkit tsclassify train --data my_TRAIN.ts --test my_TEST.ts    # or UCR .csv/.tsv: label, values...
    rnnkit tsclassify predict --model-file runs/tsclassify/model.rnnkit --data new.ts

Data: the archive's own train/test splits as aeon 1.6.0 ships them (``rnnkit.datasets.ucr``):
GunPoint, ItalyPowerDemand, ArrowHead, OSULeaf, ACSF1, PickupGestureWiimoteZ (variable length),
BasicMotions (6 channels), JapaneseVowels (12 channels, variable length).

Protocol: univariate series are z-normalised one by one (UCR practice), multivariate ones per
channel with the training set's mean and std (``--normalize``). Each seed's model trains with Adam
on every training series (batches of a tenth of the set, 4 to 16 series; each series shown as a
random window of 80-100 % of its steps, ``--crop``) for ``--epochs`` epochs and keeps its last
weights; the test set is then predicted once, on whole series. Why no validation split by
default: the archive's training sets are tiny (ArrowHead: 36 series), and early stopping on a
fifth of them stops at noise (ArrowHead, 3 seeds: best epochs 25-120, test accuracy 0.46-0.77;
trained on all 36 for 150 epochs: 0.72-0.78). ``--validation 0.2`` brings the split back: a
stratified share held out, early stopping on its loss after ``--patience`` epochs without
improvement (watched from epoch ``--min-epochs``), best epoch's weights restored. Accuracies are
the mean +- sample standard deviation over the ``--seeds`` seeds, and the accuracy of their
ensemble (the mean of their class probabilities, :func:`rnnkit.tsclassify.ensemble`), which is
``model.rnnkit``; with several ``--model``, the one best on validation (the first listed without
validation). Recurrent layers see at most ``--max-steps`` steps: ``conv-gru``'s first convolution
takes strides of ``ceil(T / max_steps)``, the other models get the series averaged over runs of
that many steps (PAA, ``rnnkit.tsclassify.paa``). Baselines on the same split and
normalisation: 1-NN with the Euclidean distance and with full-window DTW (dtaidistance's C code;
see ``rnnkit.tsclassify``). Published accuracies are printed beside them.

``train`` writes into ``--out`` (one sub-folder per data set when there are several):
``report.json`` (every seed's accuracy, epochs and seconds, the ensemble's accuracy and metrics,
baselines, published numbers, the command), ``model.rnnkit`` (the ensemble), ``series.png`` (test series of each class, coloured by the model's
prediction) and ``confusion.png``.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from . import UsageError
from . import _text_common as common

TASK = "tsclassify"


# ----- CLI ---------------------------------------------------------------------------------------
def add_arguments(subparsers):
    from ..tsclassify import MODEL_KINDS

    parser = subparsers.add_parser(TASK, help="timeseries classification (UCR/UEA archive or your own series)",
                                   description="Classify timeseries with recurrent networks, against 1-NN "
                                               "Euclidean and DTW baselines and published accuracies.")
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    train = actions.add_parser("train", help="train on an archive data set (or your files), report test accuracy",
                               description=__doc__.split("``train`` writes")[0],
                               formatter_class=argparse.RawDescriptionHelpFormatter)
    train.add_argument("--dataset", default=None,
                       help="an archive data set, a comma-separated list, or all (default GunPoint "
                            "unless --data is given)")
    train.add_argument("--data", metavar="TRAIN", help="your training series: .ts, or UCR .csv/.tsv (label first)")
    train.add_argument("--test", metavar="TEST", help="your test series, same format (needed with --data)")
    train.add_argument("--model", default="conv-gru",
                       help=f"{', '.join(MODEL_KINDS)}, a comma-separated list, or all (default conv-gru)")
    train.add_argument("--seeds", type=common.bounded_int(1, 100, "a number of seeds"), default=5,
                       help="training runs per model, seeds SEED, SEED+1, ...; the saved model is their "
                            "ensemble (default 5)")
    train.add_argument("--seed", type=common.seed, default=0, help="the first seed (default 0)")
    train.add_argument("--epochs", type=common.positive_int, default=200, help="most epochs (default 200)")
    train.add_argument("--patience", type=common.positive_int, default=30,
                       help="epochs without a better validation loss before stopping (default 30)")
    train.add_argument("--batch-size", type=common.positive_int, default=None,
                       help="(default: a tenth of the training split, between 4 and 16, so that small data "
                            "sets still get about ten updates an epoch)")
    train.add_argument("--min-epochs", type=common.nonnegative_int, default=20,
                       help="epochs before early stopping watches (and before a best epoch can be kept; "
                            "default 20)")
    train.add_argument("--learning-rate", type=common.positive_float, default=3e-3, help="Adam's (default 0.003)")
    train.add_argument("--units", type=common.positive_int, default=64, help="recurrent units (default 64)")
    train.add_argument("--filters", type=common.positive_int, default=64,
                       help="convolution filters of conv-gru (default 64)")
    train.add_argument("--dropout", type=common.dropout_rate, default=0.2, help="before the output (default 0.2)")
    train.add_argument("--max-steps", type=common.positive_int, default=64,
                       help="most steps a recurrent layer sees; longer series are strided (conv-gru) or "
                            "averaged (PAA, the other models) (default 64)")
    train.add_argument("--normalize", choices=("auto", "series", "channel", "none"), default="auto",
                       help="per-series z-normalisation, per-channel training statistics, or none "
                            "(default auto: series for one channel, channel for several)")
    train.add_argument("--crop", type=_crop, default="auto",
                       help="training augmentation: every batch shows each series as a random window of "
                            "CROP to 1 times its steps (1: whole series; default auto: 0.8 where the longest "
                            "training series has more than --max-steps steps, else 1)")
    train.add_argument("--validation", type=common.nonnegative_float, default=0.0,
                       help="share of the training set held out for early stopping; 0: none, train on every "
                            "series for --epochs epochs (default 0)")
    train.add_argument("--no-dtw", action="store_true", help="skip the 1-NN DTW baseline")
    train.add_argument("--out", default="runs/tsclassify", help="output folder (default runs/tsclassify)")
    common.add_threads_argument(train)
    common.add_training_service_arguments(train, distributed=False)
    train.set_defaults(action=_train)
    predict = actions.add_parser("predict", help="classify series with a trained model")
    predict.add_argument("--model-file", required=True, help="model.rnnkit written by `rnnkit tsclassify train`")
    predict.add_argument("--data", required=True, help="series to classify: .ts, or .csv/.tsv (label first)")
    predict.add_argument("--no-labels", action="store_true",
                         help="the .csv/.tsv rows hold values only (no label first)")
    common.add_threads_argument(predict)
    predict.set_defaults(action=_predict)
    common.add_subcommand_help(parser)
    return parser


def main(args):
    return args.action(args)


_crop = common.argument_type(lambda text: "auto" if text.strip().lower() == "auto" else float(text),
                             lambda share: share == "auto" or 0 < share <= 1,
                             "auto or a share of the steps in (0, 1], e.g. 0.8 (1: no cropping)")


def crop_share(crop, factor):
    """``--crop``'s share; ``auto``: 0.8 for series the model downsamples (``factor`` > 1: long
    series, where a window is still the whole pattern at a shift) and 1 for short ones, whose
    every step is seen and whose positions carry meaning (ItalyPowerDemand: the hours of a day;
    5-seed ensembles: 0.938 cropped to 0.8, 0.960 whole; on GunPoint 0.993 cropped, 0.953 whole)."""
    if crop == "auto":
        return 0.8 if factor > 1 else 1.0
    return crop


# ----- data --------------------------------------------------------------------------------------
def resolve_datasets(value):
    from ..datasets.ucr import UCR_DATASETS

    return common.choose_names(value, list(UCR_DATASETS), option="--dataset", what="data set")


def checked_pair(train, test):
    """Class names (training order) and integer labels; one-line errors for unusable data."""
    from ..datasets import DataError

    if train.labels is None or test.labels is None:
        which = train.source if train.labels is None else test.source
        raise DataError(f"{which} has no class labels (@classLabel false); training and testing need them.")
    classes = [c for c in train.classes if c in set(train.labels)] or sorted(set(train.labels))
    if len(classes) < 2:
        raise DataError(f"{train.source}: a single class ('{classes[0]}'); classification needs at least two.")
    unseen = sorted(set(test.labels) - set(classes))
    if unseen:
        raise DataError(f"{test.source}: label{'s' if len(unseen) > 1 else ''} {', '.join(unseen[:5])} never "
                        f"seen in training ({', '.join(classes)}).")
    if test.channels != train.channels:
        raise DataError(f"{test.source} has {test.channels} channels, {train.source} has {train.channels}.")
    index = {c: i for i, c in enumerate(classes)}
    return classes, np.array([index[c] for c in train.labels]), np.array([index[c] for c in test.labels])


def validation_split(y, share, seed):
    """Stratified (fit, validation) positions of the training set; at least one validation case
    per class."""
    from sklearn.model_selection import train_test_split

    from ..datasets import DataError

    counts = np.bincount(y)
    if counts.min() < 2:
        raise DataError(f"class {int(np.argmin(counts))} has {counts.min()} training series: cannot split off "
                        f"a validation series and keep one to train on; give every class at least two.")
    k = len(counts)
    n_val = max(k, int(round(share * len(y))))
    if len(y) - n_val < k:
        raise DataError(f"{len(y)} training series for {k} classes: too few to hold out a validation split "
                        f"of one series per class.")
    fit, val = train_test_split(np.arange(len(y)), test_size=n_val, stratify=y, random_state=seed)
    return np.sort(fit), np.sort(val)


def crop_batches(series, y, batch_size, kind, factor, min_share, seed):
    """Endless shuffled training batches of random windows of the series (``tsclassify.random_crops``)."""
    from ..tsclassify import random_crops

    rng = np.random.default_rng(seed)
    while True:
        order = rng.permutation(len(y))
        for start in range(0, len(y), batch_size):
            batch = order[start:start + batch_size]
            yield model_inputs(random_crops([series[i] for i in batch], rng, min_share), kind, factor), y[batch]


def model_inputs(series, kind, factor):
    """(x, present) for ``kind``: PAA by ``factor`` unless the model strides itself (conv-gru)."""
    from ..tsclassify import paa, pad

    return list(pad(series if kind == "conv-gru" else paa(series, factor)))


# ----- one data set ------------------------------------------------------------------------------
def say(*parts):
    print(*parts, flush=True)  # progress lines appear as they happen, also when piped to a file


def fit_one_seed(name, kind, seed, args, xs_train, x_train_all, y_train, x_test, y_test, *, channels, num_classes,
                 factor):
    """Train one model for ``seed`` and predict the test set once. With ``--validation`` a
    stratified share is split off and early stopping restores the best epoch's weights; without
    (``--validation 0``) the model trains on every training series for ``--epochs`` epochs and
    keeps its last weights. Returns (run summary, model, test probabilities)."""
    import rnnkit

    from .. import tsclassify as ts

    if args.validation:
        fit, val = validation_split(y_train, args.validation, seed)
    else:
        fit, val = np.arange(len(y_train)), None
    rnnkit.utils.set_random_seed(seed)
    model = ts.build_model(kind, channels, num_classes, units=args.units, stride=factor, filters=args.filters,
                           dropout=args.dropout)
    model.compile(optimizer=rnnkit.optimizers.Adam(learning_rate=args.learning_rate, clipnorm=1.0),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    callbacks = common.training_callbacks(args, run=f"{name}/{kind}-seed{seed}")
    if val is not None:
        callbacks.insert(0, rnnkit.callbacks.EarlyStopping(monitor="val_loss", patience=args.patience,
                                                           restore_best_weights=True, start_from_epoch=args.min_epochs))
    batch_size = args.batch_size or int(np.clip(len(fit) // 10, 4, 16))
    t0, c0 = time.perf_counter(), time.process_time()
    batches = crop_batches([xs_train[i] for i in fit], y_train[fit], batch_size, kind, factor,
                           crop_share(args.crop, factor), seed)
    history = model.fit(batches, epochs=args.epochs, steps_per_epoch=-(-len(fit) // batch_size), verbose=0,
                        callbacks=callbacks,
                        validation_data=None if val is None else ([a[val] for a in x_train_all], y_train[val])).history
    if not np.isfinite(history["loss"]).all():
        raise FloatingPointError(f"{name} {kind} seed {seed}: training diverged (non-finite loss); "
                                 f"try a lower --learning-rate.")
    probs = model.predict(x_test, batch_size=256, verbose=0)  # the test set, touched once
    run = {"seed": seed, "epochs": len(history["loss"]), "batch_size": batch_size,
           "train_loss": round(float(history["loss"][-1]), 4),
           "test_accuracy": round(float((probs.argmax(1) == y_test).mean()), 4),
           "seconds": round(time.perf_counter() - t0, 1), "cpu_seconds": round(time.process_time() - c0, 1)}
    if val is not None:
        # the epoch whose weights EarlyStopping restored: the lowest validation loss from --min-epochs on
        watched = history["val_loss"][args.min_epochs:]
        best_epoch = args.min_epochs + int(np.argmin(watched)) if watched else len(history["val_loss"]) - 1
        run.update(best_epoch=best_epoch + 1, val_accuracy=round(float(history["val_accuracy"][best_epoch]), 4),
                   val_loss=round(float(history["val_loss"][best_epoch]), 4))
    return run, model, probs


def run_dataset(name, train, test, args, kinds, say=say):
    """Baselines, then every model and seed, on one train/test pair. Returns (result for the
    report, (run, model, probabilities) of the saved model, its metadata, (test series, labels, classes))."""
    from .. import tsclassify as ts

    classes, y_train, y_test = checked_pair(train, test)
    how = args.normalize if args.normalize != "auto" else ("series" if train.channels == 1 else "channel")
    stats = ts.channel_stats(train.series) if how == "channel" else None
    xs_train = ts.normalize(train.series, how, stats)
    xs_test = ts.normalize(test.series, how, stats)
    longest = int(train.lengths.max())
    factor = ts.stride_for(longest, args.max_steps)
    say(f"{name}: {len(train)} train / {len(test)} test series, {train.channels} channel(s), "
        f"{train.lengths.min()}-{longest} steps, {len(classes)} classes; normalisation '{how}', "
        f"downsampling x{factor}, crop {crop_share(args.crop, factor):g}")

    baselines = {}
    t0, c0 = time.perf_counter(), time.process_time()
    ed = ts.nearest_neighbour(ts.euclidean_distances(xs_train, xs_test), y_train)
    baselines["1NN-ED"] = {"accuracy": round(float((ed == y_test).mean()), 4),
                           "seconds": round(time.perf_counter() - t0, 2),
                           "cpu_seconds": round(time.process_time() - c0, 2)}
    if not args.no_dtw:
        t0, c0 = time.perf_counter(), time.process_time()
        dtw = y_train[ts.dtw_nearest(xs_train, xs_test)]
        baselines["1NN-DTW"] = {"accuracy": round(float((dtw == y_test).mean()), 4),
                                "seconds": round(time.perf_counter() - t0, 2),
                                "cpu_seconds": round(time.process_time() - c0, 2)}
    say("  baselines: " + ", ".join(f"{k} {v['accuracy']:.3f} ({v['seconds']:.1f} s)" for k, v in baselines.items()))

    models, ensembles = {}, {}
    for kind in kinds:
        x_train_all = model_inputs(xs_train, kind, factor)
        x_test = model_inputs(xs_test, kind, factor)
        runs, seed_models, seed_probs = [], [], []
        for seed in range(args.seed, args.seed + args.seeds):
            run, model, probs = fit_one_seed(name, kind, seed, args, xs_train, x_train_all, y_train, x_test, y_test,
                                             channels=train.channels, num_classes=len(classes), factor=factor)
            runs.append(run)
            seed_models.append(model)
            seed_probs.append(probs)
            checked = (f"best {run['best_epoch']}), validation accuracy {run['val_accuracy']:.3f}"
                       if "val_accuracy" in run else f"training loss {run['train_loss']:.3f})")
            say(f"  {kind} seed {seed}: {run['epochs']} epochs ({checked}, test accuracy "
                f"{run['test_accuracy']:.3f}  ({run['seconds']:.0f} s)")
        accs = np.array([r["test_accuracy"] for r in runs])
        probs = np.mean(seed_probs, axis=0)  # the ensemble: the seeds' probabilities averaged
        models[kind] = {"test_accuracy_mean": round(float(accs.mean()), 4),
                        "test_accuracy_std": round(float(accs.std(ddof=1)) if len(accs) > 1 else 0.0, 4),
                        "ensemble_test_accuracy": round(float((probs.argmax(1) == y_test).mean()), 4),
                        "runs": runs, "metrics_ensemble": common.classification_metrics(y_test, probs, classes)}
        if args.validation:
            models[kind]["val_accuracy_mean"] = round(float(np.mean([r["val_accuracy"] for r in runs])), 4)
            models[kind]["val_loss_mean"] = round(float(np.mean([r["val_loss"] for r in runs])), 4)
        say(f"  {kind}: {models[kind]['test_accuracy_mean']:.3f} ± {models[kind]['test_accuracy_std']:.3f} over "
            f"{len(runs)} seeds, their ensemble {models[kind]['ensemble_test_accuracy']:.3f}")
        model = seed_models[0] if len(seed_models) == 1 else ts.ensemble(seed_models, name=f"tsclassify_{kind.replace('-', '_')}_ensemble")
        ensembles[kind] = (model, probs)
    # several models: the one best on validation (mean over its seeds); without validation the first listed
    chosen = (max(kinds, key=lambda k: (models[k]["val_accuracy_mean"], -models[k]["val_loss_mean"]))
              if args.validation else kinds[0])
    result = {"dataset": name, "train": train.source, "test": test.source, "classes": classes,
              "sizes": {"train": len(train), "test": len(test)}, "channels": train.channels,
              "lengths": [int(train.lengths.min()), longest], "normalization": how, "downsampling": factor,
              "crop": crop_share(args.crop, factor), "baselines": baselines, "models": models, "saved_model": chosen,
              "published": ts.PUBLISHED.get(name, {})}
    meta = {"task": TASK, "kind": chosen, "classes": classes, "channels": train.channels, "normalization": how,
            "channel_stats": [s.tolist() for s in stats] if stats is not None else None, "downsampling": factor,
            "dataset": name, "seeds": [r["seed"] for r in models[chosen]["runs"]]}
    return result, ensembles[chosen], meta, (xs_test, y_test, classes)


# ----- plots -------------------------------------------------------------------------------------
def save_series_png(path, series, y_true, y_pred, classes, title, per_class=4):
    """A panel per class: up to ``per_class`` test series of it (first channel), green when the
    model got it right and red (labelled with the prediction) when not."""
    from .. import plots

    k = len(classes)
    cols = min(k, 5)
    rows = -(-k // cols)
    fig = plots.new_figure(3.2 * cols, 2.4 * rows)
    for c, name in enumerate(classes):
        ax = fig.add_subplot(rows, cols, c + 1)
        members = np.flatnonzero(y_true == c)[:per_class]
        for i in members:
            ok = y_pred[i] == c
            ax.plot(series[i][:, 0], color="tab:green" if ok else "tab:red", lw=1,
                    label=None if ok else f"-> {classes[y_pred[i]]}")
        right = int((y_pred[y_true == c] == c).sum())
        ax.set_title(f"class {name}: {right}/{int((y_true == c).sum())} right", fontsize=9)
        ax.tick_params(labelsize=7)
        if any(y_pred[i] != c for i in members):
            ax.legend(fontsize=6)
    channels = np.asarray(series[0]).shape[1]
    fig.suptitle(title + (f" (first of {channels} channels shown)" if channels > 1 else ""), fontsize=10)
    fig.tight_layout()
    return plots.save_png(fig, path)


# ----- commands ----------------------------------------------------------------------------------
def _load_pairs(args):
    from ..datasets.ucr import read_series_file, ucr_dataset

    if args.data or args.test:
        if args.dataset:
            raise UsageError("give either --dataset or --data/--test, not both.")
        if not (args.data and args.test):
            raise UsageError("--data needs --test (and --test needs --data): the test set is a separate file.")
        name = Path(args.data).stem.removesuffix("_TRAIN")
        return [(name, lambda: (read_series_file(args.data), read_series_file(args.test)))]
    return [(n, lambda n=n: ucr_dataset(n)) for n in resolve_datasets(args.dataset or "GunPoint")]


def _train(args):
    from ..tsclassify import MODEL_KINDS

    kinds = common.resolve_models(args.model, kinds=tuple(k.replace("-", "") for k in MODEL_KINDS))
    kinds = [dict((k.replace("-", ""), k) for k in MODEL_KINDS)[k] for k in kinds]
    if not 0 <= args.validation < 1:
        raise UsageError(f"--validation {args.validation:g}: expected a share in [0, 1), e.g. 0.2 "
                         f"(0: no validation split, train on every series for --epochs).")
    pairs = _load_pairs(args)
    with common.output_folder(args.out) as out:
        return _train_into(args, out, pairs, kinds)


def _train_into(args, out, pairs, kinds):
    threads = common.apply_threads(args)
    started, cpu_started = time.perf_counter(), time.process_time()
    results, rows = [], []
    several = len(pairs) > 1
    for name, load in pairs:
        t0, c0 = time.perf_counter(), time.process_time()
        train, test = load()
        result, (model, probs), meta, (xs_test, y_test, classes) = run_dataset(name, train, test, args, kinds)
        result["seconds"] = round(time.perf_counter() - t0, 1)
        result["cpu_seconds"] = round(time.process_time() - c0, 1)
        folder = out / name if several else out
        folder.mkdir(exist_ok=True)
        model.metadata = meta
        model.save(folder / "model.rnnkit", include_optimizer=False)
        kind = result["saved_model"]
        saved = result["models"][kind]
        title = (f"{name}: {kind}, ensemble of {args.seeds} seeds" if args.seeds > 1 else f"{name}: {kind}") + \
            f", test accuracy {saved['ensemble_test_accuracy']:.3f}"
        save_series_png(folder / "series.png", xs_test, y_test, probs.argmax(1), classes, title)
        common.save_confusion_png(saved["metrics_ensemble"]["confusion_matrix"], classes, folder / "confusion.png", title)
        results.append(result)
        published = ", ".join(f"{k} {v:.3f}" for k, v in result["published"].items()) or "-"
        for k in kinds:
            m = result["models"][k]
            rows.append([name, k, f"{m['test_accuracy_mean']:.3f} ± {m['test_accuracy_std']:.3f}",
                         f"{m['ensemble_test_accuracy']:.3f}", f"{result['baselines']['1NN-ED']['accuracy']:.3f}",
                         f"{result['baselines']['1NN-DTW']['accuracy']:.3f}" if "1NN-DTW" in result["baselines"]
                         else "-", published, f"{result['cpu_seconds']:.0f}"])
        say(f"  {name}: {result['seconds']:.0f} s wall, {result['cpu_seconds']:.0f} CPU-s")
    table = common.format_table(["dataset", "model", f"rnnkit seeds (mean ± std, {args.seeds})", "ensemble", "1NN-ED",
                                 "1NN-DTW", "published", "CPU-s"], rows)
    print()
    print(table)
    report = {"task": TASK, "command": getattr(args, "command_line", None), "threads": threads,
              "settings": {k: getattr(args, k) for k in ("model", "seeds", "seed", "epochs", "patience", "batch_size",
                                                          "learning_rate", "units", "filters", "dropout", "max_steps", "crop", "min_epochs",
                                                          "normalize", "validation")},
              "datasets": results, "table": table, "seconds": round(time.perf_counter() - started, 1),
              "cpu_seconds": round(time.process_time() - cpu_started, 1)}
    common.write_json(out / "report.json", report)
    print(f"wrote {Path(args.out) / 'report.json'} ({report['seconds']:.0f} s wall, {report['cpu_seconds']:.0f} "
          f"CPU-s, {threads} thread(s))")
    return 0


def _predict(args):
    from .. import tsclassify as ts
    from ..datasets import DataError
    from ..datasets.ucr import read_series_file

    common.apply_threads(args)
    model, meta = common.load_model_for(args.model_file, TASK)
    data = read_series_file(args.data, labelled=not args.no_labels)
    if data.channels != meta["channels"]:
        raise DataError(f"{args.data} has {data.channels} channel(s); the model was trained on {meta['channels']}.")
    stats = meta.get("channel_stats")
    xs = ts.normalize(data.series, meta["normalization"], tuple(np.asarray(s) for s in stats) if stats else None)
    probs = model.predict(model_inputs(xs, meta["kind"], meta["downsampling"]), batch_size=256, verbose=0)
    classes = meta["classes"]
    predicted = probs.argmax(1)
    for i, p in enumerate(predicted):
        truth = f"  (true {data.labels[i]})" if data.labels is not None else ""
        print(f"{i + 1}\t{classes[p]}\t{probs[i, p]:.3f}{truth}")
    if data.labels is not None:
        known = [i for i, label in enumerate(data.labels) if label in classes]
        if known:
            right = sum(classes[predicted[i]] == data.labels[i] for i in known)
            print(f"accuracy {right / len(known):.3f} ({right}/{len(known)} series with a known label)")
    return 0


__all__ = ["add_arguments", "main", "run_dataset", "fit_one_seed", "checked_pair", "validation_split", "save_series_png"]

if __name__ == "__main__":
    sys.exit(common.run_standalone(sys.modules[__name__], TASK))
