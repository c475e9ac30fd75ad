"""The lecture's stacking examples: return_sequences=True on every RNN but the last."""
from rnnkit.layers import Embedding, SimpleRNN
from rnnkit.models import Sequential

model = Sequential()
model.add(Embedding(10000, 32))
model.add(SimpleRNN(32, return_sequences=True))
model.build(input_shape=(None, None))  # Keras 3 and rnnkit build once the input shape is known
model.summary()

model = Sequential()
model.add(Embedding(10000, 32))
model.add(SimpleRNN(32, return_sequences=True))
model.add(SimpleRNN(32, return_sequences=True))
model.add(SimpleRNN(32, return_sequences=True))
model.add(SimpleRNN(32, return_sequences=True))
model.add(SimpleRNN(32))
model.build(input_shape=(None, None))  # Keras 3 and rnnkit build once the input shape is known
model.summary()
