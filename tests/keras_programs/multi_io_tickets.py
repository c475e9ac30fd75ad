"""The functional-API guide's ticket classifier: three named inputs (title, body, tags),
two named outputs (priority, department), dict inputs and outputs, ``loss_weights``."""
import numpy as np

NUM_TAGS, NUM_WORDS, NUM_DEPARTMENTS = 6, 50, 4
TITLE_STEPS, BODY_STEPS, BATCH = 5, 9, 6


def build(K):
    title_input = K.Input(shape=(None,), dtype="int32", name="title")
    body_input = K.Input(shape=(None,), dtype="int32", name="body")
    tags_input = K.Input(shape=(NUM_TAGS,), name="tags")

    title_features = K.layers.Embedding(NUM_WORDS, 8)(title_input)
    body_features = K.layers.Embedding(NUM_WORDS, 8)(body_input)
    title_features = K.layers.LSTM(12)(title_features)
    body_features = K.layers.LSTM(6)(body_features)

    x = K.layers.concatenate([title_features, body_features, tags_input])
    priority_pred = K.layers.Dense(1, name="priority")(x)
    department_pred = K.layers.Dense(NUM_DEPARTMENTS, name="department")(x)
    model = K.Model(
        inputs={"title": title_input, "body": body_input, "tags": tags_input},
        outputs={"priority": priority_pred, "department": department_pred},
    )
    return {"model": model}


def _features(rng, n):
    # keys deliberately in another order than the model's inputs
    return {
        "tags": rng.integers(0, 2, (n, NUM_TAGS)).astype("float32"),
        "body": rng.integers(0, NUM_WORDS, (n, BODY_STEPS)).astype("int32"),
        "title": rng.integers(0, NUM_WORDS, (n, TITLE_STEPS)).astype("int32"),
    }


def data(rng):
    return {"model": _features(rng, BATCH)}


def training(K):
    return {
        "loss": {
            "priority": K.losses.BinaryCrossentropy(from_logits=True),
            "department": K.losses.CategoricalCrossentropy(from_logits=True),
        },
        "loss_weights": {"priority": 1.0, "department": 0.2},
        "fit": {"batch_size": 4, "epochs": 2},
    }


def train_data(rng):
    n = 8
    priority_targets = rng.random((n, 1)).astype("float32")
    dept_targets = np.eye(NUM_DEPARTMENTS, dtype="float32")[rng.integers(0, NUM_DEPARTMENTS, n)]
    return _features(rng, n), {"department": dept_targets, "priority": priority_targets}
