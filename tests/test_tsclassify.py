"""rnnkit tsclassify: .ts / UCR table readers, inputs, masks, baselines, the command (issue 14, part 1)."""
import json
import math

import numpy as np
import pytest

import rnnkit
from rnnkit.apps.tsclassify import checked_pair, validation_split
from rnnkit import tsclassify as ts
from rnnkit.cli import main as cli_main
from rnnkit.datasets import DataError
from rnnkit.datasets.ucr import UCR_FILES, read_series_file, read_ts, read_ucr_table
from rnnkit.tsclassify import (MODEL_KINDS, PUBLISHED, build_model, dtw_distances, dtw_nearest,
                               euclidean_distances, nearest_neighbour, normalize, paa, pad, random_crops)

TS_UNIVARIATE = """# a comment
@problemName Toy
@timeStamps false
@univariate true
@equalLength false
@classLabel true up down
@data
1,2,3,4:up
4,3,2,?,?:down
0.5,1.5:up
"""

TS_MULTIVARIATE = """@problemName Toy2
@dimensions 2
@classLabel true a b
@data
1,2,3:10,20,30:a
3,2,1:30,20,10:b
"""


def write(tmp_path, name, text, encoding="utf-8"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


# ----- readers ----------------------------------------------------------------------------------
def test_ts_reader_univariate_variable_length_and_multivariate(tmp_path):
    data = read_ts(write(tmp_path, "toy.ts", TS_UNIVARIATE))
    assert data.labels == ["up", "down", "up"] and data.classes == ["up", "down"]
    assert [s.shape for s in data.series] == [(4, 1), (3, 1), (2, 1)]  # trailing '?' are padding
    np.testing.assert_array_equal(data.series[1][:, 0], [4, 3, 2])
    multi = read_ts(write(tmp_path, "toy2.ts", TS_MULTIVARIATE))
    assert multi.channels == 2 and multi.series[1].tolist() == [[3, 30], [2, 20], [1, 10]]


@pytest.mark.parametrize("text, message", [
    ("@problemName X\n@classLabel true a b\n1,2:a\n", "@data"),
    ("@problemName X\n@classLabel true a b\n", "@data"),
    ("@classLabel true a b\n@data\n", "no cases"),
    ("@dimensions 2\n@classLabel true a b\n@data\n1,2:3,4:a\n1,2:b\n", "ragged dimensions"),
    ("@classLabel true a b\n@data\n1,2:3,4:a\n1,2:b\n", "ragged dimensions"),
    ("@classLabel true a b\n@data\n1,2,3:4,5:a\n", "different lengths"),
    ("@classLabel true a b\n@data\n1,?,3:a\n", "NaN value at step 2"),
    ("@classLabel true a b\n@data\n1,NaN,3:a\n", "NaN value at step 2"),
    ("@classLabel true a b\n@data\n1,2,3:c\n", "label 'c'"),
    ("@classLabel true a b\n@data\n1,x,3:a\n", "'x' is not a number"),
])
def test_ts_reader_one_line_errors(tmp_path, text, message):
    with pytest.raises(DataError, match=message) as info:
        read_ts(write(tmp_path, "bad.ts", text))
    assert "\n" not in str(info.value)


def test_reader_names_a_file_that_is_not_utf8(tmp_path):
    path = write(tmp_path, "latin.csv", "1,0.5,\xe9\n", encoding="latin-1")
    with pytest.raises(DataError, match="latin.csv is not UTF-8"):
        read_series_file(path)


def test_ucr_tables_label_first_csv_and_tsv(tmp_path):
    csv_data = read_ucr_table(write(tmp_path, "a_TRAIN.csv", "1.0,0.1,0.2,0.3\n2,1,2,\n\n-1,5,6,7\n"))
    assert csv_data.labels == ["1", "2", "-1"] and csv_data.classes == ["-1", "1", "2"]
    assert [len(s) for s in csv_data.series] == [3, 2, 3]
    tsv_data = read_series_file(write(tmp_path, "a_TEST.tsv", "b\t1\t2\na\t3\t4\n"))
    assert tsv_data.labels == ["b", "a"] and tsv_data.series[1][:, 0].tolist() == [3, 4]
    bare = read_series_file(write(tmp_path, "new.csv", "1,2,3\n"), labelled=False)
    assert bare.labels is None and len(bare.series[0]) == 3
    with pytest.raises(DataError, match="empty file"):
        read_series_file(write(tmp_path, "empty.csv", "\n"))
    with pytest.raises(DataError, match="unknown file type"):
        read_series_file(write(tmp_path, "a.xlsx", "x"))


def test_archive_files_are_pinned_and_published_numbers_cover_them():
    assert set(UCR_FILES) == set(PUBLISHED) and len(UCR_FILES) == 8
    assert all(len(d) == 64 for pair in UCR_FILES.values() for d in pair)


def test_bad_splits_are_one_line_errors(tmp_path):
    one_class = read_ts(write(tmp_path, "one.ts", "@classLabel true a b\n@data\n1,2:a\n2,3:a\n"))
    with pytest.raises(DataError, match="single class"):
        checked_pair(one_class, one_class)
    train = read_ts(write(tmp_path, "tr.ts", "@classLabel true a b c\n@data\n1,2:a\n2,3:b\n1,1:b\n"))
    test = read_ts(write(tmp_path, "te.ts", "@classLabel true a b c\n@data\n1,2:c\n"))
    with pytest.raises(DataError, match="never seen in training"):
        checked_pair(train, test)
    _, y, _ = checked_pair(train, train)
    with pytest.raises(DataError, match="cannot split"):
        validation_split(y, 0.2, seed=0)
    fit, val = validation_split(np.array([0, 0, 0, 1, 1, 1]), 0.2, seed=0)
    assert sorted(np.concatenate([fit, val]).tolist()) == list(range(6)) and len(val) == 2


# ----- inputs and baselines ---------------------------------------------------------------------
def test_normalize_and_paa_by_hand():
    z = normalize([np.array([[1.0], [3.0]]), np.array([[5.0], [5.0]])])
    np.testing.assert_allclose(z[0][:, 0], [-1, 1])
    np.testing.assert_allclose(z[1][:, 0], [0, 0])  # a constant series becomes zeros, not NaN
    scaled = normalize([np.array([[2.0, 10.0]])], "channel", (np.array([1.0, 0.0]), np.array([1.0, 5.0])))
    np.testing.assert_allclose(scaled[0], [[1.0, 2.0]])
    np.testing.assert_allclose(paa([np.arange(5.0)[:, None]], 2)[0][:, 0], [0.5, 2.5, 4.0])


def test_dtw_and_euclidean_baselines_against_hand_computed_distances():
    train = [np.array([[0.0], [1.0], [2.0]]), np.array([[5.0], [5.0], [5.0]])]
    test = [np.array([[0.0], [2.0]])]
    # best warping path of (0,1,2) and (0,2): 0-0, 1-2, 2-2 -> costs 0 + 1 + 0 -> sqrt(1)
    # against (5,5,5): 0-5, 2-5, 2-5 -> 25 + 9 + 9 = 43
    np.testing.assert_allclose(dtw_distances(train, test), [[1.0, math.sqrt(43)]])
    # Euclidean: (0,2) resampled to 3 steps is (0,1,2)
    np.testing.assert_allclose(euclidean_distances(train, test), [[0.0, math.sqrt(25 + 16 + 9)]])
    assert nearest_neighbour(dtw_distances(train, test), ["a", "b"]).tolist() == ["a"]
    # dependent DTW on two channels: one path, squared Euclidean cost of the step vectors
    a = [np.array([[0.0, 0.0], [1.0, 1.0]])]
    b = [np.array([[0.0, 0.0], [1.0, 1.0], [1.0, 2.0]])]
    np.testing.assert_allclose(dtw_distances(a, b), [[1.0]])


@pytest.mark.parametrize("channels", [1, 3])
def test_early_abandoning_dtw_finds_the_same_nearest_neighbours(channels):
    rng = np.random.default_rng(2)
    train = [np.cumsum(rng.normal(size=(int(rng.integers(20, 40)), channels)), axis=0) for _ in range(15)]
    test = [np.cumsum(rng.normal(size=(int(rng.integers(20, 40)), channels)), axis=0) for _ in range(10)]
    full = dtw_distances(train, test)
    pruned = dtw_nearest(train, test, whole_below=0)
    np.testing.assert_allclose(full[np.arange(10), pruned], full.min(axis=1))
    np.testing.assert_array_equal(dtw_nearest(train, test), full.argmin(axis=1))


def test_random_crops_are_windows_of_the_series():
    rng = np.random.default_rng(0)
    series = [np.arange(50.0)[:, None], np.arange(10.0)[:, None]]
    for _ in range(20):
        for crop, s in zip(random_crops(series, rng, 0.8), series):
            assert round(0.8 * len(s)) <= len(crop) <= len(s)
            np.testing.assert_array_equal(np.diff(crop[:, 0]), 1.0)  # consecutive steps
    assert all(np.array_equal(c, s) for c, s in zip(random_crops(series, rng, 1.0), series))


@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_masked_padded_batch_equals_each_series_alone(kind):
    rng = np.random.default_rng(0)
    series = [rng.normal(size=(n, 2)) for n in (13, 5, 21)]
    rnnkit.utils.set_random_seed(0)
    model = build_model(kind, channels=2, num_classes=3, units=6, filters=4, stride=3)
    together = model.predict(list(pad(series)), verbose=0)
    alone = np.concatenate([model.predict(list(pad([s])), verbose=0) for s in series])
    np.testing.assert_allclose(together, alone, atol=1e-5)
    longer = model.predict(list(pad(series, length=30)), verbose=0)  # more padding changes nothing
    np.testing.assert_allclose(longer, alone, atol=1e-5)


def test_a_gru_learns_a_synthetic_two_class_problem():
    rng = np.random.default_rng(0)

    def make(n):
        y = np.arange(n) % 2
        t = np.linspace(0, 1, 16)
        x = [np.sin(2 * np.pi * (1 + 2 * c) * t + rng.uniform(0, 6))[:, None] + 0.2 * rng.normal(size=(16, 1))
             for c in y]
        return normalize(x), y

    (x_train, y_train), (x_test, y_test) = make(48), make(40)
    rnnkit.utils.set_random_seed(0)
    model = build_model("gru", channels=1, num_classes=2, units=8)
    model.compile(optimizer=rnnkit.optimizers.Adam(learning_rate=2e-2), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(list(pad(x_train)), y_train, epochs=12, batch_size=16, verbose=0)
    accuracy = (model.predict(list(pad(x_test)), verbose=0).argmax(1) == y_test).mean()
    assert accuracy >= 0.9


# ----- the command ------------------------------------------------------------------------------
def _toy_files(tmp_path, n_train=12, n_test=8):
    rng = np.random.default_rng(1)

    def lines(n):
        out = []
        for i in range(n):
            c = i % 2
            length = int(rng.integers(10, 16))
            values = np.cumsum(rng.normal(size=length)) + (np.linspace(0, 3, length) if c else 0)
            out.append(",".join(f"{v:.4f}" for v in values) + f":{'rise' if c else 'walk'}")
        return "@problemName Toy\n@classLabel true walk rise\n@data\n" + "\n".join(out) + "\n"

    return write(tmp_path, "Toy_TRAIN.ts", lines(n_train)), write(tmp_path, "Toy_TEST.ts", lines(n_test))


def test_command_trains_reports_and_predicts(tmp_path, capsys):
    train, test = _toy_files(tmp_path)
    out = tmp_path / "run"
    code = cli_main(["tsclassify", "train", "--data", str(train), "--test", str(test), "--model", "gru,conv-gru",
                     "--seeds", "2", "--epochs", "2", "--units", "4", "--filters", "4", "--max-steps", "5",
                     "--threads", "1", "--out", str(out)])
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    result = report["datasets"][0]
    assert set(result["models"]) == {"gru", "conv-gru"} and len(result["models"]["gru"]["runs"]) == 2
    assert result["downsampling"] == 3 and set(result["baselines"]) == {"1NN-ED", "1NN-DTW"}
    assert all((out / f).stat().st_size > 0 for f in ("model.rnnkit", "series.png", "confusion.png"))
    assert all(r["epochs"] == 2 and "val_accuracy" not in r for r in result["models"]["gru"]["runs"])
    assert result["saved_model"] == "gru"  # without validation: the first listed
    assert "1NN-DTW" in capsys.readouterr().out
    assert cli_main(["tsclassify", "predict", "--model-file", str(out / "model.rnnkit"), "--data", str(test)]) == 0
    printed = capsys.readouterr().out
    assert printed.count("\n") == 9 and "accuracy" in printed
    # the saved model is the seeds' ensemble: predict gives the report's ensemble accuracy
    right = sum(line.split("\t")[1] == line.split("(true ")[1].rstrip(")") for line in printed.splitlines()[:-1])
    assert right / 8 == result["models"]["gru"]["ensemble_test_accuracy"]


def test_command_with_a_validation_split_stops_early_and_keeps_the_better_model(tmp_path):
    train, test = _toy_files(tmp_path)
    out = tmp_path / "run"
    assert cli_main(["tsclassify", "train", "--data", str(train), "--test", str(test), "--model", "gru,lstm",
                     "--seeds", "1", "--epochs", "3", "--min-epochs", "0", "--patience", "1", "--validation", "0.25",
                     "--units", "4", "--no-dtw", "--threads", "1", "--out", str(out)]) == 0
    result = json.loads((out / "report.json").read_text())["datasets"][0]
    runs = {k: m["runs"][0] for k, m in result["models"].items()}
    assert all(1 <= r["best_epoch"] <= r["epochs"] <= 3 for r in runs.values())
    best = max(result["models"], key=lambda k: (result["models"][k]["val_accuracy_mean"],
                                                -result["models"][k]["val_loss_mean"]))
    assert result["saved_model"] == best


def test_crop_auto_crops_only_downsampled_series(capsys):
    from rnnkit.apps.tsclassify import crop_share

    assert crop_share("auto", 1) == 1.0 and crop_share("auto", 3) == 0.8 and crop_share(0.5, 1) == 0.5
    assert cli_main(["tsclassify", "train", "--crop", "0"]) == 2  # an argparse usage error
    assert "--crop: expected auto or a share of the steps in (0, 1]" in capsys.readouterr().err


def test_ensemble_is_the_mean_of_its_models_and_saves(tmp_path):
    models = [ts.build_model("conv-gru", 1, 3, units=4, filters=4, stride=2) for _ in range(3)]
    x, present = ts.pad([np.random.default_rng(0).normal(size=(n, 1)) for n in (9, 14)])
    expected = np.mean([m.predict([x, present], verbose=0) for m in models], axis=0)
    together = ts.ensemble(models)
    np.testing.assert_allclose(together.predict([x, present], verbose=0), expected, rtol=1e-6, atol=1e-7)
    together.save(tmp_path / "e.rnnkit")
    loaded = rnnkit.models.load_model(tmp_path / "e.rnnkit")
    np.testing.assert_allclose(loaded.predict([x, present], verbose=0), expected, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("args, message", [
    (["--dataset", "GunPointt"], "Did you mean 'GunPoint'"),
    (["--data", "{train}"], "--data needs --test"),
    (["--data", "{train}", "--test", "{bad}"], "ragged dimensions"),
    (["--data", "{train}", "--test", "{missing}"], "no series file"),
    (["--dataset", "GunPoint", "--validation", "1"], "expected a share in [0, 1)"),
])
def test_command_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys, args, message):
    train, _ = _toy_files(tmp_path)
    bad = write(tmp_path, "bad.ts", "@dimensions 2\n@classLabel true walk rise\n@data\n1,2:3,4:walk\n1,2:rise\n")
    paths = {"train": train, "bad": bad, "missing": tmp_path / "nope.ts"}
    out = tmp_path / "run"
    argv = ["tsclassify", "train", *[a.format(**paths) for a in args], "--out", str(out), "--epochs", "1"]
    assert cli_main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err
    assert not out.exists() or not any(out.iterdir())
