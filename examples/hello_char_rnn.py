"""The lecture's character-level language model: learn "hello" one character at a time.

Vocabulary h, e, l, o as one-hot vectors; input "hell", target "ello". One SimpleRNN
layer (the same Wxh, Whh applied at every step) and a Dense layer (Why) on every step.
"""
import numpy as np

import rnnkit
from rnnkit.layers import Dense, SimpleRNN, TimeDistributed

vocab = ["h", "e", "l", "o"]
index = {ch: i for i, ch in enumerate(vocab)}


def one_hot(text):
    return np.eye(len(vocab), dtype="float32")[[index[ch] for ch in text]]


x = one_hot("hell")[None]  # (1 sequence, 4 steps, 4 features)
y = np.array([[index[ch] for ch in "ello"]])  # next character at every step

rnnkit.utils.set_random_seed(0)
model = rnnkit.Sequential([
    rnnkit.Input(shape=(None, len(vocab))),
    SimpleRNN(8, return_sequences=True),  # h_t = tanh(x_t Wxh + h_{t-1} Whh + b)
    TimeDistributed(Dense(len(vocab))),  # y_t = h_t Why + b
])
model.compile(optimizer=rnnkit.optimizers.Adam(learning_rate=0.05),
              loss=rnnkit.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
model.fit(x, y, epochs=100, verbose=0)

predicted = "".join(vocab[i] for i in model.predict(x)[0].argmax(-1))
print(f"input 'hell' -> predicted '{predicted}' (loss {model.evaluate(x, y, verbose=0)[0]:.4f})")
