"""The lecture's first Keras program, with `keras` replaced by `rnnkit`.

Prints the parameter table: embedding 320,000 + simple_rnn 2,080 (= 32*32 + 32*32 + 32).
"""
from rnnkit.layers import Embedding, SimpleRNN
from rnnkit.models import Sequential

model = Sequential()
model.add(Embedding(10000, 32))
model.add(SimpleRNN(32))
model.build(input_shape=(None, None))  # Keras 3 and rnnkit build once the input shape is known
model.summary()
