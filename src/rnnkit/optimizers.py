"""Keras-named optimizers whose updates match Keras 3 exactly, built on ``torch.optim``.

The update rules differ from torch's built-ins in ways that change training,
so each optimizer runs its own ``torch.optim.Optimizer`` subclass:

* RMSprop: Keras divides by ``sqrt(velocity + epsilon)`` (torch: ``sqrt(v) + eps``)
  and accumulates momentum on the lr-scaled increment.
* Adam/AdamW: Keras's epsilon is "epsilon hat", added to ``sqrt(v)`` before
  the bias correction is folded into the step size; weight decay is
  decoupled (``param -= param * weight_decay * lr``) for every optimizer.
* SGD: the momentum buffer holds the lr-scaled velocity, so changing the
  learning rate mid-training (ReduceLROnPlateau) behaves as in Keras.

Clipping (``clipnorm`` per parameter, ``clipvalue``, or ``global_clipnorm``)
and weight decay are applied in :meth:`Optimizer.step` before the update, in
Keras's order. ``iterations`` counts applied steps, as Keras's does.
"""

import math

import torch

from . import registry

from ._naming import unknown_name_error




class _RMSpropUpdate(torch.optim.Optimizer):
    def __init__(self, params, lr, rho, momentum, epsilon, centered):
        defaults = dict(lr=lr, rho=rho, momentum=momentum, epsilon=epsilon, centered=centered)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, iterations=0):
        for group in self.param_groups:
            lr, rho, mom, eps = group["lr"], group["rho"], group["momentum"], group["epsilon"]
            if mom == 0 and not group["centered"]:
                self._plain_step(group, lr, rho, eps)
                continue
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                state = self.state[p]
                if not state:
                    state["velocity"] = torch.zeros_like(p)
                    if mom > 0:
                        state["momentum"] = torch.zeros_like(p)
                    if group["centered"]:
                        state["average_gradient"] = torch.zeros_like(p)
                velocity = state["velocity"]
                velocity.mul_(rho).add_(g * g, alpha=1 - rho)
                if group["centered"]:
                    average = state["average_gradient"]
                    average.mul_(rho).add_(g, alpha=1 - rho)
                    denominator = velocity - average * average + eps
                else:
                    denominator = velocity + eps
                increment = lr * g / torch.sqrt(denominator)
                if mom > 0:
                    buf = state["momentum"]
                    buf.mul_(mom).add_(increment)
                    p.sub_(buf)
                else:
                    p.sub_(increment)


    def _plain_step(self, group, lr, rho, eps):
        """The common case as multi-tensor ops: a few kernel launches for all parameters."""
        params = [p for p in group["params"] if p.grad is not None]
        if not params:
            return
        grads = [p.grad for p in params]
        velocity = [_state_tensor(self.state[p], "velocity", p) for p in params]
        torch._foreach_mul_(velocity, rho)
        torch._foreach_addcmul_(velocity, grads, grads, value=1 - rho)
        denominator = torch._foreach_add(velocity, eps)
        torch._foreach_sqrt_(denominator)
        torch._foreach_addcdiv_(params, grads, denominator, value=-lr)


def _state_tensor(state, name, like):
    if name not in state:
        state[name] = torch.zeros_like(like)
    return state[name]


