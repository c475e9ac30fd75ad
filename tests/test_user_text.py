"""The user's own texts: folder / CSV / TSV / JSONL readers, their errors, the stratified split,
``--test-data``, long-text windows (``--chunk``) and ``rnnkit classify|sentiment train --data``."""
import json

import numpy as np
import pytest
import torch

from rnnkit.apps import _text_common as common
from rnnkit.cli import main as cli
from rnnkit.datasets import DataError
from rnnkit.datasets import text_corpora
from rnnkit.datasets.user_text import read_labelled_texts, read_text_folder, read_text_table, user_text_splits

torch.set_num_threads(1)


def write_folder(root, files):
    """``files``: {relative path: text or bytes}."""
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return root


ROWS = [("good  fine\nfilm", "pos"), ("bad film", "neg"), ("awful plot", "neg"), ("great cast", "pos"),
        ("good  fine\tfilm", "pos")]  # the last repeats the first up to whitespace


# ----- readers ----------------------------------------------------------------------------------
def test_folder_reader_classes_ids_whitespace_and_duplicates(tmp_path):
    root = write_folder(tmp_path / "d", {
        "pos/1.txt": "good  fine\nfilm", "pos/sub/2.txt": "great cast", "pos/3.txt": "good fine film",
        "neg/1.txt": "\ufeffbad film", "neg/.hidden.txt": "ignored", "neg/notes.md": "ignored",
        "loose.txt": "ignored, not in a class folder", ".git/x.txt": "ignored"})
    data = read_text_folder(root)
    assert data.class_names == ["neg", "pos"]
    assert data.ids == ["neg/1.txt", "pos/1.txt", "pos/sub/2.txt"]
    assert data.texts == ["bad film", "good fine film", "great cast"]  # BOM and whitespace gone
    assert data.labels == ["neg", "pos", "pos"]
    assert data.info["dropped_duplicates"] == 1 and data.info["duplicates_with_another_label"] == 0
    assert data.info["format"] == "folder" and data.info["files"] == 4


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl"])
def test_table_readers_agree(tmp_path, suffix):
    import pandas as pd

    frame = pd.DataFrame({"review": [t for t, _ in ROWS], "stars": [1 if y == "pos" else 0 for _, y in ROWS],
                          "other": range(len(ROWS))})
    path = tmp_path / f"t{suffix}"
    if suffix == ".jsonl":
        frame.to_json(path, orient="records", lines=True)
    else:
        frame.to_csv(path, sep="," if suffix == ".csv" else "\t", index=False)
    data = read_labelled_texts(path, "review", "stars")
    assert data.texts == ["good fine film", "bad film", "awful plot", "great cast"]
    assert data.labels == ["1", "0", "0", "1"] and data.ids == ["row1", "row2", "row3", "row4"]
    assert data.info["dropped_duplicates"] == 1 and data.info["format"] == suffix[1:]


