"""Name-keyed registries of factories whose keyword-only signatures double as parameter schemas."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import pydantic

from hpo.exceptions import ConfigError

__all__ = ["Declaration", "Entry", "Registry"]

T = TypeVar("T")
I = TypeVar("I")  # noqa: E741  (the entry's info type)


@dataclass(frozen=True)
class Entry(Generic[T, I]):
    """One registered factory with its parameter schema and what its callers must know.

    Attributes:
        name: The name configs use.
        factory: Builds the thing; its keyword-only parameters are the config schema.
        schema: The pydantic model of those parameters.
        info: Facts about the entry its callers read instead of testing names or types
            (a pruner's unit, a scheduler's step unit, a model's head).
    """

    name: str
    factory: Callable[..., T]
    schema: type[pydantic.BaseModel]
    info: I


@dataclass(frozen=True)
class Declaration(Generic[I]):
    """An entry as declared before its factory is loaded: its parameters and its info.

    Attributes:
        name: The name configs use.
        schema: The pydantic model of its config parameters.
        info: Facts about the entry its callers read (see :class:`Entry`).
    """

    name: str
    schema: type[pydantic.BaseModel]
    info: I


class Registry(Generic[T, I]):
    """Factories registered by name.

    Each factory takes keyword-only parameters with type annotations and defaults; those
    become the schema of the entry's parameters in config files, so adding an entry is one
    decorated function. Parameters listed in ``runtime`` are supplied by the caller at build
    time (for example ``params`` of an optimizer) and are not part of the config schema.

    Registries are declared in :mod:`hpo.components` (a leaf module the schemas can import)
    and filled by the module named in ``loader``, which is imported on the first lookup, as
    the CLI loads its commands: reading a config never needs torch until an entry is asked for.

    A registry whose factories need heavy imports (torch) also names a ``declarations`` module:
    a light one that declares each entry's name, parameters (a keyword-only signature without
    the runtime parameters) and info with :meth:`declare`. Names, parameters and info are then
    read from the declarations alone, so validating a config never imports the factories; only
    :meth:`create` and :meth:`entry` load them. Registering a factory checks that its parameters
    and info are exactly the declared ones, so the two cannot drift apart.

    Args:
        kind: What the registry holds, used in error messages ("loss", "optimizer").
        runtime: Names of factory parameters passed at build time, not read from configs.
        loader: Module that registers the entries, imported on first lookup (on the first
            :meth:`create` or :meth:`entry` when there are declarations).
        declarations: Light module that declares every entry, imported on first lookup.
        default_info: Info of entries registered (or declared) without one.
    """

    def __init__(
        self,
        kind: str,
        *,
        runtime: tuple[str, ...] = (),
        loader: str | None = None,
        declarations: str | None = None,
        default_info: I | None = None,
    ) -> None:
        self.kind = kind
        self._runtime = runtime
        self._loader = loader
        self._declarations = declarations  # None once imported
        self._declared_in = declarations
        self._default_info = default_info
        self._declared: dict[str, Declaration[I]] = {}
        self._entries: dict[str, Entry[T, I]] = {}

    def declare(
        self, name: str, *, info: I | None = None
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator declaring entry ``name`` by a signature: its config parameters, and its info.

        The decorated function is never called: its keyword-only parameters (annotations and
        defaults) are the entry's parameters, its docstring says what the entry is.
        """

        def decorator(signature: Callable[..., Any]) -> Callable[..., Any]:
            if self._declared_in is None:
                raise TypeError(f"{self.kind} registry takes no declarations")
            if name in self._declared:
                raise ValueError(f"{self.kind} {name!r} is declared twice")
            entry_info = self._info_or_default(name, info)
            schema = self._schema_of(name, signature)
            self._declared[name] = Declaration(name, schema, entry_info)
            return signature

        return decorator

    def register(
        self, name: str, *, info: I | None = None
    ) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """Decorator adding ``factory`` under ``name``, with the ``info`` callers read.

        For a registry with declarations, ``name`` must be declared with the same parameters,
        and ``info`` (when given) must equal the declared info.
        """

        def decorator(factory: Callable[..., T]) -> Callable[..., T]:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            schema = self._schema_of(name, factory)
            if self._declared_in is not None:
                declared = self._load_declarations().get(name)
                if declared is None:
                    raise TypeError(f"{self.kind} {name!r}: not declared in {self._declared_in}")
                _check_same(self.kind, name, declared, schema, info)
                entry_info = declared.info
            else:
                entry_info = self._info_or_default(name, info)
            self._entries[name] = Entry(name, factory, schema, entry_info)
            return factory

        return decorator

    def _info_or_default(self, name: str, info: I | None) -> I:
        entry_info = info if info is not None else self._default_info
        if entry_info is None:
            raise TypeError(f"{self.kind} {name!r}: registered without info")
        return entry_info

    def _load_declarations(self) -> dict[str, Declaration[I]]:
        if self._declarations is not None:
            module, self._declarations = self._declarations, None
            importlib.import_module(module)
        return self._declared

    def _load(self) -> dict[str, Entry[T, I]]:
        if self._declared_in is not None:
            self._load_declarations()
        if self._loader is not None:
            loader, self._loader = self._loader, None
            importlib.import_module(loader)
        return self._entries

    def _facts(self) -> Mapping[str, Declaration[I] | Entry[T, I]]:
        """Each entry's schema and info: from the declarations when there are any."""
        if self._declared_in is not None:
            return self._load_declarations()
        return self._load()

    def names(self) -> list[str]:
        """Registered (or declared) names, sorted."""
        return sorted(self._facts())

    def __contains__(self, name: object) -> bool:
        return name in self._facts()

    def _fact(self, name: str, where: str) -> Declaration[I] | Entry[T, I]:
        facts = self._facts()
        if name not in facts:
            at = f"{where}: " if where else ""
            raise ConfigError(
                f"{at}unknown {self.kind} {name!r}; known: {', '.join(self.names())}"
            )
        return facts[name]

    def entry(self, name: str, *, where: str = "") -> Entry[T, I]:
        """The entry ``name`` with its factory; ConfigError naming the known entries when
        there is none."""
        self._fact(name, where)
        entries = self._load()
        if name not in entries:
            raise TypeError(f"{self.kind} {name!r} is declared but no factory registers it")
        return entries[name]

    def check_name(self, name: str, *, where: str = "") -> None:
        """Raise ConfigError naming the known entries when ``name`` is not registered."""
        self._fact(name, where)

    def info(self, name: str) -> I:
        """What callers must know about entry ``name`` (see :class:`Entry`)."""
        return self._fact(name, "").info

    def parameters(self, name: str) -> dict[str, Any]:
        """The config parameters of entry ``name`` with their defaults (``...`` if required)."""
        return {
            key: (field.default if not field.is_required() else ...)
            for key, field in self._fact(name, "").schema.model_fields.items()
        }

    def validate(self, name: str, params: Mapping[str, Any], *, where: str = "") -> dict[str, Any]:
        """Validate config parameters of ``name``; returns them with defaults filled in.

        Raises:
            ConfigError: Unknown name, unknown parameter or a value of the wrong type or range,
                naming ``where`` (the dotted config path) and what is accepted.
        """
        schema = self._fact(name, where).schema
        try:
            model = schema.model_validate(dict(params))
        except pydantic.ValidationError as exc:
            err = exc.errors()[0]
            key = ".".join(str(p) for p in err["loc"])
            at = f"{where}.{key}" if where else key
            if err["type"] == "extra_forbidden":
                known = ", ".join(schema.model_fields) or "none"
                raise ConfigError(
                    f"{at}: unknown parameter of {self.kind} {name!r}; known: {known}"
                ) from None
            if err["type"] == "missing":
                raise ConfigError(f"{at}: required by {self.kind} {name!r}") from None
            raise ConfigError(f"{at}: {err['msg']} (got {err.get('input')!r})") from None
        return model.model_dump()

    def create(self, name: str, /, **kwargs: Any) -> T:
        """Build entry ``name``; config parameters are validated, runtime ones passed through."""
        runtime = {k: kwargs.pop(k) for k in list(kwargs) if k in self._runtime}
        params = self.validate(name, kwargs)
        return self.entry(name).factory(**runtime, **params)

    def _schema_of(self, name: str, factory: Callable[..., Any]) -> type[pydantic.BaseModel]:
        fields: dict[str, Any] = {}
        hints = inspect.get_annotations(factory, eval_str=True)
        for param in inspect.signature(factory).parameters.values():
            if param.name in self._runtime:
                continue
            if param.kind is not inspect.Parameter.KEYWORD_ONLY:
                raise TypeError(
                    f"{self.kind} {name!r}: parameter {param.name!r} must be keyword-only"
                )
            default = ... if param.default is inspect.Parameter.empty else param.default
            fields[param.name] = (hints.get(param.name, Any), default)
        return pydantic.create_model(
            f"{self.kind}_{name}",
            __config__=pydantic.ConfigDict(extra="forbid", arbitrary_types_allowed=True),
            **fields,
        )


def _check_same(
    kind: str,
    name: str,
    declared: Declaration[Any],
    schema: type[pydantic.BaseModel],
    info: Any,
) -> None:
    """TypeError unless a factory's parameters (and info, if given) are the declared ones."""
    own, expected = schema.model_json_schema(), declared.schema.model_json_schema()
    if own != expected:
        raise TypeError(
            f"{kind} {name!r}: the factory's parameters {own.get('properties', {})} differ from "
            f"the declared ones {expected.get('properties', {})}"
        )
    if info is not None and info != declared.info:
        raise TypeError(f"{kind} {name!r}: info {info} differs from the declared {declared.info}")