class _AdamUpdate(torch.optim.Optimizer):
    def __init__(self, params, lr, beta_1, beta_2, epsilon, amsgrad):
        defaults = dict(lr=lr, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon, amsgrad=amsgrad)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, iterations=0):
        t = iterations + 1
        for group in self.param_groups:
            b1, b2, eps = group["beta_1"], group["beta_2"], group["epsilon"]
            alpha = group["lr"] * math.sqrt(1 - b2**t) / (1 - b1**t)
            if not group["amsgrad"]:
                self._plain_step(group, b1, b2, eps, alpha)
                continue
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                state = self.state[p]
                if not state:
                    state["momentum"] = torch.zeros_like(p)
                    state["velocity"] = torch.zeros_like(p)
                    if group["amsgrad"]:
                        state["velocity_hat"] = torch.zeros_like(p)
                m, v = state["momentum"], state["velocity"]
                m.add_(g - m, alpha=1 - b1)
                v.add_(g * g - v, alpha=1 - b2)
                if group["amsgrad"]:
                    torch.maximum(state["velocity_hat"], v, out=state["velocity_hat"])
                    v = state["velocity_hat"]
                p.sub_(m * alpha / (torch.sqrt(v) + eps))


    def _plain_step(self, group, b1, b2, eps, alpha):
        """Adam without amsgrad as multi-tensor ops (Keras's form: m += (1 - b1) (g - m))."""
        params = [p for p in group["params"] if p.grad is not None]
        if not params:
            return
        grads = [p.grad for p in params]
        momentum = [_state_tensor(self.state[p], "momentum", p) for p in params]
        velocity = [_state_tensor(self.state[p], "velocity", p) for p in params]
        torch._foreach_lerp_(momentum, grads, 1 - b1)
        torch._foreach_lerp_(velocity, torch._foreach_mul(grads, grads), 1 - b2)
        denominator = torch._foreach_sqrt(velocity)
        torch._foreach_add_(denominator, eps)
        torch._foreach_addcdiv_(params, momentum, denominator, value=-alpha)


