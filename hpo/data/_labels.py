"""The 18-class label of the competition: mask x gender x age, and parsing of its raw values.

Every piece of label arithmetic (``label = mask * 6 + gender * 3 + age``) lives here: loading,
checking, splitting and the metrics ask this module rather than repeating it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "AGE_BOUNDS",
    "FACTORS",
    "IMAGE_STEMS",
    "MASK_CLASS_NAMES",
    "MASK_OF_STEM",
    "NUM_MASK_CLASSES",
    "age_class",
    "decode_factors",
    "decode_label",
    "encode_label",
    "parse_age",
    "parse_gender",
    "person_class",
]

FACTORS: dict[str, list[str]] = {
    "mask": ["wear", "incorrect", "not_wear"],
    "gender": ["male", "female"],
    "age": ["<30", "30-59", ">=60"],
}
"""Names of the values of each factor, in label order."""

NUM_MASK_CLASSES = 18

# label = mask * _MASK_STRIDE + gender * _GENDER_STRIDE + age
_GENDER_STRIDE = len(FACTORS["age"])
_MASK_STRIDE = len(FACTORS["gender"]) * _GENDER_STRIDE

AGE_BOUNDS = (30, 60)
"""Ages below the first bound are class 0, below the second class 1, the rest class 2."""

MASK_OF_STEM: dict[str, int] = {
    "mask1": 0,
    "mask2": 0,
    "mask3": 0,
    "mask4": 0,
    "mask5": 0,
    "incorrect_mask": 1,
    "normal": 2,
}
"""File name (without extension) of each image of a person folder -> mask class."""

IMAGE_STEMS: tuple[str, ...] = tuple(MASK_OF_STEM)
"""The seven images every person folder holds, in the order samples are listed."""


def encode_label(mask: int, gender: int, age: int) -> int:
    """The class index ``mask * 6 + gender * 3 + age``.

    Args:
        mask: 0 wear, 1 incorrect, 2 not wear.
        gender: 0 male, 1 female.
        age: 0 below 30, 1 from 30 to 59, 2 from 60.

    Raises:
        ValueError: a factor is out of range.
    """
    if not (0 <= mask < 3 and 0 <= gender < 2 and 0 <= age < 3):
        raise ValueError(f"factors out of range: mask={mask}, gender={gender}, age={age}")
    return mask * _MASK_STRIDE + gender * _GENDER_STRIDE + age


def _split(label: Any) -> tuple[Any, Any, Any]:
    # One divmod chain for a single label and (elementwise) for an array of labels.
    mask, rest = divmod(label, _MASK_STRIDE)
    gender, age = divmod(rest, _GENDER_STRIDE)
    return mask, gender, age


def decode_label(label: int) -> tuple[int, int, int]:
    """The ``(mask, gender, age)`` factors of a class index in ``0..17``.

    Raises:
        ValueError: ``label`` is not a class index.
    """
    if not 0 <= label < NUM_MASK_CLASSES:
        raise ValueError(f"label must be in 0..{NUM_MASK_CLASSES - 1}, got {label}")
    mask, gender, age = _split(int(label))
    return int(mask), int(gender), int(age)


def decode_factors(labels: Any) -> dict[str, np.ndarray]:
    """The factors of many class indices at once (vectorised :func:`decode_label`).

    Args:
        labels: Class indices in ``0..17`` (any integer array-like).

    Returns:
        Factor name (``mask``, ``gender``, ``age``, the keys of :data:`FACTORS`) -> ``int64``
        array of that factor's values, in ``labels`` order.

    Raises:
        ValueError: a label is not a class index.
    """
    array = np.asarray(labels, dtype=np.int64)
    if array.size and (array.min() < 0 or array.max() >= NUM_MASK_CLASSES):
        raise ValueError(
            f"labels must be in 0..{NUM_MASK_CLASSES - 1}, got {array.min()}..{array.max()}"
        )
    return dict(zip(FACTORS, _split(array), strict=True))


def _class_name(label: int) -> str:
    mask, gender, age = decode_label(label)
    return f"{FACTORS['mask'][mask]}/{FACTORS['gender'][gender]}/{FACTORS['age'][age]}"


MASK_CLASS_NAMES: list[str] = [_class_name(i) for i in range(NUM_MASK_CLASSES)]
"""Readable names of the 18 classes, e.g. ``"wear/male/<30"``."""


def age_class(age: int) -> int:
    """Age group of an age in years: 0 below 30, 1 from 30 to 59, 2 from 60."""
    return sum(age >= bound for bound in AGE_BOUNDS)


def person_class(gender: int, age: int) -> int:
    """The gender x age-group class of a person, ``0..5``, which K-fold splits stratify on.

    It is the person's label without its mask factor (the label of their ``wear`` images).

    Args:
        gender: 0 male, 1 female.
        age: Age in years.
    """
    return encode_label(0, gender, age_class(age))


def parse_gender(text: str) -> int:
    """``"male"`` -> 0, ``"female"`` -> 1 (case and surrounding spaces ignored).

    Raises:
        ValueError: anything else, with a message saying what is accepted.
    """
    value = text.strip().lower()
    if value not in FACTORS["gender"]:
        raise ValueError(f"unparseable gender {text!r} (expected male or female)")
    return FACTORS["gender"].index(value)


def parse_age(text: str) -> int:
    """An age in whole years from ``"45"`` (or ``"45.0"``), between 0 and 130.

    Raises:
        ValueError: not a whole number of years in range.
    """
    value = text.strip()
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"unparseable age {text!r} (expected whole years)") from None
    if not number.is_integer() or not 0 <= number <= 130:
        raise ValueError(f"unparseable age {text!r} (expected whole years from 0 to 130)")
    return int(number)
