"""Keras's data and preprocessing surface: module paths, text_dataset_from_directory, get_file,
pad_sequences, initializers, constraints and regularizers."""
import hashlib
import tarfile
import zipfile

import numpy as np
import pytest
import torch

import rnnkit
from rnnkit import constraints, initializers, regularizers
from rnnkit.datasets import DownloadError
from rnnkit.utils import get_file, text_dataset_from_directory


# ----- one implementation under Keras's paths ---------------------------------------------------------
def test_keras_module_paths_are_aliases_of_one_implementation():
    from rnnkit.utils.sequences import pad_sequences
    from rnnkit.utils.text_dataset import text_dataset_from_directory as text_impl
    from rnnkit.utils.timeseries import timeseries_dataset_from_array as series_impl

    assert rnnkit.preprocessing.timeseries_dataset_from_array is rnnkit.utils.timeseries_dataset_from_array \
        is series_impl
    assert rnnkit.preprocessing.text_dataset_from_directory is rnnkit.utils.text_dataset_from_directory is text_impl
    assert rnnkit.preprocessing.sequence.pad_sequences is rnnkit.utils.pad_sequences is pad_sequences
    assert rnnkit.utils.set_random_seed is rnnkit.random.set_random_seed
    assert rnnkit.backend.clear_session is rnnkit.utils.clear_session
    assert rnnkit.layers.TextVectorization is rnnkit.layers.text_vectorization.TextVectorization
    for name in ("to_categorical", "get_file"):
        assert callable(getattr(rnnkit.utils, name))
    assert initializers.glorot_uniform is initializers.GlorotUniform
    assert constraints.max_norm is constraints.MaxNorm and regularizers.l1_l2 is regularizers.L1L2


# ----- text_dataset_from_directory ----------------------------------------------------------------------
TEXTS = {"neg": {"a.txt": "awful", "b.txt": "bad", "sub/c.txt": "crude"},
         "pos": {"d.txt": "delightful", "e.txt": "excellent"},
         "zzz": {"f.txt": "fine", "g.txt": "good", "h.txt": "happy"}}


@pytest.fixture
def corpus(tmp_path):
    for label, files in TEXTS.items():
        for name, text in files.items():
            path = tmp_path / label / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    (tmp_path / "pos" / "notes.md").write_text("ignored")
    (tmp_path / ".hidden").mkdir()
    return tmp_path


def read(ds):
    texts, labels = [], []
    for x, y in ds:
        texts += x.tolist()
        labels += y.tolist()
    return texts, labels


def test_classes_from_sorted_subfolders_and_unshuffled_order(corpus, capsys):
    ds = text_dataset_from_directory(corpus, batch_size=3, shuffle=False)
    assert "Found 8 files belonging to 3 classes." in capsys.readouterr().out
    assert ds.class_names == ["neg", "pos", "zzz"]
    texts, labels = read(ds)
    assert texts == ["awful", "bad", "crude", "delightful", "excellent", "fine", "good", "happy"]
    assert labels == [0, 0, 0, 1, 1, 2, 2, 2]
    x, y = next(iter(ds))
    assert x.dtype.kind == "U" and y.dtype == np.int32 and len(ds) == 3


def test_label_modes(corpus):
    cat = text_dataset_from_directory(corpus, label_mode="categorical", shuffle=False, verbose=False)
    _, y = next(iter(cat))
    assert y.dtype == np.float32 and y[:4].tolist() == [[1, 0, 0]] * 3 + [[0, 1, 0]]
    binary = text_dataset_from_directory(corpus, label_mode="binary", class_names=["pos", "neg"],
                                         shuffle=False, verbose=False)
    texts, labels = read(binary)
    assert texts[:2] == ["delightful", "excellent"] and labels == [[0.0]] * 2 + [[1.0]] * 3
    texts_only = text_dataset_from_directory(corpus, label_mode=None, shuffle=False, batch_size=None,
                                             verbose=False)
    assert [str(t) for t in texts_only][:2] == ["awful", "bad"]
    with pytest.raises(ValueError, match="exactly 2"):
        text_dataset_from_directory(corpus, label_mode="binary", verbose=False)
    with pytest.raises(ValueError, match="class_names"):
        text_dataset_from_directory(corpus, class_names=["pos", "nope"], verbose=False)


