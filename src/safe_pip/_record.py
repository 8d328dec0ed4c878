"""Records for the modules read before pip starts: ``dataclasses`` without its import cost.

``dataclasses`` imports ``inspect`` (and with it ``ast``, ``dis`` and ``tokenize``): 10 to
20 ms before pip could start, on every run (issue 7). :func:`record` makes the same class a
``@dataclass`` would for the plain cases those modules use: fields from the class's
annotations (in order, with defaults or ``field(default_factory=...)``), ``__init__`` taking
them by position or keyword, ``__repr__``, ``__eq__``, and for ``frozen=True`` immutability and
``__hash__``. Type checkers see ``dataclasses`` itself, so the classes are checked as
dataclasses; ``tests/test_record.py`` holds the two to the same behaviour.
"""

from __future__ import annotations

TYPE_CHECKING = False

if TYPE_CHECKING:
    from dataclasses import FrozenInstanceError, field, replace
    from dataclasses import dataclass as record
else:

    class FrozenInstanceError(AttributeError):
        """Assigning to a field of a frozen record (``dataclasses`` has its own, alike)."""

    class _Factory:
        __slots__ = ("make",)

        def __init__(self, make):
            self.make = make

    _MISSING = object()

    def field(*, default_factory):
        """A field whose default is made per instance (``dataclasses.field``'s one use here)."""
        return _Factory(default_factory)

    def _fields_of(cls):
        fields = {}
        for klass in reversed(cls.__mro__[:-1]):
            fields.update(getattr(klass, "__record_fields__", {}))
        for name, annotation in cls.__dict__.get("__annotations__", {}).items():
            if str(annotation).startswith(("ClassVar", "typing.ClassVar")):
                continue
            fields[name] = cls.__dict__.get(name, _MISSING)
        return fields

    def _build(cls, frozen):
        fields = _fields_of(cls)
        names = tuple(fields)
        for name, default in fields.items():
            if name in cls.__dict__ and isinstance(default, _Factory):
                delattr(cls, name)  # instances get their own value

        def __init__(self, *args, **kwargs):
            if len(args) > len(names):
                raise TypeError(
                    f"{cls.__name__}() takes {len(names)} arguments but {len(args)} were given"
                )
            values = dict(zip(names[: len(args)], args, strict=True))
            for key, value in kwargs.items():
                if key not in fields:
                    raise TypeError(f"{cls.__name__}() got an unexpected keyword argument {key!r}")
                if key in values:
                    raise TypeError(f"{cls.__name__}() got multiple values for argument {key!r}")
                values[key] = value
            for name in names:
                if name not in values:
                    default = fields[name]
                    if default is _MISSING:
                        raise TypeError(f"{cls.__name__}() missing required argument: {name!r}")
                    values[name] = default.make() if isinstance(default, _Factory) else default
                object.__setattr__(self, name, values[name])

        def __repr__(self):
            inner = ", ".join(f"{name}={getattr(self, name)!r}" for name in names)
            return f"{type(self).__qualname__}({inner})"

        def __eq__(self, other):
            if other.__class__ is not self.__class__:
                return NotImplemented
            return _values(self) == _values(other)

        def _values(self):
            return tuple(getattr(self, name) for name in names)

        cls.__record_fields__ = fields
        cls.__init__ = __init__
        cls.__repr__ = __repr__
        cls.__eq__ = __eq__
        if frozen:

            def __setattr__(self, name, value):
                raise FrozenInstanceError(f"cannot assign to field {name!r}")

            def __delattr__(self, name):
                raise FrozenInstanceError(f"cannot delete field {name!r}")

            def __hash__(self):
                return hash(_values(self))

            cls.__setattr__ = __setattr__
            cls.__delattr__ = __delattr__
            cls.__hash__ = __hash__
        else:
            cls.__hash__ = None  # mutable and compared by value, as dataclasses do
        return cls

    def record(cls=None, /, *, frozen=False):
        """``@record`` or ``@record(frozen=True)``, as ``@dataclass`` is written."""
        if cls is None:
            return lambda klass: _build(klass, frozen)
        return _build(cls, frozen)

    def replace(obj, /, **changes):
        """A copy of a record with some fields changed (``dataclasses.replace``)."""
        fields = type(obj).__record_fields__
        values = {name: getattr(obj, name) for name in fields}
        for key in changes:
            if key not in fields:
                raise TypeError(f"{type(obj).__name__} has no field {key!r}")
        values.update(changes)
        return type(obj)(**values)


__all__ = ["FrozenInstanceError", "field", "record", "replace"]
