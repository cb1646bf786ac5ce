"""Terminal rendering of trial parameters."""

from __future__ import annotations

from hpo.cli._display import format_params, format_trial


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


def _rendered(markup: str) -> str:
    """What a console prints of ``markup`` (markup applied, no styles, no wrapping)."""
    from rich.console import Console

    console = Console(width=200, no_color=True, highlight=False, emoji=False)
    with console.capture() as captured:
        console.print(markup, soft_wrap=True)
    return captured.get().rstrip("\n")


def test_user_strings_survive_rich_markup() -> None:
    import optuna
    from optuna.trial import TrialState

    params = {"train.loss": "[bold]x", "train.model": ":smile:"}
    assert _rendered(format_params(params)) == "loss=[bold]x model=:smile:"
    trial = optuna.trial.create_trial(
        params={"train.loss": "focal", "train.loss[focal].gamma": 1.5},
        distributions={
            "train.loss": optuna.distributions.CategoricalDistribution(["focal", "[red]"]),
            "train.loss[focal].gamma": optuna.distributions.FloatDistribution(0.5, 2.0),
        },
        state=TrialState.FAIL,
        user_attrs={"fail_reason": "bad key [dim] in data/[x]/y.png"},
    )
    line = _rendered(format_trial(trial))
    assert "fail bad key [dim] in data/[x]/y.png" in line
    assert "loss=focal(gamma=1.5)" in line