def test_duplicates_with_another_label_are_counted(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("text,label\nsame words,a\nsame words,b\nother,b\n", encoding="utf-8")
    data = read_text_table(path)
    assert data.texts == ["same words", "other"] and data.info["duplicates_with_another_label"] == 1


# ----- bad input --------------------------------------------------------------------------------
@pytest.mark.parametrize("files, message", [
    ({}, "holds no class sub-folders"),
    ({"a.txt": "x", "b.txt": "y"}, "2 .txt files lie directly in it"),
    ({"pos/1.txt": "x", "neg/readme.md": "y"}, "class folder .*neg holds no .txt files"),
    ({"pos/1.txt": "x", "neg/1.txt": b"caf\xe9"}, r"1 file\(s\) are not UTF-8 text: .*neg/1.txt"),
    ({"pos/1.txt": "x", "neg/1.txt": " \n "}, r"hold no text: .*neg/1.txt"),
])
def test_folder_errors(tmp_path, files, message):
    root = write_folder(tmp_path / "d", files)
    root.mkdir(exist_ok=True)
    with pytest.raises(DataError, match=message):
        read_text_folder(root)


def test_table_errors(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("review,label\nfine,a\n", encoding="utf-8")
    with pytest.raises(DataError, match="text column 'text' not found .*Available columns: 'review', 'label'"):
        read_text_table(path)
    with pytest.raises(DataError, match="did you mean 'review'"):
        read_text_table(path, "reviews", "label")
    path.write_text("text,label\nfine,a\n,b\nok,\n", encoding="utf-8")
    with pytest.raises(DataError, match="1 row\\(s\\) have an empty text in column 'text': row 2"):
        read_text_table(path)
    path.write_bytes(b"text,label\ncaf\xe9,a\n")
    with pytest.raises(DataError, match="t.csv is not UTF-8 text .* at byte offset 14"):
        read_text_table(path)
    path.write_text("text,label\n", encoding="utf-8")
    with pytest.raises(DataError, match="but no rows"):
        read_text_table(path)
    with pytest.raises(DataError, match="expected a folder .* or a file ending in .csv, .tsv, .jsonl"):
        read_labelled_texts(write_folder(tmp_path, {"x.txt": "a"}) / "x.txt")
    bad = tmp_path / "b.jsonl"
    bad.write_text('{"text": "a", "label": 1}\nnot json\n', encoding="utf-8")
    with pytest.raises(DataError, match="cannot be read as JSONL"):
        read_text_table(bad)


def _table(path, rows):
    path.write_text("text,label\n" + "".join(f"{t},{y}\n" for t, y in rows), encoding="utf-8")
    return path


def test_split_errors(tmp_path):
    with pytest.raises(DataError, match="single class \\('a'\\)"):
        user_text_splits(_table(tmp_path / "one.csv", [("x", "a"), ("y", "a")]))
    with pytest.raises(DataError, match="class 'b' .* has a single text, so it cannot be split stratified"):
        user_text_splits(_table(tmp_path / "small.csv", [(f"t{i}", "a") for i in range(9)] + [("u", "b")]))
    train = _table(tmp_path / "train.csv", [(f"t{i}", "ab"[i % 2]) for i in range(20)])
    with pytest.raises(DataError, match="label\\(s\\) never seen in .*train.csv: 'c'; the classes there are a, b"):
        user_text_splits(train, _table(tmp_path / "test.csv", [("q", "a"), ("r", "c")]))
    with pytest.raises(DataError, match="leave the validation split empty"):
        user_text_splits(_table(tmp_path / "tiny.csv", [("x", "a"), ("y", "a"), ("z", "b"), ("w", "b")]))


# ----- splits -----------------------------------------------------------------------------------
def test_stratified_split_is_the_built_in_rule_and_test_data_is_kept_whole(tmp_path):
    rows = [(f"text number {i}", "abc"[i % 3]) for i in range(90)]
    path = _table(tmp_path / "t.csv", rows)
    splits = user_text_splits(path, seed=3, val_fraction=0.1, test_fraction=0.2)
    data = read_text_table(path)
    labels = np.array([splits.class_names.index(y) for y in data.labels])
    expected = text_corpora.stratified_split(data.ids, labels, 3, 0.1, 0.2)
    for part, index in zip((splits.train, splits.val, splits.test), expected):
        assert part.ids == [data.ids[i] for i in index]
    assert splits.sizes() == {"train": 63, "val": 9, "test": 18}
    assert np.bincount(splits.test.labels).tolist() == [6, 6, 6]
    assert splits.info["seed"] == 3 and splits.info["classes"] == {"a": 30, "b": 30, "c": 30}

    test = _table(tmp_path / "test.csv", [("text number 0", "a"), ("new words", "c")])
    held = user_text_splits(path, test, seed=3, val_fraction=0.1)
    assert held.test.texts == ["text number 0", "new words"] and held.test.labels.tolist() == [0, 2]
    assert held.sizes() == {"train": 81, "val": 9, "test": 2}
    assert held.info["test_data"]["texts_also_in_data"] == 1


# ----- windows of long texts --------------------------------------------------------------------
def test_chunk_ids_and_pooling():
    ids, owner = common.chunk_ids([[5, 6, 7], [8], [], [1, 2, 3, 4]], 2)
    assert ids.tolist() == [[5, 6], [7, 0], [8, 0], [1, 0], [1, 2], [3, 4]]
    assert owner.tolist() == [0, 0, 1, 2, 3, 3]
    probs = np.array([[0.9, 0.1], [0.3, 0.7], [0.2, 0.8], [0.5, 0.5], [1.0, 0.0], [0.0, 1.0]])
    pooled = common.pool_documents(probs, owner, 4)
    np.testing.assert_allclose(pooled, [[0.6, 0.4], [0.2, 0.8], [0.5, 0.5], [0.5, 0.5]])
    with pytest.raises(ValueError, match="have no window"):
        common.pool_documents(probs, owner, 5)
    ids, owner = common.chunk_ids([list(range(2, 12))], 4)  # 10 ids: 4 + 3 + 3, not 4 + 4 + a tail of 2
    assert ids.tolist() == [[2, 3, 4, 5], [6, 7, 8, 0], [9, 10, 11, 0]] and owner.tolist() == [0, 0, 0]
    ids, _ = common.chunk_ids([list(range(2, 11))], 8)  # 9 ids: 5 + 4, not 8 + a tail of 1
    assert ids.tolist() == [[2, 3, 4, 5, 6, 0, 0, 0], [7, 8, 9, 10, 0, 0, 0, 0]]


# ----- the commands -----------------------------------------------------------------------------
def _synthetic_folder(root, n=40, words=60, seed=0):
    """Two topics told apart by a few words scattered through long texts of shared filler,
    with the telling words only after the first 10 words."""
    rng = np.random.default_rng(seed)
    filler = [f"w{i}" for i in range(30)]
    topic = {"space": ["rocket", "orbit", "moon"], "food": ["bread", "soup", "cheese"]}
    files = {}
    for name, cue in topic.items():
        for i in range(n):
            text = list(rng.choice(filler, size=words))
            for at in rng.choice(np.arange(10, words), size=6, replace=False):
                text[at] = rng.choice(cue)
            files[f"{name}/{i:03d}.txt"] = " ".join(text)
    return write_folder(root, files)


def test_classify_learns_user_folder_with_chunks_then_predicts_its_classes(tmp_path, capsys):
    data = _synthetic_folder(tmp_path / "data")
    out = tmp_path / "run"
    rc = cli(["classify", "train", "--data", str(data), "--model", "gru", "--chunk", "20", "--maxlen", "10",
              "--epochs", "8", "--patience", "8", "--embed-dim", "8", "--units", "8", "--batch-size", "16",
              "--learning-rate", "0.02", "--threads", "1", "--out", str(out), "--verbose", "0"])
    assert rc == 0
    report = json.loads((out / "report.json").read_text())
    assert report["classes"] == ["food", "space"] and report["corpus"] == str(data)
    assert report["data"]["format"] == "folder" and report["split_sizes"] == {"train": 60, "val": 8, "test": 12}
    assert report["chunking"]["windows"] == {"train": 180, "val": 24, "test": 36}
    assert report["truncation"]["texts_truncated_share"] == 1.0  # maxlen 10 alone would see no cue word
    gru = report["models"]["gru"]
    assert gru["test_accuracy"] >= 0.9 and report["baselines"]["bow-logreg"]["test_accuracy"] >= 0.9
    assert report["truncation"]["test_texts_over_maxlen"] == 12  # every text: the accuracy on them is the same
    assert gru["test_accuracy_texts_over_maxlen"] == gru["test_accuracy"]
    assert "test accuracy on the 12 test texts longer than 10 tokens (read whole, in windows): gru" in \
        capsys.readouterr().out
    texts = [" ".join(f"w{i} {'rocket orbit moon'.split()[i % 3]} w{i + 9}" for i in range(10)),  # 30 words
             " ".join(f"w{i} {'bread soup cheese'.split()[i % 3]} w{i + 9}" for i in range(10))]
    assert cli(["classify", "predict", "--model-file", str(out / "model.rnnkit"), *texts]) == 0
    assert [line.split("\t")[0] for line in capsys.readouterr().out.splitlines()] == ["space", "food"]


def test_sentiment_takes_two_labels_and_points_to_classify_for_more(tmp_path, capsys):
    rows = [(f"good nice w{i}", "pos") for i in range(12)] + [(f"bad poor w{i}", "neg") for i in range(12)]
    two = _table(tmp_path / "two.csv", rows)
    out = tmp_path / "run"
    assert cli(["sentiment", "train", "--data", str(two), "--model", "gru", "--ensemble", "1", "--epochs", "1",
                "--embed-dim", "4", "--units", "4", "--no-baseline", "--threads", "1", "--out", str(out),
                "--verbose", "0"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["classes"] == ["neg", "pos"] and report["data"]["format"] == "csv"
    assert report["split_sizes"] == {"train": 20, "val": 2, "test": 2}
    printed = capsys.readouterr().out
    assert f"{two}: 20 train / 2 validation / 2 test texts" in printed and "split for seed 0: per class" in printed
    three = _table(tmp_path / "three.csv", rows + [(f"meh w{i}", "mixed") for i in range(12)])
    assert cli(["sentiment", "train", "--data", str(three), "--out", str(tmp_path / "no")]) == 2
    err = capsys.readouterr().err
    assert "3 labels (mixed, neg, pos); sentiment takes exactly two" in err and "rnnkit classify train --data" in err
    assert len(err.splitlines()) == 1 and not (tmp_path / "no").exists()


@pytest.mark.parametrize("extra, message", [
    (["--text-column", "body"], "--text-column goes with --data"),
    (["--data", "DATA", "--corpus", "bbc-news"], "give --corpus or --data, not both"),
    (["--data", "DATA", "--label-column", "y"], "are for .csv/.tsv/.jsonl files"),
    (["--data", "MISSING"], "no data folder or file at"),
    (["--data", "DATA", "--test-data", "TEST"], "never seen in"),
])
def test_classify_data_usage_errors_write_nothing(tmp_path, capsys, extra, message):
    data = write_folder(tmp_path / "data", {"a/1.txt": "x y", "a/2.txt": "y z", "b/1.txt": "p q", "b/2.txt": "q r"})
    test = write_folder(tmp_path / "test", {"a/1.txt": "x", "c/1.txt": "new"})
    paths = {"DATA": str(data), "TEST": str(test), "MISSING": str(tmp_path / "missing")}
    out = tmp_path / "out"
    assert cli(["classify", "train", *[paths.get(a, a) for a in extra], "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.splitlines()) == 1
    assert not out.exists()