def test_explicit_labels_and_no_labels(corpus):
    ds = text_dataset_from_directory(corpus, labels=[5, 5, 5, 6, 6, 7, 7, 7], shuffle=False, verbose=False)
    assert ds.class_names == ["5", "6", "7"] and read(ds)[1] == [5, 5, 5, 6, 6, 7, 7, 7]
    with pytest.raises(ValueError, match="lengths of `labels`"):
        text_dataset_from_directory(corpus, labels=[0, 1], verbose=False)
    plain = text_dataset_from_directory(corpus, labels=None, shuffle=False, verbose=False)
    assert sorted(next(iter(plain)).tolist()) == sorted(t for files in TEXTS.values() for t in files.values())


def test_shuffle_keeps_labels_with_texts_and_repeats_for_the_seed(corpus):
    label_of = {t: i for i, files in enumerate(TEXTS.values()) for t in files.values()}
    a = text_dataset_from_directory(corpus, batch_size=2, seed=7, verbose=False)
    texts, labels = read(a)
    assert sorted(texts) == sorted(label_of) and all(label_of[t] == y for t, y in zip(texts, labels))
    assert read(text_dataset_from_directory(corpus, batch_size=2, seed=7, verbose=False)) == (texts, labels)


def test_validation_split_is_the_same_partition_for_both_subsets(corpus, capsys):
    train, val = text_dataset_from_directory(corpus, validation_split=0.25, subset="both", seed=3, batch_size=4)
    out = capsys.readouterr().out
    assert "Using 6 files for training." in out and "Using 2 files for validation." in out
    train_texts, val_texts = read(train)[0], read(val)[0]
    assert len(train_texts) == 6 and len(val_texts) == 2 and not set(train_texts) & set(val_texts)
    # Keras's split: the last 25 % of the paths shuffled by RandomState(seed)
    paths = [str(corpus / label / name) for label in TEXTS for name in sorted(TEXTS[label], key=lambda n: (
        "/" in n, n))]
    np.random.RandomState(3).shuffle(paths)
    expected_val = {open(p, encoding="utf-8").read() for p in paths[-2:]}
    assert set(val_texts) == expected_val
    only_val = text_dataset_from_directory(corpus, validation_split=0.25, subset="validation", seed=3,
                                           verbose=False)
    assert sorted(read(only_val)[0]) == sorted(val_texts)     # shuffled on its own, unlike with "both"
    only_train = text_dataset_from_directory(corpus, validation_split=0.25, subset="training", seed=3,
                                             verbose=False)
    assert sorted(read(only_train)[0]) == sorted(train_texts)
    assert train.class_names == val.class_names == ["neg", "pos", "zzz"]


@pytest.mark.parametrize("kwargs, message", [
    (dict(validation_split=0.2), "subset"),
    (dict(validation_split=0.2, subset="training"), "seed"),
    (dict(validation_split=1.5, subset="training", seed=1), "between 0 and 1"),
    (dict(validation_split=0.2, subset="test", seed=1), "subset"),
    (dict(label_mode="sparse"), "label_mode"),
    (dict(labels="folders"), "labels"),
])
def test_argument_errors(corpus, kwargs, message):
    with pytest.raises(ValueError, match=message):
        text_dataset_from_directory(corpus, verbose=False, **kwargs)


