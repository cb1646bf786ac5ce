"""The declarative search space: dotted config paths mapped to Optuna distributions.

A study file's ``search_space`` maps dotted paths of the fixed settings to one of::

    {float: [low, high], log: false, step: null}     # trial.suggest_float
    {int: [low, high], log: false, step: 1}          # trial.suggest_int
    {choice: [a, b, c]}                              # trial.suggest_categorical
    {choice: {branch: {param: value-or-spec, ...}}}  # conditional: a component and its parameters

A conditional choice sets the component at that path to ``{name: branch, **params}``; the
branch's parameters are suggested only when the branch is chosen, under the Optuna parameter
name ``<path>[<branch>].<param>`` (e.g. ``train.scheduler[step].gamma``), so a parameter of one
branch never shares a distribution with a namesake of another.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from hpo.config import TrainConfig, apply_overrides, train_config_from_dict
from hpo.exceptions import ConfigError

__all__ = [
    "Choice",
    "Conditional",
    "FloatParam",
    "IntParam",
    "Misfit",
    "Param",
    "Replay",
    "Space",
    "enqueue_params",
    "parse_space",
]


class _Suggester(Protocol):
    def suggest_float(
        self, name: str, low: float, high: float, *, step: float | None = None, log: bool = False
    ) -> float: ...

    def suggest_int(
        self, name: str, low: int, high: int, *, step: int = 1, log: bool = False
    ) -> int: ...

    def suggest_categorical(self, name: str, choices: Any) -> Any: ...


@dataclass(frozen=True)
class FloatParam:
    low: float
    high: float
    log: bool = False
    step: float | None = None

    def suggest(self, trial: _Suggester, name: str) -> float:
        return trial.suggest_float(name, self.low, self.high, step=self.step, log=self.log)

    def describe(self) -> str:
        """``float [low, high]`` with ``log`` or ``step``, for people."""
        extra = " log" if self.log else f" step {self.step:g}" if self.step else ""
        return f"float [{self.low:g}, {self.high:g}]{extra}"

    def extremes(self) -> list[Any]:
        return [self.low, self.high]


@dataclass(frozen=True)
class IntParam:
    low: int
    high: int
    log: bool = False
    step: int = 1

    def suggest(self, trial: _Suggester, name: str) -> int:
        return trial.suggest_int(name, self.low, self.high, step=self.step, log=self.log)

    def describe(self) -> str:
        """``int [low, high]`` with ``log`` or ``step``, for people."""
        extra = " log" if self.log else f" step {self.step}" if self.step != 1 else ""
        return f"int [{self.low}, {self.high}]{extra}"

    def extremes(self) -> list[Any]:
        return [self.low, self.high]


@dataclass(frozen=True)
class Choice:
    choices: tuple[Any, ...]

    def suggest(self, trial: _Suggester, name: str) -> Any:
        return trial.suggest_categorical(name, list(self.choices))

    def describe(self) -> str:
        """``choice a | b | c``, for people."""
        return "choice " + " | ".join(str(c) for c in self.choices)

    def extremes(self) -> list[Any]:
        return list(self.choices)


@dataclass(frozen=True)
class Conditional:
    """A component chosen by name, each branch with its own (fixed or searched) parameters."""

    branches: Mapping[str, Mapping[str, Any]]

    def suggest(self, trial: _Suggester, name: str) -> dict[str, Any]:
        branch = trial.suggest_categorical(name, list(self.branches))
        value: dict[str, Any] = {"name": branch}
        for key, spec in self.branches[branch].items():
            if isinstance(spec, (FloatParam, IntParam, Choice)):
                value[key] = spec.suggest(trial, f"{name}[{branch}].{key}")
            else:
                value[key] = spec
        return value

    def describe(self) -> str:
        """``choice step(gamma: float [0.1, 0.9]) | cosine``, for people."""
        parts = []
        for branch, params in self.branches.items():
            inner = ", ".join(
                f"{key}: {spec.describe() if hasattr(spec, 'describe') else repr(spec)}"
                for key, spec in params.items()
            )
            parts.append(f"{branch}({inner})" if inner else branch)
        return "choice " + " | ".join(parts)

    def extremes(self) -> list[Any]:
        out = []
        for branch, params in self.branches.items():
            for pick in (0, -1):
                value: dict[str, Any] = {"name": branch}
                for key, spec in params.items():
                    if isinstance(spec, (FloatParam, IntParam, Choice)):
                        value[key] = spec.extremes()[pick]
                    else:
                        value[key] = spec
                out.append(value)
        return out


Param = FloatParam | IntParam | Choice | Conditional


def _corner_values(param: Param) -> list[Any]:
    if isinstance(param, FloatParam | IntParam):
        return [param.low, param.high]
    if isinstance(param, Choice):
        return list(param.choices)
    out = []
    for branch, inner in param.branches.items():
        searched = [(k, _corner_values(v)) for k, v in inner.items() if _is_param(v)]
        fixed = {k: v for k, v in inner.items() if not _is_param(v)}
        for combo in itertools.product(*(values for _, values in searched)):
            value = {"name": branch, **fixed}
            value.update(zip((k for k, _ in searched), combo, strict=True))
            out.append(value)
    return out


def _is_param(value: Any) -> bool:
    return isinstance(value, FloatParam | IntParam | Choice)


@dataclass(frozen=True)
class Space:
    """A parsed search space: dotted path -> parameter, in file order."""

    params: Mapping[str, Param] = field(default_factory=dict)
    raw: Mapping[str, Any] = field(default_factory=dict)

    def sample(self, trial: _Suggester) -> dict[str, Any]:
        """Suggest every parameter; returns dotted path -> value (components as mappings)."""
        return {path: param.suggest(trial, path) for path, param in self.params.items()}

    def replay(
        self, given: Mapping[str, Any], *, fallback: Callable[[str], Any] | None = None
    ) -> Replay:
        """Walk :meth:`sample` with given values instead of a sampler.

        Args:
            given: Optuna parameter name (``train.scheduler[step].gamma``) -> value.
            fallback: Asked for the value of a name ``given`` lacks; returns :data:`MISSING`
                when it has none either (a warm start reads the trial's stored config).

        Returns:
            What each suggest call got, its distribution, and what did not fit: names the walk
            asked for and nobody gave (``missing``), values outside their distribution
            (``outside``), names given that the walk never asked for (``extra``).
        """
        suggester = _Replayer(given, fallback)
        values = self.sample(suggester)
        return Replay(
            values=values,
            params=suggester.params,
            distributions=suggester.distributions,
            missing=tuple(suggester.missing),
            outside=tuple(suggester.outside),
            extra=tuple(name for name in given if name not in suggester.asked),
        )

    def fingerprint(self) -> str:
        blob = json.dumps(self.raw, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def extreme_configs(self, base: Mapping[str, Any], source: str) -> list[TrainConfig]:
        """The fixed settings ``base`` with each parameter at each of its extremes (bounds,
        every choice, every branch), one parameter at a time: what ``parse_space`` validated,
        for checks that need the values (every model a study can pick has its weights)."""
        return [
            train_config_from_dict(apply_overrides(base, [(path, value)]), source)
            for path, param in self.params.items()
            for value in param.extremes()
        ]

    def corners(self, prefix: str) -> list[dict[str, Any]]:
        """Every combination of the bounds of the parameters at or under ``prefix``.

        A float or int contributes its low and high, a choice each choice, a conditional
        component each branch with its own parameters at every combination of their bounds.
        Returns dotted path -> value mappings (one per corner; ``[{}]`` when nothing is
        searched there): the extremes a check of a whole component (its schedule, say) needs.
        """
        axes: list[list[tuple[str, Any]]] = []
        for path, param in self.params.items():
            if path != prefix and not path.startswith(prefix + "."):
                continue
            axes.append([(path, value) for value in _corner_values(param)])
        return [dict(combo) for combo in itertools.product(*axes)]

    def categorical_choices(self) -> dict[str, tuple[Any, ...]]:
        """Every categorical parameter's name as suggested, with its choices in order.

        Optuna cannot change a choice list within one study: a joining worker whose lists
        differ is refused up front (:func:`hpo.study.open_study`).
        """
        out: dict[str, tuple[Any, ...]] = {}
        for path, param in self.params.items():
            if isinstance(param, Choice):
                out[path] = tuple(param.choices)
            elif isinstance(param, Conditional):
                out[path] = tuple(param.branches)
                for branch, inner in param.branches.items():
                    for key, spec in inner.items():
                        if isinstance(spec, Choice):
                            out[f"{path}[{branch}].{key}"] = tuple(spec.choices)
        return out

    def grid(self) -> dict[str, list[Any]]:
        """The grid of a space without continuous or conditional parameters (grid sampler)."""
        out: dict[str, list[Any]] = {}
        for path, param in self.params.items():
            if isinstance(param, Choice):
                out[path] = list(param.choices)
            elif isinstance(param, IntParam) and not param.log:
                out[path] = list(range(param.low, param.high + 1, param.step))
            else:
                raise ConfigError(
                    f"search_space.{path}: the grid sampler takes only 'choice' and linear 'int' "
                    "parameters; use tpe, random or cmaes for this space"
                )
        return out


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()
"""What a replay's ``fallback`` returns for a name it has no value for."""


@dataclass(frozen=True)
class Misfit:
    """A given value its distribution does not hold: ``accepted`` says what it holds."""

    name: str
    value: Any
    accepted: str

    def describe(self) -> str:
        """``0.5 is outside float [0.0001, 0.1] log`` or ``'rmsprop' is not one of choice
        sgd | adam``."""
        verb = "is not one of" if self.accepted.startswith("choice") else "is outside"
        return f"{self.value!r} {verb} {self.accepted}"


@dataclass(frozen=True)
class Replay:
    """The outcome of :meth:`Space.replay`.

    Attributes:
        values: Dotted path -> value, as :meth:`Space.sample` returns them.
        params: Optuna parameter name -> value, for every name that had a fitting value.
        distributions: The distribution of each name in ``params`` (this space's).
        missing: Names the walk asked for that had no value.
        outside: Values their distribution does not hold.
        extra: Names given that this space never asks for (with the values given).
    """

    values: dict[str, Any]
    params: dict[str, Any]
    distributions: dict[str, BaseDistribution]
    missing: tuple[str, ...]
    outside: tuple[Misfit, ...]
    extra: tuple[str, ...]

    @property
    def fits(self) -> bool:
        return not (self.missing or self.outside or self.extra)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _holds(dist: BaseDistribution, value: Any) -> bool:
    """Whether ``dist`` holds ``value`` exactly (bounds, step grid, choices, types)."""
    if isinstance(dist, CategoricalDistribution):
        return any(type(c) is type(value) and c == value for c in dist.choices) or (
            _number(value) and any(_number(c) and c == value for c in dist.choices)
        )
    if isinstance(dist, IntDistribution):
        if not isinstance(value, int) or isinstance(value, bool):
            return False
        return dist.low <= value <= dist.high and (value - dist.low) % dist.step == 0
    if isinstance(dist, FloatDistribution):
        if not _number(value) or not math.isfinite(float(value)):
            return False
        if not dist.low <= float(value) <= dist.high:
            return False
        if dist.step is None:
            return True
        steps = (float(value) - dist.low) / dist.step
        return abs(steps - round(steps)) < 1e-8
    return False


class _Replayer:
    """A suggester that answers from given values, noting what did not fit."""

    def __init__(self, given: Mapping[str, Any], fallback: Callable[[str], Any] | None) -> None:
        self.given = given
        self.fallback = fallback
        self.params: dict[str, Any] = {}
        self.distributions: dict[str, BaseDistribution] = {}
        self.asked: set[str] = set()
        self.missing: list[str] = []
        self.outside: list[Misfit] = []

    def _take(self, name: str, dist: BaseDistribution, accepted: str, placeholder: Any) -> Any:
        self.asked.add(name)
        if name in self.given:
            value = self.given[name]
        elif self.fallback is not None:
            value = self.fallback(name)
        else:
            value = MISSING
        if value is MISSING:
            self.missing.append(name)
            return placeholder
        if not _holds(dist, value):
            self.outside.append(Misfit(name, value, accepted))
            return placeholder
        if isinstance(dist, FloatDistribution):
            value = float(value)
        elif isinstance(dist, CategoricalDistribution):
            value = next(c for c in dist.choices if c == value)
        self.params[name] = value
        self.distributions[name] = dist
        return value

    def suggest_float(
        self, name: str, low: float, high: float, *, step: float | None = None, log: bool = False
    ) -> float:
        dist = FloatDistribution(low, high, log=log, step=step)
        described = FloatParam(low, high, log=log, step=step).describe()
        return float(self._take(name, dist, described, low))

    def suggest_int(
        self, name: str, low: int, high: int, *, step: int = 1, log: bool = False
    ) -> int:
        dist = IntDistribution(low, high, log=log, step=step)
        described = IntParam(low, high, log=log, step=step).describe()
        return int(self._take(name, dist, described, low))

    def suggest_categorical(self, name: str, choices: Any) -> Any:
        dist = CategoricalDistribution(list(choices))
        return self._take(name, dist, Choice(tuple(choices)).describe(), choices[0])


def _lookup(tree: Any, path: str) -> Any:
    """The value at dotted ``path`` of nested mappings, or MISSING."""
    for key in path.split("."):
        if not isinstance(tree, Mapping) or key not in tree:
            return MISSING
        tree = tree[key]
    return tree


def enqueue_params(
    space: Space, entry: Any, *, where: str, fixed: Mapping[str, Any]
) -> dict[str, Any]:
    """One ``study.enqueue`` entry as the Optuna parameters ``study.enqueue_trial`` takes.

    An entry maps searched keys (the dotted keys of ``search_space``) to values: a plain value
    for a float, int or choice; for a conditional choice the branch name, or a mapping
    ``{name: BRANCH, PARAM: value, ...}`` of the branch and some of its searched parameters.
    Keys (and branch parameters) left out are sampled as usual.

    Args:
        space: The parsed search space.
        entry: The entry as written.
        where: ``<file>: study.enqueue[i]``, the start of every error.
        fixed: The fixed settings (:meth:`StudySpec.fixed_dict`), to name a key that is one.

    Raises:
        ConfigError: naming the entry, the key and what is accepted.
    """
    searched = ", ".join(space.params) or "none"
    if not isinstance(entry, Mapping) or not entry:
        raise ConfigError(
            f"{where}: an entry maps searched keys to values (e.g. "
            f"{{train.optimizer.lr: 0.001}}), got {entry!r}; searched keys: {searched}"
        )
    params: dict[str, Any] = {}
    for key, value in entry.items():
        param = space.params.get(str(key))
        if param is None:
            found = _lookup(fixed, str(key))
            what = (
                f"{key} is a fixed setting ({found!r}), not searched"
                if found is not MISSING
                else f"unknown key {key!r}"
            )
            raise ConfigError(f"{where}: {what}; enqueue takes searched keys: {searched}")
        if not isinstance(param, Conditional):
            params[key] = value
            continue
        branches = ", ".join(param.branches)
        chosen = value.get("name") if isinstance(value, Mapping) else value
        if isinstance(value, Mapping) and "name" not in value:
            raise ConfigError(
                f"{where}: {key}: a mapping needs the branch as name (e.g. "
                f"{{name: {next(iter(param.branches))}, ...}}); branches: {branches}"
            )
        if not isinstance(chosen, str) or chosen not in param.branches:
            raise ConfigError(f"{where}: {key}: unknown branch {chosen!r}; branches: {branches}")
        params[key] = chosen
        inner = param.branches[chosen]
        for sub, sub_value in value.items() if isinstance(value, Mapping) else ():
            if sub == "name":
                continue
            spec = inner.get(sub)
            if not _is_param(spec):
                known = ", ".join(k for k, v in inner.items() if _is_param(v)) or "none"
                what = (
                    f"parameter {sub!r} is fixed at {spec!r} in branch {chosen}"
                    if sub in inner
                    else f"branch {chosen} has no parameter {sub!r}"
                )
                raise ConfigError(
                    f"{where}: {key}: {what}; searched parameters of {chosen}: {known}"
                )
            params[f"{key}[{chosen}].{sub}"] = sub_value
    replayed = space.replay(params)
    for misfit in replayed.outside:
        raise ConfigError(f"{where}: {misfit.name}: {misfit.describe()}")
    return {name: replayed.params[name] for name in params}


_KINDS = ("float", "int", "choice")
_OPTIONS = {"float": {"log", "step"}, "int": {"log", "step"}, "choice": set()}


def _is_spec(value: Any) -> bool:
    return isinstance(value, Mapping) and len(set(value) & set(_KINDS)) == 1


def _parse_param(where: str, spec: Any, *, allow_conditional: bool) -> Param:
    if not isinstance(spec, Mapping) or not set(spec) & set(_KINDS):
        raise ConfigError(
            f"{where}: expected one of {{float: [low, high]}}, {{int: [low, high]}} or "
            f"{{choice: [...]}}, got {spec!r}"
        )
    kinds = [k for k in _KINDS if k in spec]
    if len(kinds) > 1:
        raise ConfigError(f"{where}: give only one of float, int or choice, got {kinds}")
    kind = kinds[0]
    extra = set(spec) - {kind} - _OPTIONS[kind]
    if extra:
        known = ", ".join(sorted(_OPTIONS[kind])) or "none"
        raise ConfigError(
            f"{where}: unknown option {sorted(extra)[0]!r} for {kind}; known: {known}"
        )
    bounds = spec[kind]
    if kind == "choice":
        if isinstance(bounds, Mapping):
            if not allow_conditional:
                raise ConfigError(f"{where}: conditional choices cannot nest")
            if not bounds:
                raise ConfigError(f"{where}: choice needs at least one branch")
            branches: dict[str, dict[str, Any]] = {}
            for branch, params in bounds.items():
                params = params or {}
                if not isinstance(params, Mapping):
                    raise ConfigError(f"{where}.{branch}: branch parameters must be a mapping")
                branches[str(branch)] = {
                    key: (
                        _parse_param(f"{where}.{branch}.{key}", value, allow_conditional=False)
                        if _is_spec(value)
                        else value
                    )
                    for key, value in params.items()
                }
            return Conditional(branches)
        if not isinstance(bounds, list) or not bounds:
            raise ConfigError(f"{where}: choice needs a non-empty list (or a mapping of branches)")
        for value in bounds:
            if value is not None and not isinstance(value, (bool, int, float, str)):
                raise ConfigError(
                    f"{where}: choice values must be numbers, strings, booleans or null; "
                    f"got {value!r} (use a mapping of branches for components)"
                )
        return Choice(tuple(bounds))
    if not (isinstance(bounds, list) and len(bounds) == 2):
        raise ConfigError(f"{where}: {kind} needs [low, high], got {bounds!r}")
    low, high = bounds
    log = bool(spec.get("log", False))
    step = spec.get("step")
    number = (int,) if kind == "int" else (int, float)
    if not all(isinstance(b, number) and not isinstance(b, bool) for b in bounds):
        raise ConfigError(f"{where}: {kind} bounds must be {kind}s, got {bounds!r}")
    if not low < high:
        raise ConfigError(f"{where}: low must be below high, got [{low}, {high}]")
    if log and low <= 0:
        raise ConfigError(f"{where}: a log range needs low > 0, got {low}")
    if log and step is not None and kind == "float":
        raise ConfigError(f"{where}: 'step' and 'log' cannot be combined")
    if kind == "int":
        if step is not None and (not isinstance(step, int) or step < 1):
            raise ConfigError(f"{where}: int step must be a positive integer, got {step!r}")
        return IntParam(int(low), int(high), log=log, step=int(step or 1))
    if step is not None and (not isinstance(step, (int, float)) or step <= 0):
        raise ConfigError(f"{where}: float step must be positive, got {step!r}")
    if not all(math.isfinite(float(b)) for b in bounds):
        raise ConfigError(f"{where}: bounds must be finite, got {bounds!r}")
    return FloatParam(float(low), float(high), log=log, step=None if step is None else float(step))


def parse_space(raw: Mapping[str, Any], *, base: Mapping[str, Any], source: str) -> Space:
    """Parse and check a search space against the fixed settings ``base``.

    Every value a parameter can take (bounds, every choice, every branch) is put into the fixed
    settings and validated as a TrainConfig, so an unknown key, an unknown loss or an out-of-range
    bound is refused before any trial starts.

    Raises:
        ConfigError: naming ``source`` and the ``search_space`` key at fault.
    """
    params: dict[str, Param] = {}
    for path, spec in raw.items():
        where = f"{source}: search_space.{path}"
        if not isinstance(path, str) or not path.startswith(("data.", "train.")):
            raise ConfigError(
                f"{where}: keys are dotted paths under data. or train. (e.g. train.optimizer.lr)"
            )
        param = _parse_param(where, spec, allow_conditional=True)
        for value in param.extremes():
            try:
                train_config_from_dict(apply_overrides(base, [(path, value)]), source)
            except ConfigError as exc:
                detail = str(exc).removeprefix(f"{source}: ")
                raise ConfigError(f"{where}: value {value!r} is not valid: {detail}") from None
        params[path] = param
    return Space(params=params, raw=dict(raw))
