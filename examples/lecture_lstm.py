"""The lecture's "Simple RNN with LSTM": batch_input_shape=(num_data, len_seq, num_feature).

Keras 3 rejects batch_input_shape; rnnkit accepts it. Each LSTM(1) holds 12 parameters:
4 gates x (1 input weight + 1 recurrent weight + 1 bias).
"""
from rnnkit.layers import LSTM
from rnnkit.models import Sequential

model = Sequential()
model.add(LSTM(1, batch_input_shape=(None, 5, 1), return_sequences=True))
model.add(LSTM(1, return_sequences=False))
model.summary()
