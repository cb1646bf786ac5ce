"""Label corrections for the competition layout, read from a small CSV file at load time.

The file has a header line with the columns ``target,field,value`` (other columns, such as a
``note``, are ignored) and one correction per line::

    target,field,value,note
    006359,gender,male,id: every folder with this id
    003397_female_Asian_20,age,21,one folder
    000020_female_Asian_50,swap,incorrect_mask/normal,the two photos were exchanged

- ``target``: a person folder name, or an id; an id applies to every folder with that id
  (``003397`` corrects both ``003397_female_Asian_19`` and ``003397_female_Asian_20``). A folder
  name wins over an id when a string is both.
- ``field`` and ``value``:
    - ``gender``: ``male`` or ``female``.
    - ``age``: whole years; the age group follows from it.
    - ``swap``: two image names of the folder separated by ``/`` (``incorrect_mask/normal``);
      the two files exchange their labels.
- Blank lines and lines whose ``target`` starts with ``#`` are skipped.

An unknown target or field, a bad value, or a second correction of the same field of the same
folder is an error naming the file and line. The file's content is part of the data fingerprint.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hpo.data._labels import IMAGE_STEMS, parse_age, parse_gender
from hpo.data._mask import Person
from hpo.data._table import Problem, read_csv

__all__ = ["CORRECTION_FIELDS", "Correction", "apply_corrections", "read_corrections"]

CORRECTION_FIELDS = ("gender", "age", "swap")


@dataclass(frozen=True)
class Correction:
    """One validated line of a corrections file."""

    file: Path
    line: int
    target: str
    field: str
    value: int | tuple[str, str]


def _parse_value(field: str, text: str) -> int | tuple[str, str]:
    if field == "gender":
        return parse_gender(text)
    if field == "age":
        return parse_age(text)
    sep = "<->" if "<->" in text else "/"
    parts = [p.strip() for p in text.split(sep)]
    if len(parts) != 2 or parts[0] == parts[1] or not set(parts) <= set(IMAGE_STEMS):
        raise ValueError(
            f"invalid swap {text!r} (expected two different image names joined by '/', "
            f"e.g. incorrect_mask/normal; names: {', '.join(IMAGE_STEMS)})"
        )
    return parts[0], parts[1]


def read_corrections(path: Path, problems: list[Problem]) -> list[Correction]:
    """Parse a corrections file; problems (with file and line) are appended to ``problems``."""
    path = Path(path).absolute()
    table = read_csv(path, ("target", "field", "value"), problems, comments=True)
    if table is None:
        return []
    out = []
    for row in table[0]:
        target, field, value = (row.values[k] for k in ("target", "field", "value"))
        if not target:
            problems.append(Problem(path, "empty target", line=row.line))
            continue
        if field not in CORRECTION_FIELDS:
            known = ", ".join(CORRECTION_FIELDS)
            problems.append(Problem(path, f"unknown field {field!r} (known: {known})", row.line))
            continue
        try:
            parsed = _parse_value(field, value)
        except ValueError as exc:
            problems.append(Problem(path, str(exc), line=row.line))
            continue
        out.append(Correction(path, row.line, target, field, parsed))
    return out


def apply_corrections(
    people: list[Person], corrections: list[Correction], problems: list[Problem]
) -> int:
    """Apply ``corrections`` to ``people`` in place.

    Returns:
        How many person folders were changed.
    """
    by_folder = {p.folder: p for p in people}
    by_id: dict[str, list[Person]] = {}
    for person in people:
        by_id.setdefault(person.id, []).append(person)
    done: dict[tuple[str, str], int] = {}
    changed: set[str] = set()
    for fix in corrections:
        targets = [by_folder[fix.target]] if fix.target in by_folder else by_id.get(fix.target)
        if not targets:
            problems.append(
                Problem(
                    fix.file,
                    f"unknown target {fix.target!r} (no person folder or id in train.csv)",
                    line=fix.line,
                )
            )
            continue
        for person in targets:
            key = (person.folder, fix.field)
            if key in done:
                problems.append(
                    Problem(
                        fix.file,
                        f"{fix.field} of {person.folder} already corrected at line {done[key]}",
                        line=fix.line,
                    )
                )
                continue
            done[key] = fix.line
            if isinstance(fix.value, int):
                setattr(person, fix.field, fix.value)  # gender or age
            else:
                a, b = fix.value
                if a not in person.images or b not in person.images:
                    problems.append(
                        Problem(fix.file, f"{person.folder} lacks {a} or {b}", line=fix.line)
                    )
                    continue
                person.images[a], person.images[b] = person.images[b], person.images[a]
            changed.add(person.folder)
    return len(changed)
