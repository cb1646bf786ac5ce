"""Demo data in the real competition layout: drawn people with learnable mask, gender, age cues.

``make_demo_data(out, profiles, seed)`` writes ``train/train.csv``, one folder per person with
``mask1..mask5``, ``incorrect_mask`` and ``normal`` (384 x 512), ``eval/info.csv`` (empty
``ans``), ``eval/images`` and, for the demo only, ``eval/answers.csv`` (``ImageID,ans``) so
predictions can be scored. Output is identical for the same arguments on every machine.

Cues, chosen to survive downscaling to about 64 x 48:
- mask: worn masks cover nose and mouth; incorrect ones leave the nose (or nose and mouth)
  free; "normal" photos show the whole face. Mask colours and patterns vary per photo.
- gender: hair length (long for most women, short for most men, with some overlap), eyebrow
  weight, and beards on some men when the lower face is visible.
- age: hair greys with age (white at 60), forehead wrinkles and lines under the eyes appear
  from 30 and deepen at 60. The cues above the mask line stay visible with a mask on.

The population mimics the real one: ages 18 to 60 with about 7 % aged exactly 60, about 61 %
women, and the real quirks: a suffixed id, one id shared by two folders, a folder mixing
``.png``/``.jpeg`` among ``.jpg``, some all-``.png`` or all-``.jpeg`` folders, and macOS ``._*``
files beside folders and images.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import math
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from PIL import Image, ImageChops, ImageDraw

from hpo.data._labels import IMAGE_STEMS, MASK_OF_STEM, age_class, encode_label
from hpo.exceptions import DataError

__all__ = ["IMAGE_HEIGHT", "IMAGE_WIDTH", "PERSON_CLASS_SHARES", "make_demo_data"]

logger = logging.getLogger(__name__)

IMAGE_WIDTH, IMAGE_HEIGHT = 384, 512

PERSON_CLASS_SHARES: dict[tuple[int, int], float] = {
    (0, 0): 549 / 2700,
    (0, 1): 410 / 2700,
    (0, 2): 83 / 2700,
    (1, 0): 732 / 2700,
    (1, 1): 817 / 2700,
    (1, 2): 109 / 2700,
}
"""Share of people per (gender, age group) in the real data set: 61.4 % women, 7.1 % aged 60."""

_EVAL_SHARE = 0.5  # eval images per training image when not given
_PILLOW_BLOCKS = 32
_APPLEDOUBLE = b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        " + bytes(4096 - 24)
_SKIN = np.array(
    [(255, 224, 196), (241, 194, 160), (224, 172, 135), (198, 144, 105), (170, 120, 85)], float
)
_DARK_HAIR = np.array(
    [(20, 15, 10), (45, 30, 20), (70, 45, 25), (100, 70, 40), (35, 30, 30)], float
)
_MASK_COLOURS = np.array(
    [(150, 190, 230), (236, 236, 236), (30, 30, 35), (120, 120, 130), (230, 170, 190)], float
)


@dataclass(frozen=True)
class _Person:
    index: int
    id: str
    gender: int
    age: int
    race: str = "Asian"

    @property
    def folder(self) -> str:
        return f"{self.id}_{('male', 'female')[self.gender]}_{self.race}_{self.age}"


@dataclass(frozen=True)
class _Job:
    """Render the given images of one drawn person into files."""

    seed: tuple[int, ...]
    gender: int
    age: int
    shots: tuple[tuple[str, int], ...]  # (file path, mask state 0/1/2)


def _allocate(profiles: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    """(gender, age group) per person, in shares of the real data (each cell from 6 people)."""
    cells = list(PERSON_CLASS_SHARES)
    exact = np.array([PERSON_CLASS_SHARES[c] * profiles for c in cells])
    counts = np.floor(exact).astype(int)
    if profiles >= len(cells):
        counts = np.maximum(counts, 1)
    while counts.sum() > profiles:
        counts[int(np.argmax(counts))] -= 1
    order = np.argsort(-(exact - np.floor(exact)), kind="stable")
    for i in range(profiles - counts.sum()):
        counts[order[i % len(cells)]] += 1
    out = [cell for cell, n in zip(cells, counts, strict=True) for _ in range(int(n))]
    rng.shuffle(out)
    return out


def _draw_age(group: int, rng: np.random.Generator) -> int:
    if group == 0:
        return int(rng.integers(18, 30))
    if group == 2:
        return 60
    # The real 30-59 group leans to the fifties.
    return int(rng.integers(50, 60)) if rng.random() < 0.5 else int(rng.integers(30, 50))


def _people(profiles: int, rng: np.random.Generator) -> list[_Person]:
    cells = _allocate(profiles, rng)
    ids = np.sort(rng.choice(np.arange(1, max(7000, 3 * profiles)), profiles, replace=False))
    people = [
        _Person(i, f"{ids[i]:06d}", gender, _draw_age(group, rng))
        for i, (gender, group) in enumerate(cells)
    ]
    if profiles >= 2:  # a suffixed id, as 001498-1_male_Asian_23
        p = people[1]
        people[1] = _Person(p.index, f"{p.id}-1", p.gender, p.age)
    if profiles >= 4:  # one id in two folders, as 003397_female_Asian_19 and _20
        first = people[2]
        for j in range(3, profiles):
            q = people[j]
            if q.gender == first.gender and q.age != first.age and q.age != 60:
                people[j] = _Person(q.index, first.id, q.gender, q.age)
                break
    return people


# ---------------------------------------------------------------------------------------------
# Drawing


def _rgb(colour: np.ndarray | Sequence[float]) -> tuple[int, int, int]:
    r, g, b = (int(np.clip(v, 0, 255)) for v in colour)
    return r, g, b


@dataclass(frozen=True)
class _Look:
    """What stays the same in every photo of a person."""

    skin: np.ndarray
    hair: np.ndarray
    hair_length: float  # 0 short cap .. 1 hair to the chest
    fringe: float  # how far the hair comes down the forehead, share of face height
    brow_width: int
    wrinkles: int
    eye_lines: bool
    beard: bool
    glasses: bool
    lips: np.ndarray
    face_w: float
    centre: tuple[float, float]
    background: tuple[np.ndarray, np.ndarray]
    shirt: np.ndarray
    furniture: list[tuple[float, float, float, float, np.ndarray]]


def _look(gender: int, age: int, rng: np.random.Generator) -> _Look:
    span = (age - 18) / 42
    grey = span**2 * 0.55 + (0.4 if age >= 60 else 0.0) + rng.normal(0, 0.06)
    grey = float(np.clip(grey, 0.0, 1.0))
    hair = _DARK_HAIR[rng.integers(len(_DARK_HAIR))] * (1 - grey) + rng.uniform(185, 235) * grey
    if gender == 1:
        length = rng.uniform(0.3, 0.5) if rng.random() < 0.12 else rng.uniform(0.55, 1.0)
    else:
        length = rng.uniform(0.25, 0.4) if rng.random() < 0.08 else rng.uniform(0.0, 0.2)
    group = age_class(age)
    wrinkles = (0, 2, 4)[group] + int(rng.choice([-1, 0, 0, 0, 1])) * (group > 0)
    if group == 0 and rng.random() < 0.1:
        wrinkles = 1
    skin = _SKIN[rng.integers(len(_SKIN))] + rng.normal(0, 8, 3)
    lips = np.array((185, 60, 75)) if gender == 1 and rng.random() < 0.6 else skin * 0.72
    face_w = rng.uniform(135, 170)
    return _Look(
        skin=skin,
        hair=hair,
        hair_length=float(length),
        fringe=float(rng.uniform(0.12, 0.24)),
        brow_width=int(rng.integers(6, 10) if gender == 0 else rng.integers(3, 6)),
        wrinkles=wrinkles,
        eye_lines=group > 0 and rng.random() < 0.85,
        beard=gender == 0 and rng.random() < 0.25,
        glasses=rng.random() < 0.12,
        lips=lips,
        face_w=float(face_w),
        centre=(float(rng.normal(192, 18)), float(rng.normal(215, 18))),
        background=(rng.uniform(40, 230, 3), rng.uniform(40, 230, 3)),
        shirt=rng.uniform(20, 230, 3),
        furniture=[
            (*rng.uniform(0, 1, 4).tolist(), rng.uniform(30, 220, 3))
            for _ in range(int(rng.integers(0, 3)))
        ],
    )


def _background(look: _Look, rng: np.random.Generator) -> Image.Image:
    top, bottom = (c + rng.normal(0, 6, 3) for c in look.background)
    t = np.linspace(0.0, 1.0, IMAGE_HEIGHT, dtype=np.float32)[:, None]
    column = np.clip(top[None, :] * (1 - t) + bottom[None, :] * t, 0, 255).astype(np.uint8)
    # A one-pixel-wide gradient stretched sideways: far cheaper than filling the array.
    strip = Image.fromarray(np.ascontiguousarray(column[:, None, :]))
    image = strip.resize((IMAGE_WIDTH, IMAGE_HEIGHT), Image.Resampling.NEAREST)
    draw = ImageDraw.Draw(image)
    for x0, y0, w, h, colour in look.furniture:
        box = (
            x0 * IMAGE_WIDTH,
            y0 * IMAGE_HEIGHT * 0.6,
            (x0 + 0.4 * w) * IMAGE_WIDTH,
            (y0 * 0.6 + 0.5 * h) * IMAGE_HEIGHT,
        )
        draw.rectangle(
            (box[0], box[1], max(box[0], box[2]), max(box[1], box[3])), fill=_rgb(colour)
        )
    return image


def _draw_mask(
    draw: ImageDraw.ImageDraw,
    cx: float,
    cy: float,
    fw: float,
    fh: float,
    state: int,
    rng: np.random.Generator,
) -> None:
    if state == 0:  # over nose and mouth
        top, bottom = cy + rng.uniform(-0.03, 0.05) * fh, cy + 0.54 * fh
    elif rng.random() < 0.75:  # under the nose
        top, bottom = cy + rng.uniform(0.2, 0.25) * fh, cy + 0.58 * fh
    else:  # on the chin
        top, bottom = cy + rng.uniform(0.37, 0.42) * fh, cy + 0.62 * fh
    colour = (
        _MASK_COLOURS[rng.integers(len(_MASK_COLOURS))] + rng.normal(0, 10, 3)
        if rng.random() < 0.8
        else rng.uniform(0, 255, 3)
    )
    half = 0.49 * fw
    outline = [
        (cx - half, top + 0.05 * fh),
        (cx, top),
        (cx + half, top + 0.05 * fh),
        (cx + 0.42 * fw, bottom - 0.07 * fh),
        (cx, bottom),
        (cx - 0.42 * fw, bottom - 0.07 * fh),
    ]
    strap = _rgb(colour * 0.85)
    for side in (-1, 1):
        draw.line(
            [(cx + side * half, top + 0.06 * fh), (cx + side * 0.52 * fw, cy - 0.03 * fh)],
            fill=strap,
            width=4,
        )
    draw.polygon(outline, fill=_rgb(colour))
    pleat = _rgb(colour * 0.75)
    if rng.random() < 0.6:
        for k in (1, 2, 3):
            y = top + (bottom - top) * k / 4.2
            draw.line([(cx - 0.4 * fw, y), (cx + 0.4 * fw, y)], fill=pleat, width=3)
    elif rng.random() < 0.4:
        for _ in range(12):
            x, y = cx + rng.uniform(-0.35, 0.35) * fw, rng.uniform(top + 8, bottom - 8)
            draw.ellipse((x - 5, y - 5, x + 5, y + 5), fill=pleat)


def _draw_person(look: _Look, gender: int, state: int, rng: np.random.Generator) -> Image.Image:
    image = _background(look, rng)
    draw = ImageDraw.Draw(image)
    scale = rng.uniform(0.94, 1.06)
    fw = look.face_w * scale
    fh = fw * 1.3
    cx = look.centre[0] + rng.normal(0, 7)
    cy = look.centre[1] + rng.normal(0, 7)
    skin, hair = look.skin, look.hair

    # Shoulders and shirt.
    top = cy + 0.62 * fh
    draw.ellipse((cx - 1.3 * fw, top, cx + 1.3 * fw, top + 1.6 * fw), fill=_rgb(look.shirt))
    draw.rectangle(
        (cx - 1.3 * fw, top + 0.8 * fw, cx + 1.3 * fw, max(IMAGE_HEIGHT, top + 0.8 * fw)),
        fill=_rgb(look.shirt),
    )
    # Long hair falls behind the face and over the shoulders.
    if look.hair_length > 0.22:
        side = 0.12 * fw + 0.14 * fw * look.hair_length
        end = cy + fh * (0.05 + 0.95 * look.hair_length)
        draw.ellipse(
            (cx - fw / 2 - side, cy - fh / 2 - 16, cx + fw / 2 + side, cy + 0.3 * fh),
            fill=_rgb(hair),
        )
        draw.rectangle(
            (cx - fw / 2 - side, cy - 0.1 * fh, cx + fw / 2 + side, end), fill=_rgb(hair)
        )
    draw.rectangle(
        (cx - 0.2 * fw, cy + 0.3 * fh, cx + 0.2 * fw, top + 0.12 * fh), fill=_rgb(skin * 0.9)
    )
    for side in (-1, 1):  # ears
        ex = cx + side * 0.5 * fw
        draw.ellipse(
            (ex - 0.08 * fw, cy - 0.12 * fh, ex + 0.08 * fw, cy + 0.08 * fh),
            fill=_rgb(skin * 0.93),
        )
    draw.ellipse((cx - fw / 2, cy - fh / 2, cx + fw / 2, cy + fh / 2), fill=_rgb(skin))
    # Hair on top, down to the fringe; the chord's straight edge is its box's centre line.
    fringe_y = cy - fh * (0.5 - look.fringe)
    box_top = cy - fh / 2 - 18
    draw.chord(
        (cx - fw / 2 - 7, box_top, cx + fw / 2 + 7, 2 * fringe_y - box_top),
        180,
        360,
        fill=_rgb(hair),
    )

    # Eyes, brows and the lines of age.
    dark = _rgb(np.minimum(hair, 90) * 0.8)
    eye_y = cy - 0.08 * fh
    for side in (-1, 1):
        ex = cx + side * 0.2 * fw
        draw.ellipse(
            (ex - 0.08 * fw, eye_y - 0.035 * fh, ex + 0.08 * fw, eye_y + 0.035 * fh),
            fill=(245, 245, 240),
        )
        draw.ellipse(
            (ex - 0.03 * fw, eye_y - 0.03 * fh, ex + 0.03 * fw, eye_y + 0.03 * fh),
            fill=(40, 30, 25),
        )
        brow_y = cy - 0.17 * fh
        brow = _rgb(hair * 0.8) if hair[0] > 120 else dark
        draw.line(
            [(ex - 0.11 * fw, brow_y), (ex + 0.11 * fw, brow_y)], fill=brow, width=look.brow_width
        )
        if look.eye_lines:
            draw.arc(
                (ex - 0.1 * fw, eye_y - 0.01 * fh, ex + 0.1 * fw, eye_y + 0.08 * fh),
                20,
                160,
                fill=_rgb(skin * 0.62),
                width=3 + (look.wrinkles > 3),
            )
    line = _rgb(skin * 0.6)
    for k in range(look.wrinkles):
        y = cy - 0.23 * fh - k * 0.045 * fh
        if y < fringe_y + 4:
            break
        draw.arc((cx - 0.28 * fw, y, cx + 0.28 * fw, y + 0.08 * fh), 200, 340, fill=line, width=4)
    if look.glasses:
        for side in (-1, 1):
            ex = cx + side * 0.2 * fw
            draw.rectangle(
                (ex - 0.12 * fw, eye_y - 0.06 * fh, ex + 0.12 * fw, eye_y + 0.06 * fh),
                outline=(25, 25, 25),
                width=3,
            )
        draw.line([(cx - 0.08 * fw, eye_y), (cx + 0.08 * fw, eye_y)], fill=(25, 25, 25), width=3)

    # Nose, mouth, beard.
    draw.polygon(
        [(cx, cy - 0.02 * fh), (cx - 0.09 * fw, cy + 0.16 * fh), (cx + 0.09 * fw, cy + 0.16 * fh)],
        fill=_rgb(skin * 0.82),
    )
    for side in (-1, 1):
        nx = cx + side * 0.045 * fw
        draw.ellipse(
            (nx - 5, cy + 0.15 * fh - 3, nx + 5, cy + 0.15 * fh + 4), fill=_rgb(skin * 0.45)
        )
    if look.beard:
        draw.chord(
            (cx - 0.45 * fw, cy + 0.05 * fh, cx + 0.45 * fw, cy + 0.5 * fh),
            0,
            180,
            fill=_rgb(hair * 0.9),
        )
    mouth_y = cy + 0.3 * fh
    draw.ellipse(
        (cx - 0.15 * fw, mouth_y - 0.03 * fh, cx + 0.15 * fw, mouth_y + 0.03 * fh),
        fill=_rgb(look.lips),
    )
    draw.line([(cx - 0.14 * fw, mouth_y), (cx + 0.14 * fw, mouth_y)], fill=(90, 40, 40), width=2)
    if state < 2:
        _draw_mask(draw, cx, cy, fw, fh, state, rng)
    return image


def _finish(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    # Lighting and sensor noise: the same drawing never gives the same pixels twice.
    # Done by Pillow in uint8 (a lookup table, a saturating add): no large temporary arrays.
    gain = rng.uniform(0.82, 1.15)
    lit = image.point([min(255, int(v * gain)) for v in range(256)] * 3)
    amplitude = int(rng.integers(3, 11))
    # Drawn at half resolution: 2 x 2 grain, a quarter of the random numbers.
    shape = (IMAGE_HEIGHT // 2, IMAGE_WIDTH // 2, 3)
    grain = Image.fromarray(rng.integers(0, 2 * amplitude + 1, size=shape, dtype=np.uint8))
    noise = grain.resize((IMAGE_WIDTH, IMAGE_HEIGHT), Image.Resampling.NEAREST)
    return ImageChops.add(lit, noise, offset=-amplitude)


def _save(image: Image.Image, path: str) -> None:
    ext = os.path.splitext(path)[1].lower()
    if ext == ".png":
        image.save(path, format="PNG", compress_level=1)
    else:
        image.save(path, format="JPEG", quality=90)


def _render(job: _Job) -> None:
    rng = np.random.default_rng(list(job.seed))
    look = _look(job.gender, job.age, rng)
    for path, state in job.shots:
        _save(_finish(_draw_person(look, job.gender, state, rng), rng), path)


# ---------------------------------------------------------------------------------------------
# Layout


def _extensions(people: list[_Person], rng: np.random.Generator) -> dict[int, list[str]]:
    exts = {p.index: [".jpg"] * len(IMAGE_STEMS) for p in people}
    order = rng.permutation(len(people)).tolist()
    if len(order) >= 3:
        mixed = order.pop()
        exts[mixed][IMAGE_STEMS.index("mask2")] = ".png"
        exts[mixed][IMAGE_STEMS.index("normal")] = ".jpeg"
    n_png, n_jpeg = max(1, round(0.03 * len(people))), max(1, round(0.02 * len(people)))
    for i in order[:n_png]:
        exts[i] = [".png"] * len(IMAGE_STEMS)
    for i in order[n_png : n_png + n_jpeg]:
        exts[i] = [".jpeg"] * len(IMAGE_STEMS)
    return exts


def _keep_image_memory(blocks: int = _PILLOW_BLOCKS) -> int:
    # Pillow hands freed image memory back to the OS by default; every new 384 x 512 image then
    # page-faults afresh, which doubled the drawing time. Keeping a few blocks avoids that.
    previous = int(Image.core.get_blocks_max())
    Image.core.set_blocks_max(max(previous, blocks))
    return previous


def _run(jobs: list[_Job], workers: int) -> None:
    if workers <= 1 or len(jobs) < 8:
        previous = _keep_image_memory()
        try:
            for job in jobs:
                _render(job)
        finally:
            Image.core.set_blocks_max(previous)
        return
    # spawn: the caller may hold threads (torch) that make fork unsafe.
    context = get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_keep_image_memory) as pool:
        for _ in pool.map(_render, jobs, chunksize=max(1, len(jobs) // (workers * 8))):
            pass


def make_demo_data(
    out: Path,
    profiles: int = 150,
    seed: int = 0,
    *,
    eval_images: int | None = None,
    workers: int | None = None,
) -> Path:
    """Write a demo data set in the competition layout.

    Args:
        out: Data root to create (``out/train``, ``out/eval``); must not hold either yet.
        profiles: Number of people in ``train`` (7 images each).
        seed: Seed; the same arguments always give the same files.
        eval_images: Number of eval images; default half the training images.
        workers: Processes drawing in parallel; default one per CPU core.

    Returns:
        ``out``, the data root to use as ``data.root``.

    Raises:
        DataError: ``profiles`` or ``eval_images`` is out of range, or ``out`` already holds
            a data set.
    """
    if profiles < 1:
        raise DataError(f"profiles must be at least 1, got {profiles}")
    n_eval = round(_EVAL_SHARE * 7 * profiles) if eval_images is None else eval_images
    if n_eval < 0:
        raise DataError(f"eval images must be 0 or more, got {n_eval}")
    out = Path(out)
    for part in ("train", "eval"):
        if (out / part).exists():
            raise DataError(f"{out / part}: already exists; choose a new folder for demo data")
    images_dir, eval_dir = out / "train" / "images", out / "eval" / "images"
    images_dir.mkdir(parents=True)
    eval_dir.mkdir(parents=True)

    rng = np.random.default_rng([seed, 0])
    people = _people(profiles, rng)
    exts = _extensions(people, rng)
    apple = set(rng.permutation(profiles)[: max(1, round(0.05 * profiles))].tolist())
    jobs = []
    for person in people:
        folder = images_dir / person.folder
        folder.mkdir()
        shots = tuple(
            (str(folder / f"{stem}{ext}"), MASK_OF_STEM[stem])
            for stem, ext in zip(IMAGE_STEMS, exts[person.index], strict=True)
        )
        jobs.append(_Job((seed, 1, person.index), person.gender, person.age, shots))
        if person.index in apple:
            (images_dir / f"._{person.folder}").write_bytes(_APPLEDOUBLE)
            (folder / f"._mask1{exts[person.index][0]}").write_bytes(_APPLEDOUBLE)
    with (out / "train" / "train.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "gender", "race", "age", "path"])
        for person in sorted(people, key=lambda p: p.folder):
            gender = ("male", "female")[person.gender]
            writer.writerow([person.id, gender, person.race, person.age, person.folder])

    # Eval: whole people (so mask states keep their 5:1:1 shares), shuffled and not grouped.
    eval_rng = np.random.default_rng([seed, 2])
    n_people = math.ceil(n_eval / len(IMAGE_STEMS))
    eval_people = _people(n_people, eval_rng) if n_people else []
    shots_of: list[tuple[int, int]] = [
        (k, MASK_OF_STEM[stem]) for k in range(n_people) for stem in IMAGE_STEMS
    ]
    chosen = [shots_of[i] for i in eval_rng.permutation(len(shots_of))[:n_eval].tolist()]
    rows: list[tuple[str, int]] = []
    per_person: dict[int, list[tuple[str, int]]] = {}
    for number, (k, state) in enumerate(chosen):
        image_id = hashlib.sha1(f"hpo-demo {seed} {number}".encode()).hexdigest() + ".jpg"
        person = eval_people[k]
        rows.append((image_id, encode_label(state, person.gender, age_class(person.age))))
        per_person.setdefault(k, []).append((str(eval_dir / image_id), state))
    for k, eval_shots in sorted(per_person.items()):
        person = eval_people[k]
        jobs.append(_Job((seed, 3, k), person.gender, person.age, tuple(eval_shots)))
    if rows:
        (eval_dir / f"._{rows[0][0]}").write_bytes(_APPLEDOUBLE)
    with (out / "eval" / "info.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["ImageID", "ans"])
        writer.writerows((image_id, "") for image_id, _ in rows)
    with (out / "eval" / "answers.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["ImageID", "ans"])
        writer.writerows(rows)

    n_workers = workers if workers is not None else os.cpu_count() or 1
    logger.info(
        "drawing %d people (%d images) and %d eval images into %s",
        profiles,
        profiles * len(IMAGE_STEMS),
        n_eval,
        out,
    )
    _run(jobs, n_workers)
    return out
