"""Registries: schemas from signatures, errors that list the known names, declarations that
validate without loading the factories, and the real registries' declarations kept in step."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import pytest
from pydantic import Field

from hpo.components import LOSSES, MODELS, OPTIMIZERS, SCHEDULERS
from hpo.exceptions import ConfigError
from hpo.registry import Registry


@dataclass(frozen=True)
class Facts:
    unit: str = "epoch"


def _toy() -> Registry[tuple[Any, ...], Facts]:
    toy: Registry[tuple[Any, ...], Facts] = Registry(
        "toy", runtime=("size",), default_info=Facts()
    )

    @toy.register("box", info=Facts(unit="fold"))
    def box(size: int, *, depth: Annotated[int, Field(ge=1)] = 2, label: str = "x") -> tuple:
        return (size, depth, label)

    @toy.register("ball")
    def ball(*, radius: float) -> tuple:
        return (radius,)

    return toy


def test_parameters_come_from_the_signature() -> None:
    toy = _toy()
    assert toy.names() == ["ball", "box"] and "box" in toy and "cube" not in toy
    assert toy.parameters("box") == {"depth": 2, "label": "x"}  # the runtime size is not one
    assert toy.parameters("ball") == {"radius": ...}
    assert toy.validate("box", {"depth": 3}) == {"depth": 3, "label": "x"}
    assert toy.create("box", size=5, depth=4) == (5, 4, "x")
    assert toy.info("box") == Facts(unit="fold") and toy.info("ball") == Facts()


def test_errors_name_the_key_and_what_is_accepted() -> None:
    toy = _toy()
    with pytest.raises(ConfigError, match=r"^train.toy: unknown toy 'cube'; known: ball, box$"):
        toy.validate("cube", {}, where="train.toy")
    with pytest.raises(ConfigError, match=r"^t.colour: unknown parameter of toy 'box'; known: "):
        toy.validate("box", {"colour": "red"}, where="t")
    with pytest.raises(ConfigError, match=r"^t.depth: .*greater than or equal to 1 \(got 0\)"):
        toy.validate("box", {"depth": 0}, where="t")
    with pytest.raises(ConfigError, match="unknown toy 'cube'"):
        toy.check_name("cube")


def test_bad_registrations_are_refused() -> None:
    toy = _toy()
    with pytest.raises(ValueError, match="registered twice"):
        toy.register("box")(lambda *, depth=1: ())
    with pytest.raises(TypeError, match="must be keyword-only"):
        toy.register("cone")(lambda height: ())
    bare: Registry[tuple[Any, ...], Facts] = Registry("bare")
    with pytest.raises(TypeError, match="registered without info"):
        bare.register("x")(lambda: ())
    with pytest.raises(TypeError, match="takes no declarations"):
        toy.declare("cone")(lambda: None)


# ---------------------------------------------------------------------------------------------
# Declarations: this module declares the entries of a registry whose loader cannot be imported,
# so every lookup below that passes proves the factories were never loaded.

DECLARED: Registry[tuple[Any, ...], Facts] = Registry(
    "shape",
    runtime=("size",),
    loader="hpo.no_such_module",
    declarations=__name__,
    default_info=Facts(),
)


@DECLARED.declare("box", info=Facts(unit="fold"))
def _box(*, depth: Annotated[int, Field(ge=1)] = 2) -> None:
    """A box."""


@DECLARED.declare("ball")
def _ball(*, radius: float = 1.0) -> None:
    """A ball."""


def test_declarations_answer_without_loading_the_factories() -> None:
    assert DECLARED.names() == ["ball", "box"] and "box" in DECLARED
    assert DECLARED.info("box") == Facts(unit="fold")
    assert DECLARED.parameters("ball") == {"radius": 1.0}
    assert DECLARED.validate("box", {"depth": 3}) == {"depth": 3}
    with pytest.raises(ConfigError, match="depth"):
        DECLARED.validate("box", {"depth": 0})
    with pytest.raises(ConfigError, match="unknown shape 'cone'; known: ball, box"):
        DECLARED.check_name("cone")


def _declared() -> Registry[tuple[Any, ...], Facts]:
    shapes: Registry[tuple[Any, ...], Facts] = Registry(
        "shape", runtime=("size",), declarations=__name__, default_info=Facts()
    )
    shapes.declare("box", info=Facts(unit="fold"))(_box)
    return shapes


def test_a_factory_must_match_its_declaration() -> None:
    shapes = _declared()

    def box(size: int, *, depth: Annotated[int, Field(ge=1)] = 2) -> tuple:
        return (size, depth)

    shapes.register("box")(box)
    assert shapes.create("box", size=3) == (3, 2) and shapes.info("box") == Facts(unit="fold")

    shapes = _declared()
    with pytest.raises(TypeError, match=r"'box': the factory's parameters .* differ"):
        shapes.register("box")(lambda size, *, depth=2: (size, depth))  # no ge=1

    def other_default(size: int, *, depth: Annotated[int, Field(ge=1)] = 3) -> tuple:
        return ()

    with pytest.raises(TypeError, match=r"'box': the factory's parameters .* differ"):
        shapes.register("box")(other_default)
    with pytest.raises(TypeError, match=r"info .* differs from the declared"):
        shapes.register("box", info=Facts(unit="epoch"))(box)
    with pytest.raises(TypeError, match="'cone': not declared in test_registry"):
        shapes.register("cone")(lambda size: ())


def test_a_declared_entry_without_a_factory_cannot_be_built() -> None:
    with pytest.raises(TypeError, match="'box' is declared but no factory registers it"):
        _declared().create("box", size=1)


# ---------------------------------------------------------------------------------------------
# The real registries: every declaration has its factory.

TRAINING = [MODELS, LOSSES, OPTIMIZERS, SCHEDULERS]


@pytest.mark.parametrize("registry", TRAINING, ids=[r.kind for r in TRAINING])
def test_every_declared_entry_has_a_factory(registry: Registry[Any, Any]) -> None:
    for name in registry.names():
        entry = registry.entry(name)  # loads the factories (torch)
        assert entry.name == name and callable(entry.factory)
        assert entry.info == registry.info(name)
