"""Name-keyed registries of factories whose keyword-only signatures double as parameter schemas."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

import pydantic

from hpo.exceptions import ConfigError

__all__ = ["Registry"]

T = TypeVar("T")


class Registry(Generic[T]):
    """Factories registered by name.

    Each factory takes keyword-only parameters with type annotations and defaults; those
    become the schema of the entry's parameters in config files, so adding an entry is one
    decorated function. Parameters listed in ``runtime`` are supplied by the caller at build
    time (for example ``params`` of an optimizer) and are not part of the config schema.

    Args:
        kind: What the registry holds, used in error messages ("loss", "optimizer").
        runtime: Names of factory parameters passed at build time, not read from configs.
    """

    def __init__(self, kind: str, *, runtime: tuple[str, ...] = ()) -> None:
        self.kind = kind
        self._runtime = runtime
        self._factories: dict[str, Callable[..., T]] = {}
        self._schemas: dict[str, type[pydantic.BaseModel]] = {}

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """Decorator adding ``factory`` under ``name``."""

        def decorator(factory: Callable[..., T]) -> Callable[..., T]:
            if name in self._factories:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._factories[name] = factory
            self._schemas[name] = self._schema_of(name, factory)
            return factory

        return decorator

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._factories)

    def __contains__(self, name: object) -> bool:
        return name in self._factories

    def check_name(self, name: str, *, where: str = "") -> None:
        """Raise ConfigError naming the known entries when ``name`` is not registered."""
        if name not in self._factories:
            at = f"{where}: " if where else ""
            raise ConfigError(
                f"{at}unknown {self.kind} {name!r}; known: {', '.join(self.names())}"
            )

    def parameters(self, name: str) -> dict[str, Any]:
        """The config parameters of entry ``name`` with their defaults (``...`` if required)."""
        self.check_name(name)
        return {
            key: (field.default if not field.is_required() else ...)
            for key, field in self._schemas[name].model_fields.items()
        }

    def validate(self, name: str, params: Mapping[str, Any], *, where: str = "") -> dict[str, Any]:
        """Validate config parameters of ``name``; returns them with defaults filled in.

        Raises:
            ConfigError: Unknown name, unknown parameter or a value of the wrong type or range,
                naming ``where`` (the dotted config path) and what is accepted.
        """
        self.check_name(name, where=where)
        schema = self._schemas[name]
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
        return self._factories[name](**runtime, **params)

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
