"""The registry of serialisable classes: what ``{"class_name": ..., "config": ...}`` rebuilds from.

Every rnnkit layer and model class registers itself when it is defined (``Layer.__init_subclass__``),
so saving and loading depend on this registry, not on the modules that define the classes.
User classes join with ``@register_keras_serializable()`` (Keras's decorator, same arguments) or
per call through ``custom_objects={"Name": cls}``.

    @rnnkit.saving.register_keras_serializable(package="my_package")
    class Scale(rnnkit.layers.Layer):
        ...
"""
import inspect

from ._naming import suggest

_BUILT_IN = {}
_CUSTOM = {}


def register_built_in(cls):
    """Called for rnnkit's own classes (by ``Layer.__init_subclass__``); user classes are not, nor
    private bases (``_Merge``...)."""
    if not cls.__name__.startswith("_"):
        _BUILT_IN.setdefault(cls.__name__, cls)
    return cls


def register_keras_serializable(package="Custom", name=None):
    """Decorator that makes a user class loadable by name, as Keras's decorator of the same name.

    Arguments:
        package: a namespace for the class (``"package>Name"`` is its registered key).
        name: the name to register under (default: the class name).
    """

    def decorator(cls):
        key = name or cls.__name__
        _CUSTOM[f"{package}>{key}"] = cls
        _CUSTOM[key] = cls
        cls._registered_name = f"{package}>{key}"
        return cls

    return decorator


def get_registered_name(cls):
    return getattr(cls, "_registered_name", None) if "_registered_name" in vars(cls) else cls.__name__


def lookup(class_name, custom_objects=None, what="layer"):
    """The class registered as ``class_name`` (custom_objects first), or a clear ValueError."""
    for table in (custom_objects or {}, _CUSTOM, _BUILT_IN):
        if class_name in table:
            return table[class_name]
    short = str(class_name).split(">")[-1]
    for table in (custom_objects or {}, _CUSTOM, _BUILT_IN):
        if short in table:
            return table[short]
    known = {**_BUILT_IN, **_CUSTOM, **(custom_objects or {})}
    raise ValueError(f"Unknown {what} class '{class_name}'.{suggest(str(class_name), known)} For your own "
                     "classes pass custom_objects={'Name': cls} or decorate the class with "
                     "@rnnkit.saving.register_keras_serializable().")


def serialize(obj):
    return {"class_name": get_registered_name(type(obj)), "config": obj.get_config()}


def deserialize(spec, custom_objects=None):
    """Rebuild an object from ``{"class_name": ..., "config": ...}``."""
    if not isinstance(spec, dict) or "class_name" not in spec:
        raise ValueError(f"Expected a {{'class_name': ..., 'config': ...}} dict, got {spec!r:.200}.")
    cls = lookup(spec["class_name"], custom_objects)
    config = dict(spec.get("config") or {})
    if "custom_objects" in inspect.signature(cls.from_config).parameters:
        return cls.from_config(config, custom_objects=custom_objects)
    return cls.from_config(config)


# ----- small objects with a name table: regularizers, constraints ---------------------------------
def serialize_object(obj):
    """``{"class_name": ..., "config": ...}`` for an object with ``get_config`` (None stays None)."""
    if obj is None:
        return None
    return {"class_name": get_registered_name(type(obj)), "config": obj.get_config()}


def deserialize_object(config, by_name, base, what, custom_objects=None):
    """The object ``serialize_object`` described (or a bare name): looked up in ``custom_objects``,
    then ``by_name`` (the module's names and aliases), then the registry (a registered class
    must subclass ``base``; a registered function is returned as it is)."""
    if isinstance(config, str):
        config = {"class_name": config, "config": {}}
    name = config["class_name"]
    if custom_objects and name in custom_objects:
        cls = custom_objects[name]
    elif name in by_name:
        cls = by_name[name]
    else:
        try:
            cls = lookup(name, custom_objects, what=what)
        except ValueError:
            cls = None
        if cls is None or isinstance(cls, type) and not issubclass(cls, base):
            raise ValueError(f"Unknown {what} '{name}'.{suggest(str(name), by_name)} Known: "
                             f"{', '.join(sorted(by_name))}.")
        if not isinstance(cls, type):
            return cls
    return cls.from_config(dict(config.get("config") or {}))


def get_object(identifier, deserialize_fn, what):
    """An object from a name, a config dict, a class, an instance or a function (None stays None)."""
    if identifier is None:
        return None
    if isinstance(identifier, (str, dict)):
        return deserialize_fn(identifier)
    if isinstance(identifier, type):
        return identifier()
    if callable(identifier):
        return identifier
    raise ValueError(f"Could not interpret {what} identifier: {identifier!r}")


class Configurable:
    """What every configurable object shares (losses, optimizers, initializers, regularizers,
    constraints): ``get_config`` (its constructor arguments), ``from_config`` and a repr of them."""

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"
