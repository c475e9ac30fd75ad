"""Forecast data that used to crash or pass silently: mixed UTC offsets, a constant target, a column
named twice: each gets one clear line (or, for offsets, is read correctly in UTC)."""
import datetime

import numpy as np

from rnnkit.cli import main

N = 600


def _write(path, header, rows):
    path.write_text("\n".join([header] + rows) + "\n")
    return str(path)


def _stamp(i, offset_hours=0):
    local = datetime.datetime(2020, 3, 1) + datetime.timedelta(hours=i + offset_hours)
    return local.strftime("%Y-%m-%dT%H:%M:%S") + f"+{offset_hours:02d}:00"


def test_mixed_utc_offsets_are_read_in_utc(tmp_path, capsys):
    # daylight saving: the same instants written with +01:00, then +02:00
    rows = [f"{_stamp(i, 1 if i < N // 2 else 2)},{10 + np.sin(i / 10):.3f},{50 + i % 7}" for i in range(N)]
    data = _write(tmp_path / "dst.csv", "time,temp,hum", rows)
    assert main(["forecast", "--data", data, "--target", "temp", "--quick", "--model", "gru",
                 "--out", str(tmp_path / "out"), "--verbose", "0"]) == 0


def test_a_constant_target_is_refused(tmp_path, capsys):
    rows = [f"{_stamp(i)},5.0,{50 + i % 7}" for i in range(N)]
    data = _write(tmp_path / "const.csv", "time,temp,hum", rows)
    assert main(["forecast", "--data", data, "--target", "temp", "--quick", "--out", str(tmp_path / "o")]) == 2
    assert "is constant (5)" in capsys.readouterr().err


def test_a_column_named_twice_is_refused(tmp_path, capsys):
    rows = [f"{_stamp(i)},{i % 5},{i % 3},{50 + i % 7}" for i in range(N)]
    data = _write(tmp_path / "dup.csv", "time,temp,temp,hum", rows)
    assert main(["forecast", "--data", data, "--target", "temp", "--quick", "--out", str(tmp_path / "o")]) == 2
    assert "names the column 'temp' 2 times" in capsys.readouterr().err