def test_max_length_cuts_utf8_bytes_and_non_utf8_files_are_named(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.txt").write_text("héllo wörld", encoding="utf-8")
    ds = text_dataset_from_directory(tmp_path, max_length=3, shuffle=False, verbose=False)
    assert read(ds)[0] == ["h\u00e9"]                     # 'h' + the 2 bytes of 'é'
    ds = text_dataset_from_directory(tmp_path, max_length=2, shuffle=False, verbose=False)
    assert read(ds)[0] == ["h"]                           # 'é' cut in two is dropped
    (tmp_path / "a" / "y.txt").write_bytes(b"caf\xe9 latin-1")
    with pytest.raises(ValueError, match=r"y\.txt is not UTF-8"):
        read(text_dataset_from_directory(tmp_path, shuffle=False, verbose=False))
    with pytest.raises(ValueError, match="No text files"):
        text_dataset_from_directory(tmp_path / "a", verbose=False)


def test_text_dataset_feeds_text_vectorization(corpus):
    ds = text_dataset_from_directory(corpus, batch_size=4, shuffle=False, verbose=False)
    vectorize = rnnkit.layers.TextVectorization(output_sequence_length=2)
    vectorize.adapt(ds.map(lambda x, y: x))
    assert vectorize.vocabulary_size() == 10
    x, y = next(iter(ds.map(lambda x, y: (vectorize(x), y))))
    assert isinstance(x, np.ndarray) and x.shape == (4, 2) and x.dtype == np.int64


# ----- get_file -----------------------------------------------------------------------------------------
def test_get_file_from_a_local_path_and_file_url_caches_once(tmp_path, capsys):
    source = tmp_path / "data.csv"
    source.write_text("a,b\n1,2\n")
    sha = hashlib.sha256(source.read_bytes()).hexdigest()
    cache = tmp_path / "cache"
    path = get_file(origin=str(source), cache_dir=cache, file_hash=sha)
    assert path == str(cache / "datasets" / "data.csv") and open(path).read() == "a,b\n1,2\n"
    assert "Downloading data from" in capsys.readouterr().out
    source.write_text("changed")                            # the cached copy is used from now on
    assert get_file("data.csv", origin=source.as_uri(), cache_dir=cache) == path
    assert capsys.readouterr().out == "" and open(path).read() == "a,b\n1,2\n"
    md5 = hashlib.md5(b"changed").hexdigest()               # a mismatching cached copy is fetched again
    assert open(get_file("data.csv", origin=source.as_uri(), cache_dir=cache, md5_hash=md5)).read() == "changed"
    with pytest.raises(ValueError, match="hash does not match"):
        get_file("other.csv", origin=str(source), cache_dir=cache, file_hash="0" * 64)
    assert not (cache / "datasets" / "other.csv").exists()


def test_get_file_default_cache_is_rnnkits(tmp_path, monkeypatch):
    monkeypatch.setenv("RNNKIT_HOME", str(tmp_path / "home"))
    source = tmp_path / "x.txt"
    source.write_text("x")
    assert get_file(origin=str(source), cache_subdir="mine") == str(tmp_path / "home" / "mine" / "x.txt")


def test_get_file_extracts_tar_and_zip(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "inner.txt").write_text("inside")
    with tarfile.open(tmp_path / "pack.tar.gz", "w:gz") as tar:
        tar.add(tmp_path / "src" / "inner.txt", arcname="pack/inner.txt")
    with zipfile.ZipFile(tmp_path / "pack.zip", "w") as zf:
        zf.write(tmp_path / "src" / "inner.txt", "inner.txt")
    folder = get_file("pack.tar.gz", origin=str(tmp_path / "pack.tar.gz"), cache_dir=tmp_path / "c", extract=True)
    assert folder == str(tmp_path / "c" / "datasets" / "pack_extracted")
    assert open(f"{folder}/pack/inner.txt").read() == "inside"
    folder = get_file("packzip", origin=str(tmp_path / "pack.zip"), cache_dir=tmp_path / "c", extract=True)
    assert open(f"{folder}/inner.txt").read() == "inside"
    assert (tmp_path / "c" / "datasets" / "packzip_archive").is_file()


def test_get_file_failure_is_one_line_with_how_to_pass_a_local_copy(tmp_path):
    with pytest.raises(DownloadError) as info:
        get_file("x.zip", origin=(tmp_path / "missing.zip").as_uri(), cache_dir=tmp_path)
    message = str(info.value)
    assert "\n" not in message and "Could not download" in message and "origin=" in message
    assert info.value.__cause__ is None and info.value.__suppress_context__
    with pytest.raises(ValueError, match="origin"):
        get_file("x.zip")
    with pytest.raises(ValueError, match="fname"):
        get_file("a/b.zip", origin="file:///x")


# ----- pad_sequences and to_categorical (Keras's cases) --------------------------------------------------
def test_pad_sequences_keras_details():
    out = rnnkit.preprocessing.sequence.pad_sequences([[[1, 2]], [[3, 4], [5, 6]]], padding="post")
    assert out.shape == (2, 2, 2) and out.tolist() == [[[1, 2], [0, 0]], [[3, 4], [5, 6]]]
    words = rnnkit.utils.pad_sequences([["a", "b"], ["c"]], dtype=object, value="<pad>")
    assert words.tolist() == [["a", "b"], ["<pad>", "c"]]
    with pytest.raises(ValueError, match="not compatible"):
        rnnkit.utils.pad_sequences([["a"]], value="x")
    with pytest.raises(ValueError, match="non-iterable"):
        rnnkit.utils.pad_sequences([[1], 2])
    with pytest.raises(ValueError, match="Shape of sample"):
        rnnkit.utils.pad_sequences([[[1, 2]], [[1, 2, 3]]])


def test_to_categorical():
    np.testing.assert_array_equal(rnnkit.utils.to_categorical([0, 2, 1], 3), np.eye(3)[[0, 2, 1]])
    assert rnnkit.utils.to_categorical([[1], [0]]).shape == (2, 2)


# ----- initializers --------------------------------------------------------------------------------------
def draw(init, shape=(400, 300)):
    return init(shape).double()


def test_variance_scaling_initializers_statistics():
    fan_in, fan_out = 400, 300
    w = draw(initializers.GlorotUniform(seed=0))
    limit = np.sqrt(6 / (fan_in + fan_out))
    assert w.abs().max() <= limit and w.std().item() == pytest.approx(limit / np.sqrt(3), rel=0.02)
    assert draw(initializers.GlorotNormal(seed=0)).std().item() == pytest.approx(np.sqrt(2 / (fan_in + fan_out)),
                                                                                rel=0.02)
    assert draw(initializers.HeNormal(seed=0)).std().item() == pytest.approx(np.sqrt(2 / fan_in), rel=0.02)
    he = draw(initializers.HeUniform(seed=0))
    assert he.abs().max() <= np.sqrt(6 / fan_in) and he.std().item() == pytest.approx(np.sqrt(2 / fan_in), rel=0.02)
    assert draw(initializers.LecunNormal(seed=0)).std().item() == pytest.approx(np.sqrt(1 / fan_in), rel=0.02)
    conv = draw(initializers.VarianceScaling(2.0, "fan_out", "untruncated_normal", seed=0), (5, 40, 60))
    assert conv.std().item() == pytest.approx(np.sqrt(2.0 / (60 * 5)), rel=0.03)


def test_random_initializers_statistics():
    n = draw(initializers.RandomNormal(mean=1.0, stddev=0.5, seed=0))
    assert n.mean().item() == pytest.approx(1.0, abs=0.01) and n.std().item() == pytest.approx(0.5, rel=0.02)
    u = draw(initializers.RandomUniform(minval=-1.0, maxval=3.0, seed=0))
    assert -1.0 <= u.min() and u.max() < 3.0 and u.mean().item() == pytest.approx(1.0, abs=0.02)
    t = draw(initializers.TruncatedNormal(mean=0.0, stddev=0.1, seed=0))
    assert t.abs().max() <= 0.2 and t.std().item() == pytest.approx(0.1 * 0.8796, rel=0.02)


def test_deterministic_initializers():
    assert initializers.Constant(0.5)((2, 3)).tolist() == [[0.5] * 3] * 2
    assert initializers.Zeros()((2,)).tolist() == [0, 0] and initializers.Ones()((2,)).tolist() == [1, 1]
    assert initializers.Identity(gain=2.0)((2, 3)).tolist() == [[2, 0, 0], [0, 2, 0]]
    with pytest.raises(ValueError, match="2-D"):
        initializers.Identity()((2, 2, 2))
    for shape in ((6, 4), (4, 6), (3, 2, 4)):
        w = initializers.Orthogonal(gain=2.0, seed=0)(shape).reshape(-1, shape[-1]).double()
        gram = w.T @ w if w.shape[0] >= w.shape[1] else w @ w.T
        torch.testing.assert_close(gram, 4 * torch.eye(gram.shape[0], dtype=torch.float64), atol=1e-5, rtol=0)
    # a seeded initializer gives the same values at every call, as in Keras 3
    init = initializers.RandomNormal(seed=3)
    assert torch.equal(init((4, 4)), init((4, 4)))
    assert not torch.equal(initializers.RandomNormal()((4, 4)), initializers.RandomNormal()((4, 4)))


def test_initializer_names_configs_and_layers():
    name, fill = initializers.get("he_uniform")
    assert name == "he_uniform" and fill(torch.empty(3, 3)).shape == (3, 3)
    for identifier in ("GlorotUniform", "glorot_uniform", "uniform", "one", "Orthogonal"):
        assert callable(initializers.get(identifier)[1])
    with pytest.raises(ValueError, match="Did you mean 'glorot_uniform'"):
        initializers.get("glorot_unifrom")
    init = initializers.Orthogonal(gain=3.0, seed=1)
    spec = initializers.serialize(init)
    assert spec == {"class_name": "Orthogonal", "config": {"gain": 3.0, "seed": 1}}
    assert initializers.deserialize(spec).get_config() == init.get_config()
    assert initializers.serialize("zeros") == "zeros"
    _, fill = initializers.get(spec)                      # a layer's config dict works as an identifier
    torch.testing.assert_close(fill(torch.empty(3, 3)), init((3, 3)))
    layer = rnnkit.layers.Dense(3, kernel_initializer=initializers.Constant(2.0), bias_initializer="ones")
    layer(torch.zeros(1, 2))
    assert layer.kernel.tolist() == [[2.0] * 3] * 2 and layer.bias.tolist() == [1.0] * 3
    keras_style = rnnkit.layers.Dense(2, kernel_initializer=lambda shape, dtype=None: torch.full(shape, 7.0))
    keras_style(torch.zeros(1, 2))
    assert keras_style.kernel.tolist() == [[7.0, 7.0]] * 2
    _, fill = initializers.get(np.arange(4.0).reshape(2, 2))
    assert fill(torch.empty(2, 2)).tolist() == [[0, 1], [2, 3]]


# ----- constraints and regularizers ---------------------------------------------------------------------
def test_constraints():
    w = torch.tensor([[3.0, 0.1], [4.0, -0.1]])
    torch.testing.assert_close(constraints.MaxNorm(2.0)(w), torch.tensor([[1.2, 0.1], [1.6, -0.1]]), atol=1e-6,
                               rtol=1e-6)
    torch.testing.assert_close(constraints.get("unit_norm")(w).norm(dim=0), torch.ones(2))
    assert torch.equal(constraints.NonNeg()(w), torch.tensor([[3.0, 0.1], [4.0, 0.0]]))
    mm = constraints.MinMaxNorm(min_value=1.0, max_value=2.0)(w)
    torch.testing.assert_close(mm.norm(dim=0), torch.tensor([2.0, 1.0]))
    spec = constraints.serialize(constraints.MaxNorm(max_value=3, axis=1))
    assert spec == {"class_name": "MaxNorm", "config": {"max_value": 3, "axis": 1}}
    assert constraints.deserialize(spec).get_config() == {"max_value": 3, "axis": 1}
    assert constraints.get(None) is None and isinstance(constraints.get("non_neg"), constraints.NonNeg)
    with pytest.raises(ValueError, match="Did you mean 'max_norm'"):
        constraints.get("max_norn")


def test_regularizers():
    w = torch.tensor([1.0, -2.0])
    assert regularizers.L1(0.1)(w).item() == pytest.approx(0.3)
    assert regularizers.L2(0.1)(w).item() == pytest.approx(0.5)
    assert regularizers.L1L2(l1=0.1, l2=0.01)(w).item() == pytest.approx(0.35)
    assert regularizers.l1_l2()(w).item() == 0.0
    assert regularizers.get("l2").get_config() == {"l2": 0.01}
    spec = regularizers.serialize(regularizers.L1L2(l1=0.5))
    assert spec == {"class_name": "L1L2", "config": {"l1": 0.5, "l2": 0.0}}
    assert regularizers.deserialize(spec)(w).item() == pytest.approx(1.5)
    with pytest.raises(ValueError, match="non-negative"):
        regularizers.L2(-0.1)
    penalty = regularizers.L2(0.5)(torch.ones(3, requires_grad=True))
    assert penalty.requires_grad
