"""Rotten Tomatoes loader and ``rnnkit sentiment`` end to end on a slice of the real data."""
import json

import numpy as np
import pytest
import torch

from rnnkit.apps import _text_common as common
from rnnkit.cli import main as cli
from rnnkit.datasets import DownloadError
from rnnkit.datasets.text_corpora import rotten_tomatoes, stratified_split

torch.set_num_threads(1)




@pytest.fixture(scope="module")
def rt():
    try:
        return rotten_tomatoes()
    except DownloadError as exc:  # no cache and no package index: nothing to test on
        pytest.skip(str(exc))


def test_loader_counts_and_labels(rt):
    assert rt.class_names == ["rotten", "fresh"]
    assert rt.info["dropped_plot_rows"] == 1097
    assert rt.info["reviews"] == 12752 == sum(rt.sizes().values())
    assert rt.sizes() == {"train": 10202, "val": 1275, "test": 1275}
    labels = np.concatenate([rt.train.labels, rt.val.labels, rt.test.labels])
    assert int((labels == 1).sum()) == 7368 and int((labels == 0).sum()) == 5384
    assert all(t.strip() for t in rt.train.texts)


def test_split_is_deterministic_disjoint_and_stratified(rt):
    again = rotten_tomatoes(seed=0)
    assert again.test.ids == rt.test.ids and again.val.ids == rt.val.ids
    ids = [set(s.ids) for s in (rt.train, rt.val, rt.test)]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
    assert not set(rt.train.texts) & set(rt.test.texts)  # duplicates were removed first
    other = rotten_tomatoes(seed=1)
    assert other.test.ids != rt.test.ids
    for part in (rt.val, rt.test):
        assert abs(part.labels.mean() - rt.train.labels.mean()) < 0.01


def test_stratified_split_hand_case():
    ids = [f"i{k}" for k in range(10)]
    labels = [0] * 6 + [1] * 4
    train, val, test = stratified_split(ids, labels, seed=3, val_fraction=0.25, test_fraction=0.25)
    assert sorted(np.concatenate([train, val, test]).tolist()) == list(range(10))
    assert [len(train), len(val), len(test)] == [5, 3, 2] or [len(train), len(val), len(test)] == [4, 3, 3]
    again = stratified_split(ids, labels, seed=3, val_fraction=0.25, test_fraction=0.25)
    assert all(np.array_equal(a, b) for a, b in zip((train, val, test), again))


