"""Terminal rendering of trial parameters."""

from __future__ import annotations

from hpo.cli._display import format_params


def test_branch_parameters_stand_beside_their_branch() -> None:
    text = format_params(
        {
            "train.optimizer.lr": 0.00275,
            "train.scheduler": "step",
            "train.scheduler[step].step_size": 2,
            "train.scheduler[step].gamma": 0.332,
            "train.loss": "cross_entropy",
            "data.image_size": "x",
        }
    )
    assert text == (
        "optimizer.lr=0.00275 scheduler=step(step_size=2 gamma=0.332) loss=cross_entropy "
        "image_size=x"
    )
