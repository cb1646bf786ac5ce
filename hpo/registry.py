"""Name-keyed registries of factories whose keyword-only signatures double as parameter schemas."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import pydantic

from hpo.exceptions import ConfigError

__all__ = ["Entry", "Registry"]

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


class Registry(Generic[T, I]):
    """Factories registered by name.

    Each factory takes keyword-only parameters with type annotations and defaults; those
    become the schema of the entry's parameters in config files, so adding an entry is one
    decorated function. Parameters listed in ``runtime`` are supplied by the caller at build
    time (for example ``params`` of an optimizer) and are not part of the config schema.

    Registries are declared in :mod:`hpo.components` (a leaf module the schemas can import)
    and filled by the module named in ``loader``, which is imported on the first lookup, as
    the CLI loads its commands: reading a config never needs torch until an entry is asked for.

    Args:
        kind: What the registry holds, used in error messages ("loss", "optimizer").
        runtime: Names of factory parameters passed at build time, not read from configs.
        loader: Module that registers the entries, imported on first lookup.
        default_info: Info of entries registered without one.
    """

    def __init__(
        self,
        kind: str,
        *,
        runtime: tuple[str, ...] = (),
        loader: str | None = None,
        default_info: I | None = None,
    ) -> None:
        self.kind = kind
        self._runtime = runtime
        self._loader = loader
        self._default_info = default_info
        self._entries: dict[str, Entry[T, I]] = {}

    def register(
        self, name: str, *, info: I | None = None
    ) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """Decorator adding ``factory`` under ``name``, with the ``info`` callers read."""

        def decorator(factory: Callable[..., T]) -> Callable[..., T]:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            entry_info = info if info is not None else self._default_info
            if entry_info is None:
                raise TypeError(f"{self.kind} {name!r}: registered without info")
            self._entries[name] = Entry(name, factory, self._schema_of(name, factory), entry_info)
            return factory

        return decorator

    def _load(self) -> dict[str, Entry[T, I]]:
        if self._loader is not None:
            loader, self._loader = self._loader, None
            importlib.import_module(loader)
        return self._entries

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._load())

    def __contains__(self, name: object) -> bool:
        return name in self._load()

    def entry(self, name: str, *, where: str = "") -> Entry[T, I]:
        """The entry ``name``; ConfigError naming the known entries when there is none."""
        entries = self._load()
        if name not in entries:
            at = f"{where}: " if where else ""
            raise ConfigError(
                f"{at}unknown {self.kind} {name!r}; known: {', '.join(self.names())}"
            )
        return entries[name]

    def check_name(self, name: str, *, where: str = "") -> None:
        """Raise ConfigError naming the known entries when ``name`` is not registered."""
        self.entry(name, where=where)

    def info(self, name: str) -> I:
        """What callers must know about entry ``name`` (see :class:`Entry`)."""
        return self.entry(name).info

    def parameters(self, name: str) -> dict[str, Any]:
        """The config parameters of entry ``name`` with their defaults (``...`` if required)."""
        return {
            key: (field.default if not field.is_required() else ...)
            for key, field in self.entry(name).schema.model_fields.items()
        }

    def validate(self, name: str, params: Mapping[str, Any], *, where: str = "") -> dict[str, Any]:
        """Validate config parameters of ``name``; returns them with defaults filled in.

        Raises:
            ConfigError: Unknown name, unknown parameter or a value of the wrong type or range,
                naming ``where`` (the dotted config path) and what is accepted.
        """
        schema = self.entry(name, where=where).schema
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
            raise ConfigError(f"{at}: {err['msg']} (got {err.get('input')!r})") from None
        return model.model_dump()

    def create(self, name: str, /, **kwargs: Any) -> T:
        """Build entry ``name``; config parameters are validated, runtime ones passed through."""
        runtime = {k: kwargs.pop(k) for k in list(kwargs) if k in self._runtime}
        params = self.validate(name, kwargs)
        return self._entries[name].factory(**runtime, **params)

    def _schema_of(self, name: str, factory: Callable[..., T]) -> type[pydantic.BaseModel]:
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