def test_train_end_to_end_then_predict_raw_strings(tmp_path, capsys):
    out = tmp_path / "run"
    rc = cli(["sentiment", "train", "--model", "gru,bilstm", "--limit", "300", "--epochs", "1",
              "--embed-dim", "8", "--units", "8", "--max-tokens", "3000", "--ensemble", "1", "--out", str(out),
              "--verbose", "0"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "bow-logreg (baseline)" in printed and "ngram-tfidf-logreg (reference)" in printed
    assert "majority class" in printed
    report = json.loads((out / "report.json").read_text())
    assert report["task"] == "sentiment"
    assert report["split_sizes"] == {"train": 300, "val": 300, "test": 300}
    assert report["corpus_split_sizes"] == {"train": 10202, "val": 1275, "test": 1275}
    assert set(report["models"]) == {"gru", "bilstm"}
    for entry in report["models"].values():
        assert 0 <= entry["test_accuracy"] <= 1 and entry["train_seconds"] > 0
        assert (out / entry["model_file"]).is_file()
    assert 0 <= report["baseline"]["test_accuracy"] <= 1
    assert report["baseline"] == report["baselines"]["bow-logreg"]
    assert set(report["comparisons"]) == {"bow-logreg", "ngram-tfidf-logreg"}
    assert report["best_model"]["name"] in ("gru", "bilstm")
    assert (out / "model.rnnkit").is_file() and (out / "history.png").is_file()

    model, vectorizer, metadata = common.load_task_model(out / "model.rnnkit", "sentiment")
    assert metadata["labels"] == ["rotten", "fresh"]
    texts = ["a tedious, overlong film", "A masterpiece of wit and warmth."]
    rc = cli(["sentiment", "predict", "--model-file", str(out / "model.rnnkit"), *texts])
    assert rc == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2
    expected = common.class_probabilities(model, common.encode(vectorizer, texts), 2)
    for line, text, p in zip(lines, texts, expected):
        label, prob, shown = line.split("\t")
        assert shown == text
        assert label == ["rotten", "fresh"][int(p.argmax())]
        assert float(prob) == pytest.approx(p.max(), abs=1e-3)


def test_predict_reads_a_file(tmp_path, capsys, trained_sentiment):
    texts = tmp_path / "reviews.txt"
    texts.write_text("dull\n\nwonderful acting\n", encoding="utf-8")
    assert cli(["sentiment", "predict", "--model-file", str(trained_sentiment), "--file", str(texts)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split("\t")[-1] for line in lines] == ["dull", "wonderful acting"]


@pytest.fixture(scope="module")
def trained_sentiment(tmp_path_factory):
    out = tmp_path_factory.mktemp("sentiment")
    rc = cli(["sentiment", "train", "--model", "lstm", "--limit", "200", "--epochs", "1", "--embed-dim", "4",
              "--units", "4", "--ensemble", "1", "--no-baseline", "--out", str(out), "--verbose", "0"])
    assert rc == 0
    return out / "model.rnnkit"


def test_bad_input_gets_one_line_errors(tmp_path, capsys, trained_sentiment):
    assert cli(["sentiment", "train", "--model", "lstn", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "unknown model 'lstn'" in err and "Did you mean 'lstm'?" in err and len(err.strip().splitlines()) == 1
    assert cli(["sentiment", "predict", "--model-file", str(trained_sentiment), "   "]) == 2
    assert "empty" in capsys.readouterr().err
    assert cli(["sentiment", "predict", "--model-file", str(tmp_path / "missing.rnnkit"), "x"]) == 2
    assert "no model file" in capsys.readouterr().err
    not_a_model = tmp_path / "junk.rnnkit"
    not_a_model.write_bytes(b"not a zip")
    assert cli(["sentiment", "predict", "--model-file", str(not_a_model), "x"]) == 2
    capsys.readouterr()


def test_wrong_task_model_file_is_refused(tmp_path, capsys, trained_sentiment):
    import rnnkit

    model = rnnkit.load_model(trained_sentiment)
    model.metadata = {**model.metadata, "task": "classify"}
    other = tmp_path / "classify.rnnkit"
    model.save(other)
    assert cli(["sentiment", "predict", "--model-file", str(other), "fine"]) == 2
    err = capsys.readouterr().err
    assert "'classify' model, not a 'sentiment' model" in err
    model.metadata = {}
    model.save(other)
    assert cli(["sentiment", "predict", "--model-file", str(other), "fine"]) == 2
    assert "a model without a task" in capsys.readouterr().err


def test_baselines_features_by_hand():
    """bow-logreg counts words; ngram-tfidf-logreg adds word pairs (hand-counted vocabulary sizes)."""
    from types import SimpleNamespace

    from rnnkit.text import TextVectorizer

    texts = ["good film", "bad film", "good good plot", "bad plot"]
    split = SimpleNamespace(texts=texts, labels=np.array([1, 0, 1, 0]))
    vectorizer = TextVectorizer()
    bow, probs = common.bow_baseline(vectorizer, split, split, split, name="bow-logreg")
    assert bow["features"] == 4  # good, film, bad, plot
    assert probs.shape == (4, 2) and bow["val_accuracy"] == 1.0
    ngram, _ = common.bow_baseline(vectorizer, split, split, split, name="ngram-tfidf-logreg")
    assert ngram["features"] == 4 + 5  # + "good film", "bad film", "good good", "good plot", "bad plot"
    with pytest.raises(ValueError, match="unknown baseline"):
        common.bow_baseline(vectorizer, split, split, split, name="svm")
