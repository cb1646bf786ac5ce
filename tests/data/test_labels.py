"""The 18-class label: encoding, decoding, names and raw-value parsing."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from hpo.data import FACTORS, MASK_CLASS_NAMES, decode_factors, decode_label, encode_label
from hpo.data._labels import age_class, parse_age, parse_gender, person_class


def test_factors_are_the_competition_ones() -> None:
    assert FACTORS == {
        "mask": ["wear", "incorrect", "not_wear"],
        "gender": ["male", "female"],
        "age": ["<30", "30-59", ">=60"],
    }


@pytest.mark.parametrize("label", range(18))
def test_every_label_round_trips(label: int) -> None:
    mask, gender, age = decode_label(label)
    assert label == mask * 6 + gender * 3 + age
    assert encode_label(mask, gender, age) == label


def test_encoding_is_a_bijection_onto_0_to_17() -> None:
    combos = list(itertools.product(range(3), range(2), range(3)))
    labels = [encode_label(*combo) for combo in combos]
    assert sorted(labels) == list(range(18))
    assert [decode_label(label) for label in labels] == combos


def test_decode_factors_is_decode_label_for_many_labels() -> None:
    labels = np.random.default_rng(0).integers(0, 18, 200)
    factors = decode_factors(labels)
    assert list(factors) == list(FACTORS)
    assert all(values.dtype == np.int64 and values.shape == (200,) for values in factors.values())
    for i, label in enumerate(labels.tolist()):
        assert decode_label(label) == tuple(int(factors[name][i]) for name in FACTORS)
    assert [len(v) for v in decode_factors([]).values()] == [0, 0, 0]


@pytest.mark.parametrize("bad", [[-1], [0, 18]])
def test_decode_factors_rejects_out_of_range(bad: list[int]) -> None:
    with pytest.raises(ValueError, match=r"0\.\.17"):
        decode_factors(bad)


@pytest.mark.parametrize(
    ("gender", "age", "stratum"), [(0, 18, 0), (0, 45, 1), (0, 60, 2), (1, 29, 3), (1, 60, 5)]
)
def test_person_class_is_the_label_without_the_mask(gender: int, age: int, stratum: int) -> None:
    assert person_class(gender, age) == stratum == encode_label(0, gender, age_class(age))


@pytest.mark.parametrize(
    ("factors", "label", "name"),
    [
        ((0, 0, 0), 0, "wear/male/<30"),
        ((0, 1, 1), 4, "wear/female/30-59"),
        ((1, 0, 2), 8, "incorrect/male/>=60"),
        ((2, 0, 0), 12, "not_wear/male/<30"),
        ((2, 1, 2), 17, "not_wear/female/>=60"),
    ],
)
def test_known_classes(factors: tuple[int, int, int], label: int, name: str) -> None:
    assert encode_label(*factors) == label
    assert MASK_CLASS_NAMES[label] == name


@pytest.mark.parametrize("bad", [(3, 0, 0), (0, 2, 0), (0, 0, 3), (-1, 0, 0)])
def test_encode_rejects_out_of_range(bad: tuple[int, int, int]) -> None:
    with pytest.raises(ValueError, match="out of range"):
        encode_label(*bad)


@pytest.mark.parametrize("bad", [-1, 18])
def test_decode_rejects_out_of_range(bad: int) -> None:
    with pytest.raises(ValueError, match=r"0\.\.17"):
        decode_label(bad)


@pytest.mark.parametrize(
    ("age", "group"), [(0, 0), (18, 0), (29, 0), (30, 1), (45, 1), (59, 1), (60, 2), (90, 2)]
)
def test_age_groups(age: int, group: int) -> None:
    assert age_class(age) == group


@pytest.mark.parametrize(("text", "value"), [("male", 0), ("female", 1), (" Female ", 1)])
def test_parse_gender(text: str, value: int) -> None:
    assert parse_gender(text) == value


@pytest.mark.parametrize("text", ["", "m", "woman", "2"])
def test_parse_gender_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="unparseable gender"):
        parse_gender(text)


@pytest.mark.parametrize(("text", "value"), [("45", 45), (" 60 ", 60), ("18.0", 18)])
def test_parse_age(text: str, value: int) -> None:
    assert parse_age(text) == value


@pytest.mark.parametrize("text", ["", "forty", "45.5", "-3", "200", "nan"])
def test_parse_age_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="unparseable age"):
        parse_age(text)
