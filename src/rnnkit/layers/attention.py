"""Attention (Luong, dot-product) and AdditiveAttention (Bahdanau), as Keras 3 computes them.

Inputs are ``[query, value]`` or ``[query, value, key]`` (key defaults to value), shaped
(batch, Tq, dim), (batch, Tv, dim), (batch, Tv, dim); masks come as ``[query_mask, value_mask]``.
Masked value steps get no attention weight; masked query steps give zero output; the output
mask is the query mask.
"""
import torch
import torch.nn.functional as F

from .layer import Layer, check_flags


class Attention(Layer):
    """Dot-product (Luong) attention: ``softmax(query @ key^T) @ value``.

    Arguments:
        use_scale: learn a scalar ``scale`` that multiplies the scores.
        score_mode: ``"dot"`` (query . key) or ``"concat"`` (``sum(tanh(query + key))``, scaled
            by a learned ``concat_score_weight``).
        dropout: fraction of attention weights dropped in training.
        seed: seed of the dropout draws.

    Call arguments: ``inputs`` ([query, value] or [query, value, key]), ``mask``
    ([query_mask, value_mask]), ``training``, ``return_attention_scores`` (also return the
    (batch, Tq, Tv) weights), ``use_causal_mask`` (query step i sees value steps <= i).

    ``context = Attention()([decoder_seq, encoder_seq])``
    """

    def __init__(self, use_scale=False, score_mode="dot", dropout=0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        if score_mode not in ("dot", "concat"):
            raise ValueError(f"{type(self).__name__}: score_mode must be 'dot' or 'concat', got {score_mode!r}.")
        if not 0 <= float(dropout) < 1:
            raise ValueError(f"{type(self).__name__}: dropout must be in [0, 1), got {dropout}.")
        self.use_scale, = check_flags(type(self).__name__, use_scale=use_scale)
        self.score_mode = score_mode
        self.dropout = float(dropout)
        self.seed = seed
        self._generator = None
        self._scores_in_shape = False

    # ----- checks ---------------------------------------------------------------------------------
    def _fail(self, message):
        raise ValueError(f"Layer '{self.name}' ({type(self).__name__}): {message}")

    def _validate(self, inputs, mask=None):
        single = not isinstance(inputs, (list, tuple)) or any(d is None or isinstance(d, int) for d in inputs)
        if single:  # a tensor, or (in build) the shape of one
            what = "tensor" if isinstance(inputs, (list, tuple)) else type(inputs).__name__
            self._fail(f"call it on a list [query, value] or [query, value, key], got a single {what}.")
        if not 2 <= len(inputs) <= 3:
            self._fail(f"takes [query, value] or [query, value, key], got a list of {len(inputs)}.")
        if mask is not None:
            if not isinstance(mask, (list, tuple)):
                self._fail("mask must be a list [query_mask, value_mask] (entries may be None), "
                           f"got {type(mask).__name__}.")
            if not 2 <= len(mask) <= 3:
                self._fail(f"mask must be a list [query_mask, value_mask], got a list of {len(mask)}.")

    def _check_shapes(self, shapes):
        query, value = shapes[0], shapes[1]
        key = shapes[2] if len(shapes) > 2 else value
        for what, shape in (("query", query), ("value", value), ("key", key)):
            if len(shape) < 2:
                self._fail(f"{what} must be at least 2-D (batch, ..., dim), got shape {tuple(shape)}.")
        if query[-1] is not None and key[-1] is not None and query[-1] != key[-1]:
            self._fail(f"query and key need the same last dimension, got {query[-1]} and {key[-1]} "
                       f"(shapes {tuple(query)} and {tuple(key)}).")
        if value[-2] is not None and key[-2] is not None and value[-2] != key[-2]:
            self._fail(f"value and key need the same number of steps, got {value[-2]} and {key[-2]}.")

    # ----- weights ----------------------------------------------------------------------------------
    def build(self, input_shape):
        self._validate(input_shape)
        self._check_shapes(input_shape)
        if self.use_scale:
            self.add_weight("scale", (), "ones", device=self._device())
        if self.score_mode == "concat":
            self.add_weight("concat_score_weight", (), "ones", device=self._device())

    # ----- computing --------------------------------------------------------------------------------
    def _scores(self, query, key):
        if self.score_mode == "dot":
            scores = torch.matmul(query, key.transpose(-2, -1))
            return scores * self.scale if self.use_scale else scores
        total = query.unsqueeze(-2) + key.unsqueeze(-3)
        if self.use_scale:
            total = self.scale * total
        return self.concat_score_weight * torch.tanh(total).sum(dim=-1)

    def forward(self, inputs, mask=None, training=None, return_attention_scores=False, use_causal_mask=False):
        self._validate(inputs, mask)
        self._check_shapes([tuple(x.shape) for x in inputs])
        training = self.training if training is None else training
        query, value = inputs[0], inputs[1]
        key = inputs[2] if len(inputs) > 2 else value
        q_mask = mask[0] if mask else None
        v_mask = mask[1] if mask else None
        scores = self._scores(query, key)
        scores_mask = None if v_mask is None else torch.as_tensor(v_mask, device=scores.device).bool().unsqueeze(-2)
        if use_causal_mask:
            tq, tv = scores.shape[-2], scores.shape[-1]
            rows = torch.arange(tq, device=scores.device).unsqueeze(-1)
            cols = torch.arange(tv, device=scores.device).unsqueeze(0)
            causal = (rows >= cols).unsqueeze(0)
            scores_mask = causal if scores_mask is None else scores_mask & causal
        if scores_mask is not None:
            big = 65504.0 if scores.dtype == torch.float16 else 1.0e9
            scores = torch.where(scores_mask, scores, scores - big)
        weights = torch.softmax(scores, dim=-1)
        if training and self.dropout > 0:
            weights = self._dropout(weights)
        output = torch.matmul(weights, value)
        if q_mask is not None:
            keep = torch.as_tensor(q_mask, device=output.device).bool().unsqueeze(-1)
            output = torch.where(keep, output, torch.zeros((), dtype=output.dtype, device=output.device))
        if return_attention_scores:
            return output, weights
        return output

    def _dropout(self, weights):
        if self.seed is None:
            return F.dropout(weights, self.dropout, training=True)
        if self._generator is None or self._generator.device != weights.device:
            self._generator = torch.Generator(device=weights.device).manual_seed(int(self.seed))
        keep = torch.empty_like(weights).bernoulli_(1 - self.dropout, generator=self._generator)
        return weights * keep / (1 - self.dropout)

    def __call__(self, *args, **kwargs):
        # So that a symbolic call with return_attention_scores=True gets two output shapes.
        self._scores_in_shape = bool(kwargs.get("return_attention_scores", False))
        try:
            return super().__call__(*args, **kwargs)
        finally:
            self._scores_in_shape = False

    def compute_output_shape(self, input_shape):
        self._validate(input_shape)
        query, value = tuple(input_shape[0]), tuple(input_shape[1])
        key = tuple(input_shape[2]) if len(input_shape) > 2 else value
        output = query[:-1] + value[-1:]
        if self._scores_in_shape:
            return [output, query[:-1] + key[-2:-1]]
        return output

    def compute_mask(self, inputs, mask=None):
        self._validate(inputs, mask)
        if mask is None or mask[0] is None:
            return None
        return torch.as_tensor(mask[0]).bool()

    def get_config(self):
        return {**super().get_config(), "use_scale": self.use_scale, "score_mode": self.score_mode,
                "dropout": self.dropout, "seed": self.seed}


class AdditiveAttention(Attention):
    """Additive (Bahdanau) attention: scores ``sum(scale * tanh(query + key), axis=-1)``.

    Arguments:
        use_scale: learn a per-dimension ``scale`` vector (glorot-uniform initialised, default True);
            without it the scale is 1.
        dropout: fraction of attention weights dropped in training.
        seed: seed of the dropout draws.

    Called like ``Attention``.

    ``context = AdditiveAttention()([decoder_seq, encoder_seq])``
    """

    def __init__(self, use_scale=True, dropout=0.0, seed=None, **kwargs):
        super().__init__(use_scale=use_scale, dropout=dropout, seed=seed, **kwargs)

    def build(self, input_shape):
        self._validate(input_shape)
        self._check_shapes(input_shape)
        dim = input_shape[0][-1]
        if self.use_scale:
            if dim is None:
                self._fail(f"needs a known query dimension to create its scale, got shape {tuple(input_shape[0])}.")
            self.add_weight("scale", (dim,), "glorot_uniform", device=self._device())

    def _scores(self, query, key):
        total = torch.tanh(query.unsqueeze(-2) + key.unsqueeze(-3))
        if self.use_scale:
            total = self.scale * total
        return total.sum(dim=-1)

    def get_config(self):
        config = super().get_config()
        del config["score_mode"]
        return config
