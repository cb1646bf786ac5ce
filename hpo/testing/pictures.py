"""A tiny real study with trial artifacts, notes and TensorBoard runs, for the picture tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hpo.testing.studies import tiny_study

__all__ = ["PicturesStudy", "run_pictures_study"]

_SEARCH = {
    "train.optimizer.lr": {"choice": [0.05, 0.02, 1.0e-6]},
    "train.loss": {"choice": {"cross_entropy": {}, "focal": {"gamma": {"float": [0.5, 2.0]}}}},
}


@dataclass(frozen=True)
class PicturesStudy:
    """Where the tiny study lives: ``studies/NAME.yaml``, ``.db`` and ``.artifacts`` in root."""

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


def run_pictures_study(root: Path, data_root: Path, *, n_trials: int = 5) -> PicturesStudy:
    """Write the study file under ``root`` and run ``hpo run`` on it in this process.

    Args:
        root: Empty folder to hold ``studies/`` and ``tensorboard/``.
        data_root: A demo data set (``hpo.data.make_demo_data``).
        n_trials: Finished trials to run.

    Raises:
        AssertionError: ``hpo run`` exited with an error.
    """
    from hpo.cli import main

    study = PicturesStudy(root)
    study.studies_dir.mkdir(parents=True, exist_ok=True)
    settings = {
        "sampler": {"name": "random", "seed": 3},
        # No warm-up: trials are pruned inside fold 0 too (the shipped study's successive
        # halving prunes most there), and must still show that epoch's pictures.
        "pruner": {"name": "median", "n_startup_trials": 2, "n_warmup_steps": 0},
        "tensorboard": str(study.tensorboard),
    }
    text = tiny_study(data_root, study=settings, search_space=_SEARCH, epochs=2, folds=2)
    study.study_file.write_text(text)
    args = ["run", "--study", study.name, "--config", str(study.study_file)]
    try:
        main([*args, "--n-trials", str(n_trials), "--quiet"])
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise AssertionError(f"hpo run exited with {exc.code}") from None
    return study
