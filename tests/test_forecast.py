"""rnnkit forecast: the CLI end to end, baselines checked by hand, and every bad input's error."""
import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

import rnnkit
from rnnkit.apps.forecast import data as D
from rnnkit.apps.forecast import models as M
from rnnkit.cli import main

PNGS = ("training_curves.png", "forecast_week.png", "error_histogram.png")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def run_cli(capsys, *argv):
    """main(argv) in-process; returns (exit status, stdout, stderr)."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_clean_error(code, err, *fragments):
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("rnnkit forecast: error: ")
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def hourly_frame(rows=1200, seed=0, start="2021-03-01"):
    """A synthetic hourly series: a daily cycle, a slow drift, noise; and a humidity column."""
    rng = np.random.default_rng(seed)
    hours = np.arange(rows)
    temp = 10 + 6 * np.sin(2 * np.pi * hours / 24) + np.cumsum(rng.normal(0, 0.3, rows)) + rng.normal(0, 1, rows)
    return pd.DataFrame({
        "time": pd.date_range(start, periods=rows, freq="h").strftime("%Y-%m-%d %H:%M:%S"),
        "temp": np.round(temp, 3),
        "humidity": np.round(60 + 20 * rng.random(rows), 3),
    })


# ----- end to end on the built-in JFK data -------------------------------------------------------
@pytest.fixture(scope="module")
def jfk():
    try:
        return rnnkit.datasets.nyc_weather("JFK")
    except Exception as exc:  # no cached copy and no registry access
        pytest.skip(f"JFK weather not available: {exc}")


@pytest.fixture(scope="module")
def quick_run(jfk, tmp_path_factory):
    out = tmp_path_factory.mktemp("quick")
    torch.set_num_threads(1)
    code = main(["forecast", "--quick", "--out", str(out), "--model", "gru", "--seed", "3", "--verbose", "0"])
    assert code == 0
    return out, json.loads((out / "report.json").read_text())


def test_quick_run_report_table(quick_run):
    out, report = quick_run
    assert report["task"] == "forecast"
    names = [row["name"] for row in report["results"]]
    assert names == ["persistence", "seasonal persistence (24h)", "dense", "gru"]
    for row in report["results"]:
        assert math.isfinite(row["val_mae"]) and math.isfinite(row["test_mae"])
        assert 0 < row["test_mae"] < 40, row  # degrees Fahrenheit
    trained = [row for row in report["results"] if row["epochs"] is not None]
    assert [row["name"] for row in trained] == ["dense", "gru"]
    assert all(row["epochs"] == 1 and row["train_seconds"] >= 0 for row in trained)
    # At 24 h ahead, the value 24 h before the target is the last observed one.
    assert report["results"][0]["test_mae"] == report["results"][1]["test_mae"]
    assert report["best_model"] == "gru"
    assert report["unit"] == "°F"
    assert report["data"]["split"]["train"]["windows"] > report["data"]["split"]["val"]["windows"] > 0
    assert report["protocol"]["sequence_length"] == 48 and report["protocol"]["sampling_rate"] == 1
    assert report["protocol"]["horizon"] == "24h" and report["protocol"]["delay_rows"] == 47 + 24
    assert any("wind_gust" in action for action in report["cleaning"])
    assert {"wind_x", "wind_y", "day_sin", "day_cos", "year_sin", "year_cos"} <= set(report["data"]["features"])
    for name in PNGS:
        data = (out / name).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 5000
    assert (out / "checkpoints" / "gru.rnnkit").is_file()


def test_saved_model_reloads_and_predict_reproduces_test_mae(quick_run, jfk, tmp_path, capsys):
    out, report = quick_run
    model = rnnkit.load_model(out / "model.rnnkit")
    meta = model.metadata
    assert meta["task"] == "forecast" and meta["model"] == "gru" and meta["target"] == "temp"
    assert len(meta["feature_mean"]) == len(meta["features"]) == model.layers[0].kernel.shape[0]

    # The quick run used the first 2400 rows; forecasts for exactly its test windows from
    # `forecast predict` on those rows must give the report's test MAE.
    csv = tmp_path / "jfk_first.csv"
    jfk.iloc[:2400].to_csv(csv, index=False)
    output = tmp_path / "forecasts.csv"
    code, stdout, err = run_cli(capsys, "forecast", "predict", "--model-file", str(out / "model.rnnkit"),
                                "--data", str(csv), "--output", str(output))
    assert code == 0, err
    assert "forecasts of 'temp' 24h ahead" in stdout
    table = pd.read_csv(output)
    assert len(table) > 2000 and np.isfinite(table["forecast temp"]).all()
    issued = pd.to_datetime(table["issued_at"])
    split = report["data"]["split"]["test"]
    first = pd.Timestamp(split["start"]) + pd.Timedelta(hours=47)
    last = pd.Timestamp(report["data"]["end"]) - pd.Timedelta(hours=report["protocol"]["delay_rows"])
    chosen = table[(issued >= first) & (issued <= last)]
    assert len(chosen) == split["windows"]
    mae = (chosen["forecast temp"] - chosen["actual temp"]).abs().mean()
    assert mae == pytest.approx(report["results"][-1]["test_mae"], abs=1e-3)
    persistence = (chosen["persistence temp"] - chosen["actual temp"]).abs().mean()
    assert persistence == pytest.approx(report["results"][0]["test_mae"], abs=1e-9)


# ----- baselines by hand on a synthetic series ----------------------------------------------------
def test_baselines_match_hand_computation(tmp_path, capsys):
    frame = hourly_frame(1000)
    csv = tmp_path / "series.csv"
    frame.to_csv(csv, index=False)
    out = tmp_path / "run"
    code, stdout, err = run_cli(capsys, "forecast", "--data", str(csv), "--target", "temp", "--horizon", "6h",
                                "--sequence-length", "30", "--epochs", "1", "--model", "gru",
                                "--out", str(out), "--verbose", "0")
    assert code == 0, err
    report = json.loads((out / "report.json").read_text())

    y = frame["temp"].to_numpy()
    n, length, horizon = len(y), 30, 6
    delay = length - 1 + horizon
    n_train, n_val = n // 2, n // 4

    def windows(first, last_start):
        starts = np.arange(first, last_start + 1)
        return y[starts + delay], y[starts + length - 1], y[starts + delay - 24]

    parts = {"val": windows(n_train, n_train + n_val - length),
             "test": windows(n_train + n_val, n - delay - length)}
    rows = {row["name"]: row for row in report["results"]}
    for part, (target, last, day_before) in parts.items():
        assert report["data"]["split"][part]["windows"] == len(target)
        assert rows["persistence"][f"{part}_mae"] == pytest.approx(np.mean(np.abs(last - target)), rel=1e-12)
        assert rows["seasonal persistence (24h)"][f"{part}_mae"] == pytest.approx(
            np.mean(np.abs(day_before - target)), rel=1e-12)
    # The table printed at the end holds the same numbers.
    assert f"{rows['persistence']['test_mae']:.3f}" in stdout
    assert rows["gru"]["improvement_pct"] == pytest.approx(
        100 * (rows["persistence"]["test_mae"] - rows["gru"]["test_mae"]) / rows["persistence"]["test_mae"], abs=0.01)


def test_window_ranges_skip_gaps():
    protocol = D.Protocol.from_durations(pd.Timedelta(hours=1), sequence_length=4, horizon=pd.Timedelta(hours=2))
    assert (protocol.span, protocol.delay, protocol.seasonal_lag) == (4, 5, None)
    # rows 0..39 with a gap between rows 19 and 20; the train part is rows 0..19
    ranges = D.window_ranges((0, 20), [(0, 20), (20, 40)], protocol, 40)
    assert ranges == [(0, 14)]  # the target of the window at 14 is row 19, the segment's last
    assert D.window_ranges((20, 40), [(0, 20), (20, 40)], protocol, 40) == [(20, 31)]  # inputs in rows < 40 - delay
    jena = D.Protocol.from_durations(pd.Timedelta(minutes=10))
    assert (jena.sampling_rate, jena.sequence_length, jena.delay) == (6, 120, 6 * (120 + 24 - 1))


def test_models_by_name_build_and_run():
    x = torch.randn(2, 48, 5)
    for name in [*M.MODELS, "dense"]:
        model = M.build(name, (48, 5))
        assert tuple(model(x).shape) == (2, 1), name
    assert M.resolve_names(["all"]) == list(M.MODELS)
    assert M.resolve_names(["gru,lstm", "gru"]) == ["gru", "lstm"]


# ----- bad input: one clear line, exit status 2 ---------------------------------------------------
@pytest.fixture
def good_csv(tmp_path):
    path = tmp_path / "good.csv"
    hourly_frame(1200).to_csv(path, index=False)
    return path


def _write(tmp_path, name, frame):
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return str(path)


def test_missing_target_column_suggests_the_closest(good_csv, tmp_path, capsys):
    code, _, err = run_cli(capsys, "forecast", "--data", str(good_csv), "--target", "tmep", "--out", str(tmp_path))
    assert_clean_error(code, err, "Target column 'tmep' not found", "did you mean 'temp'?")


def test_non_numeric_columns(tmp_path, capsys):
    frame = hourly_frame(1200)
    frame["station"] = "JFK"
    path = _write(tmp_path, "text.csv", frame)
    code, _, err = run_cli(capsys, "forecast", "--data", path, "--target", "temp", "--out", str(tmp_path))
    assert_clean_error(code, err, "Non-numeric", "'station'")
    frame = hourly_frame(1200)
    frame["temp"] = frame["temp"].astype(str)
    frame.loc[7, "temp"] = "--"
    path = _write(tmp_path, "junk.csv", frame)
    code, _, err = run_cli(capsys, "forecast", "--data", path, "--target", "temp", "--out", str(tmp_path))
    assert_clean_error(code, err, "'temp'", "not numeric")


def test_timestamps_out_of_order_or_duplicated(tmp_path, capsys):
    frame = hourly_frame(1200)
    swapped = frame.copy()
    swapped.loc[[10, 11], "time"] = swapped.loc[[11, 10], "time"].to_numpy()
    path = _write(tmp_path, "order.csv", swapped)
    code, _, err = run_cli(capsys, "forecast", "--data", path, "--target", "temp", "--out", str(tmp_path))
    assert_clean_error(code, err, "out of order", "row 11")
    repeated = frame.copy()
    repeated.loc[11, "time"] = repeated.loc[10, "time"]
    path = _write(tmp_path, "dup.csv", repeated)
    code, _, err = run_cli(capsys, "forecast", "--data", path, "--target", "temp", "--out", str(tmp_path))
    assert_clean_error(code, err, "duplicated", "rows 10 and 11")


def test_file_shorter_than_one_window(tmp_path, capsys):
    path = _write(tmp_path, "short.csv", hourly_frame(100))
    code, _, err = run_cli(capsys, "forecast", "--data", path, "--target", "temp", "--out", str(tmp_path))
    assert_clean_error(code, err, "100 rows", "fewer than the 144 needed for one window")
    path = _write(tmp_path, "short2.csv", hourly_frame(400))
    code, _, err = run_cli(capsys, "forecast", "--data", path, "--target", "temp", "--out", str(tmp_path))
    assert_clean_error(code, err, "too few for the 50/25/25 split", "1047 consecutive rows")


def test_empty_files(tmp_path, capsys):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    code, _, err = run_cli(capsys, "forecast", "--data", str(empty), "--target", "temp", "--out", str(tmp_path))
    assert_clean_error(code, err, "empty.csv is empty")
    header = tmp_path / "header.csv"
    header.write_text("time,temp,humidity\n")
    code, _, err = run_cli(capsys, "forecast", "--data", str(header), "--target", "temp", "--out", str(tmp_path))
    assert_clean_error(code, err, "header.csv is empty", "no rows")
    code, _, err = run_cli(capsys, "forecast", "--data", str(tmp_path / "nope.csv"), "--out", str(tmp_path))
    assert_clean_error(code, err, "No such file")


def test_unknown_model_and_bad_options(good_csv, tmp_path, capsys):
    code, _, err = run_cli(capsys, "forecast", "--data", str(good_csv), "--model", "gur", "--out", str(tmp_path))
    assert_clean_error(code, err, "Unknown model 'gur'", "did you mean 'gru'?")
    code, _, err = run_cli(capsys, "forecast", "--data", str(good_csv), "--horizon", "24", "--out", str(tmp_path))
    assert_clean_error(code, err, "--horizon '24' needs a unit")
    code, _, err = run_cli(capsys, "forecast", "--data", str(good_csv), "--horizon", "90min", "--out", str(tmp_path))
    assert_clean_error(code, err, "not a whole number of the data's time steps (1h)")
    code, _, err = run_cli(capsys, "forecast", "--bogus")
    assert code == 2 and "unrecognized arguments" in err


def test_time_column_detection(tmp_path, capsys):
    frame = hourly_frame(1200).rename(columns={"time": "when"})
    frame["also"] = frame["when"]
    path = _write(tmp_path, "two.csv", frame)
    code, _, err = run_cli(capsys, "forecast", "--data", path, "--target", "temp", "--out", str(tmp_path))
    assert_clean_error(code, err, "Several columns", "--time-column")
    path = _write(tmp_path, "none.csv", hourly_frame(1200).drop(columns=["time"]))
    code, _, err = run_cli(capsys, "forecast", "--data", path, "--target", "temp", "--out", str(tmp_path))
    assert_clean_error(code, err, "No time column found")
    # Day-first dotted dates (the Jena format) are read day-first even when no day exceeds 12.
    times = pd.Series(["01.02.2009 00:10:00", "02.02.2009 00:10:00"])
    assert list(D.parse_times(times, "Date Time", "x").dt.day) == [1, 2]


def test_predict_bad_inputs(quick_run, tmp_path, capsys, jfk):
    out, _ = quick_run
    model_file = str(out / "model.rnnkit")
    lacking = _write(tmp_path, "lacking.csv", jfk.iloc[:400].drop(columns=["pressure"]))
    code, _, err = run_cli(capsys, "forecast", "predict", "--model-file", model_file, "--data", lacking)
    assert_clean_error(code, err, "Feature column 'pressure' not found")
    short = _write(tmp_path, "short.csv", jfk.iloc[:30])
    code, _, err = run_cli(capsys, "forecast", "predict", "--model-file", model_file, "--data", short)
    assert_clean_error(code, err, "30 rows", "fewer than the 48")

    other = rnnkit.Sequential([rnnkit.Input(shape=(4, 2)), rnnkit.layers.Dense(1)])
    other.metadata = {"task": "sentiment"}
    other.save(tmp_path / "other.rnnkit")
    code, _, err = run_cli(capsys, "forecast", "predict", "--model-file", str(tmp_path / "other.rnnkit"),
                           "--data", short)
    assert_clean_error(code, err, "'sentiment' model, not a forecast model")
    broken = tmp_path / "broken.rnnkit"
    broken.write_bytes((out / "model.rnnkit").read_bytes()[:500])
    code, _, err = run_cli(capsys, "forecast", "predict", "--model-file", str(broken), "--data", short)
    assert_clean_error(code, err, "broken.rnnkit")
    code, _, err = run_cli(capsys, "forecast", "predict", "--model-file", str(tmp_path / "none.rnnkit"))
    assert_clean_error(code, err, "No model file")


def test_cli_dispatcher(capsys):
    assert main([]) == 2
    assert "forecast" in capsys.readouterr().err
    assert main(["--version"]) == 0
    assert rnnkit.__version__ in capsys.readouterr().out
    assert main(["forecast", "--help"]) == 0
    assert "--horizon" in capsys.readouterr().out
