"""Reader of the competition layout: ``train/train.csv`` + person folders, ``eval/info.csv``.

Quirks of the real data it survives: ids with suffixes (``001498-1``) and ids shared by two
folders (rows are keyed by folder, never by id), ``.jpg``/``.jpeg``/``.png`` mixed inside one
folder, and macOS ``._*`` files (like every name starting with a dot, and ``Thumbs.db`` /
``desktop.ini``, they are operating-system metadata and skipped).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hpo.data._labels import (
    IMAGE_STEMS,
    MASK_CLASS_NAMES,
    MASK_OF_STEM,
    age_class,
    encode_label,
    parse_age,
    parse_gender,
    person_class,
)
from hpo.data._table import EvalSet, Problem, Samples, raise_problems, read_csv

__all__ = [
    "IMAGE_EXTENSIONS",
    "Person",
    "TrainScan",
    "find_eval_dir",
    "find_train_dir",
    "is_metadata",
    "load_eval",
    "samples_from_people",
    "scan_eval",
    "scan_train",
]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
"""Extensions of the images of a person folder (any letter case)."""

TRAIN_COLUMNS = ("id", "gender", "age", "path")
EVAL_COLUMNS = ("ImageID", "ans")
_METADATA_NAMES = frozenset({"thumbs.db", "desktop.ini"})
# The folder name repeats the row: {id}_{gender}_{race}_{age}; the id may carry a suffix.
_FOLDER_NAME = re.compile(r"^(?P<id>[^_]+)_(?P<gender>[^_]+)_(?P<race>[^_]+)_(?P<age>[^_]+)$")


def is_metadata(name: str) -> bool:
    """Whether a directory entry is operating-system metadata (``._x``, ``.DS_Store``, ...)."""
    return name.startswith(".") or name.lower() in _METADATA_NAMES


@dataclass
class Person:
    """One row of ``train.csv`` whose folder exists, with the images found in the folder.

    Attributes:
        folder: The folder name (the group).
        id: The ``id`` column, not unique.
        gender: 0 male, 1 female.
        age: Age in years.
        line: Line of the row in ``train.csv``.
        images: Image name without extension (``mask1`` .. ``normal``) -> absolute path.
    """

    folder: str
    id: str
    gender: int
    age: int
    line: int
    images: dict[str, Path] = field(default_factory=dict)

    @property
    def stratum(self) -> int:
        return person_class(self.gender, self.age)


@dataclass
class TrainScan:
    """What was found in a ``train`` folder, and every problem with it.

    Attributes:
        train_dir: The folder holding ``train.csv`` and ``images/``.
        people: Rows with a readable gender and age whose folder exists, in file order.
        problems: Everything wrong, in the order found.
        unlabelled_images: Images in listed folders whose row has an unreadable gender or age.
    """

    train_dir: Path
    people: list[Person]
    problems: list[Problem]
    unlabelled_images: int = 0


def find_train_dir(root: Path) -> Path:
    """``root/train`` for a data root, or ``root`` itself when it holds ``train.csv``."""
    if not (root / "train").is_dir() and (root / "train.csv").is_file():
        return root
    return root / "train"


def find_eval_dir(path: Path) -> Path:
    """``path`` when it holds ``info.csv``, else ``path/eval`` (a data root was given)."""
    if (path / "info.csv").is_file() or not (path / "eval").is_dir():
        return path
    return path / "eval"


def _list_dir(path: Path) -> list[os.DirEntry[str]]:
    with os.scandir(path) as entries:
        return sorted((e for e in entries if not is_metadata(e.name)), key=lambda e: e.name)


def _scan_person(folder: Path, person: Person, problems: list[Problem]) -> None:
    try:
        entries = _list_dir(folder)
    except OSError as exc:
        problems.append(Problem(folder, f"cannot list folder: {exc.strerror or exc}"))
        return
    found: dict[str, list[str]] = {}
    for entry in entries:
        stem, ext = os.path.splitext(entry.name)
        if entry.is_dir():
            problems.append(Problem(folder / entry.name, "unexpected folder in a person folder"))
        elif stem in MASK_OF_STEM and ext.lower() in IMAGE_EXTENSIONS:
            found.setdefault(stem, []).append(entry.name)
        else:
            expected = "mask1..mask5, incorrect_mask, normal as .jpg/.jpeg/.png"
            problems.append(Problem(folder / entry.name, f"unexpected file (expected {expected})"))
    for stem in IMAGE_STEMS:
        names = found.get(stem)
        if not names:
            problems.append(Problem(folder, f"missing image {stem} (.jpg, .jpeg or .png)"))
        elif len(names) > 1:
            problems.append(Problem(folder, f"several files for {stem}: {', '.join(names)}"))
        else:
            person.images[stem] = folder / names[0]


def scan_train(root: Path) -> TrainScan:
    """Read ``train.csv`` and every person folder, collecting all problems instead of raising.

    Args:
        root: The data root (holding ``train/``) or the ``train`` folder itself.
    """
    train_dir = find_train_dir(Path(root).absolute())
    csv_path = train_dir / "train.csv"
    images_dir = train_dir / "images"
    problems: list[Problem] = []
    scan = TrainScan(train_dir, [], problems)
    table = read_csv(csv_path, TRAIN_COLUMNS, problems)
    if not images_dir.is_dir():
        problems.append(Problem(images_dir, "folder not found (expected one folder per person)"))
        return scan
    on_disk: dict[str, bool] = {}
    for entry in _list_dir(images_dir):
        on_disk[entry.name] = entry.is_dir()
    if table is None:
        return scan

    listed: dict[str, int] = {}
    for row in table[0]:
        folder = row.values["path"].strip("/")
        if not folder or "/" in folder or folder in (".", ".."):
            problems.append(Problem(csv_path, f"invalid path {folder!r}", line=row.line))
            continue
        if folder in listed:
            problems.append(
                Problem(
                    csv_path,
                    f"folder {folder!r} already listed at line {listed[folder]}",
                    line=row.line,
                )
            )
            continue
        listed[folder] = row.line
        labelled = True
        try:
            gender = parse_gender(row.values["gender"])
        except ValueError as exc:
            problems.append(Problem(csv_path, str(exc), line=row.line))
            labelled = False
        try:
            age = parse_age(row.values["age"])
        except ValueError as exc:
            problems.append(Problem(csv_path, str(exc), line=row.line))
            labelled = False
        if not on_disk.get(folder, False):
            what = "is not a folder" if folder in on_disk else "not found"
            problems.append(Problem(csv_path, f"person folder images/{folder} {what}", row.line))
            continue
        person = Person(folder, row.values["id"], 0, 0, row.line)
        _scan_person(images_dir / folder, person, problems)
        if not labelled:
            scan.unlabelled_images += len(person.images)
            continue
        person.gender, person.age = gender, age
        _check_folder_name(person, row.values, csv_path, problems)
        scan.people.append(person)

    for name, is_dir in on_disk.items():
        if name not in listed:
            what = "folder not listed in train.csv" if is_dir else "unexpected file"
            problems.append(Problem(images_dir / name, what))
    return scan


def _check_folder_name(
    person: Person, values: dict[str, str], csv_path: Path, problems: list[Problem]
) -> None:
    # Folder names repeat the row; a disagreement means one of them is wrong.
    match = _FOLDER_NAME.match(person.folder)
    if match is None:
        return
    for column in ("id", "gender", "age"):
        in_row, in_name = values[column], match[column]
        if column == "age":
            same = in_name.isdigit() and int(in_name) == person.age
        elif column == "gender":
            same = in_name.lower() == values["gender"].lower()
        else:
            same = in_name == in_row
        if not same:
            problems.append(
                Problem(
                    csv_path,
                    f"{column} {in_row!r} disagrees with folder name {person.folder!r}",
                    line=person.line,
                )
            )


def samples_from_people(people: list[Person]) -> Samples:
    """The table of every image of ``people``, in row order and ``mask1``..``normal`` order."""
    paths: list[Path] = []
    labels: list[int] = []
    groups: list[str] = []
    strata: list[int] = []
    for person in people:
        for stem in IMAGE_STEMS:
            path = person.images.get(stem)
            if path is None:
                continue
            paths.append(path)
            labels.append(encode_label(MASK_OF_STEM[stem], person.gender, age_class(person.age)))
            groups.append(person.folder)
            strata.append(person.stratum)
    return Samples(
        paths=paths,
        labels=np.asarray(labels, dtype=np.int64),
        groups=np.asarray(groups, dtype=object),
        strata=np.asarray(strata, dtype=np.int64),
        class_names=list(MASK_CLASS_NAMES),
        format="mask",
    )


def scan_eval(eval_dir: Path) -> tuple[EvalSet, list[Problem]]:
    """Read ``info.csv`` and check each listed image exists, collecting problems.

    Args:
        eval_dir: The folder holding ``info.csv`` and ``images/``.

    Returns:
        The rows whose image exists, and every problem.
    """
    eval_dir = Path(eval_dir).absolute()
    info = eval_dir / "info.csv"
    images_dir = eval_dir / "images"
    problems: list[Problem] = []
    ids: list[str] = []
    paths: list[Path] = []
    table = read_csv(info, EVAL_COLUMNS, problems)
    on_disk: dict[str, bool] = {}
    if images_dir.is_dir():
        on_disk = {entry.name: entry.is_file() for entry in _list_dir(images_dir)}
    else:
        problems.append(Problem(images_dir, "folder not found (expected the eval images)"))
    if table is not None:
        seen: dict[str, int] = {}
        for row in table[0]:
            image_id = row.values["ImageID"]
            if not image_id or "/" in image_id:
                problems.append(Problem(info, f"invalid ImageID {image_id!r}", line=row.line))
            elif image_id in seen:
                problems.append(
                    Problem(info, f"ImageID already listed at line {seen[image_id]}", row.line)
                )
            elif images_dir.is_dir() and not on_disk.get(image_id, False):
                problems.append(Problem(info, f"image images/{image_id} not found", row.line))
                seen[image_id] = row.line
            else:
                seen[image_id] = row.line
                ids.append(image_id)
                paths.append(images_dir / image_id)
        for name in on_disk:
            if name not in seen:
                problems.append(Problem(images_dir / name, "file not listed in info.csv"))
    return EvalSet(ids=ids, paths=paths, info_csv=info), problems


def load_eval(eval_dir: Path) -> EvalSet:
    """The images to predict, in ``info.csv`` order.

    Args:
        eval_dir: ``DATA/eval`` (holding ``info.csv`` and ``images/``) or the data root ``DATA``.

    Raises:
        DataError: ``info.csv`` is missing or malformed, or an image is missing or unlisted;
            the message names the file and line.
    """
    path = find_eval_dir(Path(eval_dir))
    data_root = path.parent if path.name == "eval" else path
    if not path.is_dir():
        raise_problems([Problem(path.absolute(), "folder not found")], data_root)
    eval_set, problems = scan_eval(path)
    raise_problems(problems, data_root)
    return eval_set