class _SGDUpdate(torch.optim.Optimizer):
    def __init__(self, params, lr, momentum, nesterov):
        super().__init__(params, dict(lr=lr, momentum=momentum, nesterov=nesterov))

    @torch.no_grad()
    def step(self, iterations=0):
        for group in self.param_groups:
            lr, mom = group["lr"], group["momentum"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                if mom == 0:
                    p.sub_(g, alpha=lr)
                    continue
                state = self.state[p]
                if not state:
                    state["momentum"] = torch.zeros_like(p)
                m = state["momentum"]
                m.mul_(mom).sub_(g, alpha=lr)
                if group["nesterov"]:
                    p.add_(m * mom - lr * g)
                else:
                    p.add_(m)


class Optimizer(registry.Configurable):
    """Keras-style optimizer front end; subclasses say which update rule to build.

    Call :meth:`build` with the model's parameters once, then per batch
    ``zero_grad()``, ``loss.backward()``, ``step()``.
    """

    def __init__(
        self,
        learning_rate,
        weight_decay=None,
        clipnorm=None,
        clipvalue=None,
        global_clipnorm=None,
        name=None,
    ):
        if sum(x is not None for x in (clipnorm, clipvalue, global_clipnorm)) > 1:
            raise ValueError(
                "Only one of `clipnorm`, `clipvalue` and `global_clipnorm` can be set. "
                f"Received: clipnorm={clipnorm}, clipvalue={clipvalue}, "
                f"global_clipnorm={global_clipnorm}"
            )
        self.name = name or type(self).__name__.lower()
        self._learning_rate = float(learning_rate)
        self.weight_decay = weight_decay
        self.clipnorm = clipnorm
        self.clipvalue = clipvalue
        self.global_clipnorm = global_clipnorm
        self._iterations = 0
        self._params = None
        self._torch_optimizer = None
        self._pending_state = None

    def _make_torch_optimizer(self, params):
        raise NotImplementedError

    @property
    def built(self):
        return self._torch_optimizer is not None

    @property
    def iterations(self):
        """Number of update steps applied so far."""
        return self._iterations

    @property
    def learning_rate(self):
        return self._learning_rate

    @learning_rate.setter
    def learning_rate(self, value):
        self._learning_rate = float(value)
        if self._torch_optimizer is not None:
            for group in self._torch_optimizer.param_groups:
                group["lr"] = self._learning_rate

    def build(self, params):
        """Create the optimizer state for ``params`` (trainable tensors only).

        Building again with the same parameters is a no-op; with different
        ones it starts over with fresh state and ``iterations = 0``.
        """
        params = [p for p in params if p.requires_grad]
        if self._params is not None and len(params) == len(self._params) and all(
            a is b for a, b in zip(params, self._params)
        ):
            return
        if not params:
            raise ValueError("The optimizer received no trainable parameters to build on.")
        self._params = params
        self._iterations = 0
        self._torch_optimizer = self._make_torch_optimizer(params)
        if self._pending_state is not None:
            state, self._pending_state = self._pending_state, None
            self.load_state_dict(state)

    def zero_grad(self, set_to_none=True):
        if self._torch_optimizer is None:
            raise RuntimeError("Call build(params) before zero_grad().")
        for p in self._params:
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.zero_()

    @torch.no_grad()
    def step(self):
        """Clip the gradients (in place), apply weight decay, then update; skips parameters without grads."""
        if self._torch_optimizer is None:
            raise RuntimeError("Call build(params) before step().")
        params = [p for p in self._params if p.grad is not None]
        if not params:
            return
        self._clip_gradients([p.grad for p in params])
        if self.weight_decay:
            decay = self.weight_decay * self._learning_rate
            for p in params:
                p.sub_(p * decay)
        self._torch_optimizer.step(self._iterations)
        self._iterations += 1

    def _clip_gradients(self, grads):
        if self.clipnorm and self.clipnorm > 0:
            for g in grads:
                norm = torch.linalg.vector_norm(g)
                g.mul_(self.clipnorm / torch.clamp(norm, min=self.clipnorm))
        elif self.global_clipnorm and self.global_clipnorm > 0:
            norms = [torch.linalg.vector_norm(g).to(grads[0].dtype) for g in grads]
            norm = torch.linalg.vector_norm(torch.stack(norms))
            scale = self.global_clipnorm / torch.clamp(norm, min=self.global_clipnorm)
            scale = scale + (norm - norm)
            for g in grads:
                g.mul_(scale.to(g.dtype))
        elif self.clipvalue and self.clipvalue > 0:
            for g in grads:
                g.clamp_(-self.clipvalue, self.clipvalue)

    def state_dict(self):
        """Iterations, learning rate and per-parameter slots (torch format)."""
        state = {"iterations": self._iterations, "learning_rate": self._learning_rate}
        if self._torch_optimizer is not None:
            state["optimizer"] = self._torch_optimizer.state_dict()
        return state

    def load_state_dict(self, state):
        """Restore :meth:`state_dict` output; before :meth:`build` it is applied at build time."""
        if self._torch_optimizer is None and "optimizer" in state:
            self._pending_state = state
            self.learning_rate = state["learning_rate"]
            return
        if "optimizer" in state:
            self._torch_optimizer.load_state_dict(state["optimizer"])
        self._iterations = int(state["iterations"])
        self.learning_rate = state["learning_rate"]

    def get_config(self):
        return {
            "name": self.name,
            "learning_rate": self._learning_rate,
            "weight_decay": self.weight_decay,
            "clipnorm": self.clipnorm,
            "global_clipnorm": self.global_clipnorm,
            "clipvalue": self.clipvalue,
        }



class RMSprop(Optimizer):
    """RMSprop as in Keras: ``param -= lr * g / sqrt(velocity + epsilon)``."""

    def __init__(
        self,
        learning_rate=0.001,
        rho=0.9,
        momentum=0.0,
        epsilon=1e-7,
        centered=False,
        weight_decay=None,
        clipnorm=None,
        clipvalue=None,
        global_clipnorm=None,
        name="rmsprop",
    ):
        super().__init__(learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm, name)
        self.rho = rho
        self.momentum = momentum
        self.epsilon = epsilon
        self.centered = centered

    def _make_torch_optimizer(self, params):
        return _RMSpropUpdate(
            params, self._learning_rate, self.rho, self.momentum, self.epsilon, self.centered
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            rho=self.rho, momentum=self.momentum, epsilon=self.epsilon, centered=self.centered
        )
        return config


class Adam(Optimizer):
    """Adam as in Keras, with epsilon added to ``sqrt(v)`` ("epsilon hat")."""

    def __init__(
        self,
        learning_rate=0.001,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-7,
        amsgrad=False,
        weight_decay=None,
        clipnorm=None,
        clipvalue=None,
        global_clipnorm=None,
        name="adam",
    ):
        super().__init__(learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm, name)
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.amsgrad = amsgrad

    def _make_torch_optimizer(self, params):
        return _AdamUpdate(
            params, self._learning_rate, self.beta_1, self.beta_2, self.epsilon, self.amsgrad
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            beta_1=self.beta_1, beta_2=self.beta_2, epsilon=self.epsilon, amsgrad=self.amsgrad
        )
        return config


class AdamW(Adam):
    """Adam with decoupled weight decay, Keras default ``weight_decay=0.004``."""

    def __init__(
        self,
        learning_rate=0.001,
        weight_decay=0.004,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-7,
        amsgrad=False,
        clipnorm=None,
        clipvalue=None,
        global_clipnorm=None,
        name="adamw",
    ):
        if weight_decay is None:
            raise ValueError(
                "Argument `weight_decay` must be a float. Received: weight_decay=None"
            )
        super().__init__(
            learning_rate=learning_rate,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            amsgrad=amsgrad,
            weight_decay=weight_decay,
            clipnorm=clipnorm,
            clipvalue=clipvalue,
            global_clipnorm=global_clipnorm,
            name=name,
        )


class SGD(Optimizer):
    """SGD with optional (Nesterov) momentum, Keras formulation."""

    def __init__(
        self,
        learning_rate=0.01,
        momentum=0.0,
        nesterov=False,
        weight_decay=None,
        clipnorm=None,
        clipvalue=None,
        global_clipnorm=None,
        name="SGD",
    ):
        if not 0 <= momentum <= 1:
            raise ValueError("`momentum` must be a float between [0, 1].")
        super().__init__(learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm, name)
        self.momentum = momentum
        self.nesterov = nesterov

    def _make_torch_optimizer(self, params):
        return _SGDUpdate(params, self._learning_rate, self.momentum, self.nesterov)

    def get_config(self):
        config = super().get_config()
        config.update(momentum=self.momentum, nesterov=self.nesterov)
        return config


_CLASSES = {"rmsprop": RMSprop, "adam": Adam, "adamw": AdamW, "sgd": SGD}


def serialize(optimizer):
    """Return a JSON-able ``{"class_name", "config"}`` dict that :func:`deserialize` restores."""
    return {"class_name": type(optimizer).__name__, "config": optimizer.get_config()}


def deserialize(config):
    """Rebuild an optimizer from :func:`serialize` output or a bare ``get_config()`` dict.

    A bare config is matched to its class by its ``"name"`` entry, which only
    works for the default names; prefer :func:`serialize` for storage.
    """
    if "class_name" in config:
        class_name, inner = config["class_name"], config.get("config", {})
    else:
        class_name, inner = config.get("name"), config
    key = str(class_name).lower()
    if key not in _CLASSES:
        raise unknown_name_error("optimizer", class_name, _CLASSES)
    return _CLASSES[key].from_config(inner)


def get(identifier):
    """Resolve ``'rmsprop'``/``'adam'``/``'adamw'``/``'sgd'`` (any case), a config or an instance."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, str):
        key = identifier.lower()
        if key not in _CLASSES:
            raise unknown_name_error("optimizer", identifier, _CLASSES)
        return _CLASSES[key]()
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, type) and issubclass(identifier, Optimizer):
        return identifier()
    raise ValueError(f"Could not interpret optimizer identifier: {identifier!r}")
