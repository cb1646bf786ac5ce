"""A tiny real study with trial artifacts, notes and TensorBoard runs, for the picture tests."""

from __future__ import annotations

import contextlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from hpo.testing.studies import tiny_study

__all__ = ["SCREENSHOTS", "PicturesStudy", "keep_screenshot", "run_pictures_study"]

SCREENSHOTS = Path("test-output", "screenshots")
"""Where the browser tests keep their screenshots, under the repository root (ignored by git);
``HPO_SCREENSHOT_DIR`` names another folder. The README's pictures are copied from there."""


def keep_screenshot(shot: Path, root: Path) -> Path:
    """Copy the screenshot ``shot`` to ``$HPO_SCREENSHOT_DIR`` or ``root/test-output/screenshots``.

    Args:
        shot: The screenshot, in a test's temporary folder.
        root: The repository root (``pytestconfig.rootpath``).

    Returns:
        Where the copy lies.
    """
    folder = Path(os.environ.get("HPO_SCREENSHOT_DIR") or root / SCREENSHOTS)
    folder.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(shot, folder / shot.name))


_SEARCH = {
    "train.optimizer.lr": {"choice": [0.05, 0.02, 1.0e-6]},
    "train.loss": {"choice": {"cross_entropy": {}, "focal": {"gamma": {"float": [0.5, 2.0]}}}},
}


@dataclass(frozen=True)
class PicturesStudy:
    """Where the tiny study lives: ``studies/NAME.yaml``, ``.db`` and ``.artifacts`` in root.

    The study file names its data relative to root (``data/mask``), so commands that read the
    data run in root, and the README's pictures of the study show no temporary folders.
    """

    root: Path
    name: str = "pictures"

    @property
    def studies_dir(self) -> Path:
        return self.root / "studies"

    @property
    def study_file(self) -> Path:
        return self.studies_dir / f"{self.name}.yaml"

    @property
    def storage_url(self) -> str:
        return f"sqlite:///{self.studies_dir / f'{self.name}.db'}"

    @property
    def artifacts(self) -> Path:
        return self.studies_dir / f"{self.name}.artifacts"

    @property
    def tensorboard(self) -> Path:
        return self.root / "tensorboard"

    @property
    def data(self) -> Path:
        """The data root as the study file names it: relative to ``root``."""
        return Path("data", "mask")


def run_pictures_study(root: Path, data_root: Path, *, n_trials: int = 5) -> PicturesStudy:
    """Write the study file under ``root`` and run ``hpo run`` on it in this process, in root.

    Args:
        root: Empty folder to hold ``studies/``, ``tensorboard/`` and ``data/mask``, a link to
            ``data_root``.
        data_root: A demo data set (``hpo.demo.make_demo_data``).
        n_trials: Finished trials to run.

    Raises:
        AssertionError: ``hpo run`` exited with an error.
    """
    from hpo.cli import main

    study = PicturesStudy(root)
    study.studies_dir.mkdir(parents=True, exist_ok=True)
    (root / study.data).parent.mkdir(parents=True, exist_ok=True)
    (root / study.data).symlink_to(data_root.resolve(), target_is_directory=True)
    settings = {
        "sampler": {"name": "random", "seed": 3},
        # No warm-up: trials are pruned inside fold 0 too (the shipped study's successive
        # halving prunes most there), and must still show that epoch's pictures.
        "pruner": {"name": "median", "n_startup_trials": 2, "n_warmup_steps": 0},
        "tensorboard": str(study.tensorboard),
    }
    text = tiny_study(study.data, study=settings, search_space=_SEARCH, epochs=2, folds=2)
    study.study_file.write_text(text)
    args = ["run", "--study", study.name, "--config", str(study.study_file)]
    try:
        with contextlib.chdir(root):
            main([*args, "--n-trials", str(n_trials), "--quiet"])
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise AssertionError(f"hpo run exited with {exc.code}") from None
    return study
