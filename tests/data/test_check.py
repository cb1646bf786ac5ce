"""``hpo data check``: counts, every problem with file and line, exit code 2, JSON report."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from hpo.config import DataConfig
from hpo.data import check_data, load_eval, load_samples
from hpo.exceptions import DataError

from .conftest import DEMO_EVAL_IMAGES, DEMO_PROFILES, CliRun
from .helpers import SHAPES, draw_shapes, image_of, person_dirs, rewrite_csv


def test_good_data_set(demo_root: Path, run_cli: CliRun) -> None:
    code, out, err = run_cli("data", "check", demo_root)
    assert code == 0, out + err
    assert f"{DEMO_PROFILES} people, {DEMO_PROFILES * 7} images in 18 classes" in out
    assert f"{DEMO_EVAL_IMAGES} eval images" in out
    assert "not_wear/female/>=60" in out and "no problems" in out
    for factor in ("mask", "gender", "age", "incorrect", "female", "30-59"):
        assert factor in out


def test_json_report(demo_root: Path, run_cli: CliRun) -> None:
    code, out, _ = run_cli("data", "check", demo_root, "--json")
    assert code == 0
    report = json.loads(out)
    labels = load_samples(DataConfig(root=demo_root)).labels
    assert report["class_counts"] == np.bincount(labels, minlength=18).tolist()
    assert len(report["class_counts"]) == 18 and sum(report["class_counts"]) == DEMO_PROFILES * 7
    assert report["people"] == DEMO_PROFILES and report["images"] == DEMO_PROFILES * 7
    assert report["eval_images"] == DEMO_EVAL_IMAGES
    assert report["problems"] == [] and report["ok"] is True and report["format"] == "mask"
    assert report["factor_counts"]["mask"] == {
        "wear": DEMO_PROFILES * 5,
        "incorrect": DEMO_PROFILES,
        "not_wear": DEMO_PROFILES,
    }
    assert sum(report["people_counts"]["gender"].values()) == DEMO_PROFILES


# ---------------------------------------------------------------------------------------------
# Each bad input: exit 2, the file (and line) named, no traceback.

Break = Callable[[Path], str]


def _missing_image(root: Path) -> str:
    folder = person_dirs(root)[3]
    image_of(folder, "mask3").unlink()
    return f"train/images/{folder.name}: missing image mask3"


def _extra_file(root: Path) -> str:
    folder = person_dirs(root)[1]
    (folder / "notes.txt").write_text("x")
    return f"train/images/{folder.name}/notes.txt: unexpected file"


def _corrupt_image(root: Path) -> str:
    path = image_of(person_dirs(root)[2], "mask2")
    path.write_bytes(b"garbage" * 50)
    return f"train/images/{path.parent.name}/{path.name}: cannot decode image"


def _truncated_image(root: Path) -> str:
    path = image_of(person_dirs(root)[2], "normal")
    path.write_bytes(path.read_bytes()[:3000])
    return f"train/images/{path.parent.name}/{path.name}: cannot decode image"


def _csv_without_column(root: Path) -> str:
    rewrite_csv(root / "train" / "train.csv", lambda rows: [row.pop(3) for row in rows])
    return "train/train.csv:1: missing required column 'age'"


def _bad_age(root: Path) -> str:
    rewrite_csv(root / "train" / "train.csv", lambda rows: rows[4].__setitem__(3, "4O"))
    return "train/train.csv:5: unparseable age '4O'"


def _bad_gender(root: Path) -> str:
    rewrite_csv(root / "train" / "train.csv", lambda rows: rows[4].__setitem__(1, "F"))
    return "train/train.csv:5: unparseable gender 'F'"


def _unlisted_folder(root: Path) -> str:
    folder = person_dirs(root)[0]
    shutil.copytree(folder, folder.with_name("008888_female_Asian_41"))
    return "train/images/008888_female_Asian_41: folder not listed in train.csv"


def _eval_csv_without_column(root: Path) -> str:
    rewrite_csv(root / "eval" / "info.csv", lambda rows: [row.pop(1) for row in rows])
    return "eval/info.csv:1: missing required column 'ans'"


def _eval_missing_image(root: Path) -> str:
    eval_set = load_eval(root)
    eval_set.paths[2].unlink()
    return f"eval/info.csv:4: image images/{eval_set.ids[2]} not found"


def _eval_corrupt_image(root: Path) -> str:
    eval_set = load_eval(root)
    eval_set.paths[0].write_bytes(b"\xff\xd8\xff" + b"\0" * 100)
    return f"eval/images/{eval_set.ids[0]}: cannot decode image"


BREAKS = [
    _missing_image,
    _extra_file,
    _corrupt_image,
    _truncated_image,
    _csv_without_column,
    _bad_age,
    _bad_gender,
    _unlisted_folder,
    _eval_csv_without_column,
    _eval_missing_image,
    _eval_corrupt_image,
]


@pytest.mark.parametrize("damage", BREAKS, ids=[b.__name__.strip("_") for b in BREAKS])
def test_bad_input_is_reported_with_exit_2(
    data_copy: Path, run_cli: CliRun, damage: Break
) -> None:
    expected = damage(data_copy)
    code, out, err = run_cli("data", "check", data_copy)
    assert code == 2
    assert expected in out.splitlines() or any(
        line.startswith(expected) for line in out.splitlines()
    )
    assert "Traceback" not in out + err
    code, out, _ = run_cli("data", "check", data_copy, "--json")
    assert code == 2
    report = json.loads(out)
    assert report["ok"] is False
    shown = [
        f"{p['file']}{'' if p['line'] is None else ':' + str(p['line'])}: {p['problem']}"
        for p in report["problems"]
    ]
    assert any(line.startswith(expected) for line in shown), shown


def test_every_problem_is_listed(data_copy: Path) -> None:
    expected = [_missing_image(data_copy), _bad_age(data_copy), _eval_corrupt_image(data_copy)]
    report = check_data(data_copy)
    shown = [
        f"{report.relative(p.file)}{'' if p.line is None else f':{p.line}'}: {p.problem}"
        for p in report.problems
    ]
    assert len(shown) == 3
    for want in expected:
        assert any(line.startswith(want) for line in shown), shown


def test_no_decode_skips_the_image_check(data_copy: Path, run_cli: CliRun) -> None:
    _corrupt_image(data_copy)
    code, _, _ = run_cli("data", "check", data_copy, "--no-decode")
    assert code == 0


def test_missing_folder_is_one_error_line(tmp_path: Path, run_cli: CliRun) -> None:
    code, out, err = run_cli("data", "check", tmp_path / "nowhere")
    assert code == 2 and out == ""
    assert err.startswith("error: ") and "nowhere: data folder not found" in err
    assert len(err.strip().splitlines()) == 1


def test_corrections(demo_root: Path, tmp_path: Path, run_cli: CliRun) -> None:
    folder = person_dirs(demo_root)[0].name
    fixes = tmp_path / "fixes.csv"
    fixes.write_text(f"target,field,value\n{folder},age,60\n{folder},mood,happy\n")
    code, out, _ = run_cli("data", "check", demo_root, "--corrections", fixes)
    assert code == 2
    assert f"{fixes}:3: unknown field 'mood'" in out
    fixes.write_text(f"target,field,value\n{folder},swap,incorrect_mask/normal\n")
    code, out, _ = run_cli("data", "check", demo_root, "--corrections", fixes, "--json")
    assert code == 0 and json.loads(out)["corrections"] == 1


def test_image_folder_layout(demo_root: Path, tmp_path: Path, run_cli: CliRun) -> None:
    root = tmp_path / "folders"
    for k, person in enumerate(person_dirs(demo_root)[:3]):
        for stem, target in [("mask1", "masked"), ("normal", "bare")]:
            (root / target).mkdir(parents=True, exist_ok=True)
            shutil.copy(image_of(person, stem), root / target / f"{k}.jpg")
    code, out, _ = run_cli("data", "check", root, "--json")
    assert code == 0
    report = json.loads(out)
    assert report["format"] == "folder" and report["people"] is None
    assert report["class_names"] == ["bare", "masked"] and report["class_counts"] == [3, 3]
    (root / "bare" / "1.jpg").write_bytes(b"broken")
    code, out, _ = run_cli("data", "check", root)
    assert code == 2 and "bare/1.jpg: cannot decode image" in out


# ---------------------------------------------------------------------------------------------
# Loading and checking read a data set with one reader: what loads is what was checked.

TRAIN_BREAKS = [
    _missing_image,
    _extra_file,
    _csv_without_column,
    _bad_age,
    _bad_gender,
    _unlisted_folder,
]


@pytest.mark.parametrize("damage", TRAIN_BREAKS, ids=[b.__name__.strip("_") for b in TRAIN_BREAKS])
def test_loading_refuses_with_the_first_problem_check_lists(
    data_copy: Path, damage: Break
) -> None:
    damage(data_copy)
    report = check_data(data_copy, decode=False)
    assert report.problems
    with pytest.raises(DataError) as caught:
        load_samples(DataConfig(root=data_copy))
    assert str(caught.value).startswith(str(report.problems[0]))


def test_check_counts_the_table_loading_gives(demo_root: Path, tmp_path: Path) -> None:
    folder = person_dirs(demo_root)[0].name
    fixes = tmp_path / "fixes.csv"
    fixes.write_text(f"target,field,value\n{folder},age,60\n{folder},gender,male\n")
    report = check_data(demo_root, corrections=fixes, decode=False)
    samples = load_samples(DataConfig(root=demo_root, corrections=fixes))
    assert report.ok and report.corrections == 2
    assert report.class_counts == np.bincount(samples.labels, minlength=18).tolist()
    assert report.images == len(samples) and report.class_names == samples.class_names


def test_an_empty_data_set_is_a_problem_for_both(tmp_path: Path) -> None:
    root = tmp_path / "empty"
    (root / "train" / "images").mkdir(parents=True)
    (root / "train" / "train.csv").write_text("id,gender,race,age,path\n")
    report = check_data(root)
    assert [p.problem for p in report.problems] == ["no images found"]
    with pytest.raises(DataError, match="empty: no images found"):
        load_samples(DataConfig(root=root))


def test_corrections_for_the_folder_layout_are_refused_by_both(
    demo_root: Path, tmp_path: Path
) -> None:
    root = tmp_path / "folders"
    for k, person in enumerate(person_dirs(demo_root)[:2]):
        for stem, target in [("mask1", "masked"), ("normal", "bare")]:
            (root / target).mkdir(parents=True, exist_ok=True)
            shutil.copy(image_of(person, stem), root / target / f"{k}.jpg")
    fixes = tmp_path / "fixes.csv"
    fixes.write_text("target,field,value\n")
    with pytest.raises(DataError, match="competition layout"):
        check_data(root, corrections=fixes)
    with pytest.raises(DataError, match="competition layout"):
        load_samples(DataConfig(format="folder", root=root, corrections=fixes))


# ---------------------------------------------------------------------------------------------
# Auto detection picks the folder layout without a train.csv, and says what it chose (issue 26).


def test_auto_reads_a_train_eval_folder_as_image_folders(tmp_path: Path, run_cli: CliRun) -> None:
    root = tmp_path / "shapes"
    draw_shapes(root / "train", n=3)
    draw_shapes(root / "eval", n=2, seed=1)
    code, out, err = run_cli("data", "check", root)
    assert code == 0, out + err
    assert "layout folder (image folders), chosen by --format auto: no train/train.csv" in out
    assert "9 images in 3 classes, 6 eval images" in out
    code, out, _ = run_cli("data", "check", root, "--json")
    report = json.loads(out)
    assert report["format"] == "folder" and report["detected"] == "no train/train.csv"
    assert report["class_names"] == list(SHAPES) and report["class_counts"] == [3, 3, 3]
    assert report["layout"] == "image folders" and report["eval_images"] == 6


def test_auto_says_why_it_chose_the_competition_layout(demo_root: Path, run_cli: CliRun) -> None:
    code, out, _ = run_cli("data", "check", demo_root, "--no-decode")
    assert code == 0
    assert (
        "layout mask (competition layout), chosen by --format auto: found train/train.csv" in out
    )
    code, out, _ = run_cli("data", "check", demo_root, "--format", "mask", "--no-decode")
    assert code == 0 and "chosen by" not in out
    assert (
        json.loads(run_cli("data", "check", demo_root, "--json", "--no-decode")[1])["detected"]
        == "found train/train.csv"
    )


def test_a_train_folder_without_train_csv_is_not_the_competition_layout(
    data_copy: Path,
) -> None:
    (data_copy / "train" / "train.csv").unlink()
    report = check_data(data_copy, decode=False)
    assert report.format == "folder" and report.detected == "no train/train.csv"
    # Person folders are not read as images of a class `images`: refused by name.
    assert any(
        p.file == data_copy / "train" / "images" and "class folder holds folders" in p.problem
        for p in report.problems
    )
