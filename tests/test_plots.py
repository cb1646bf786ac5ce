"""A trial's pictures: the learning curves mark where a pruned trial stopped, and nothing else."""

from __future__ import annotations

from hpo.plots import learning_curves_figure

# Two folds of 3 epochs; the second was pruned after its second epoch.
HISTORY = [
    [{"epoch": e, "train_loss": 2.0 / e, "macro_f1": 0.2 * e} for e in (1, 2, 3)],
    [{"epoch": e, "train_loss": 2.5 / e, "macro_f1": 0.1 * e} for e in (1, 2)],
]


def _pruned_marks(pruned: bool) -> list[tuple[list[float], list[float]]]:
    fig = learning_curves_figure(HISTORY, pruned=pruned)
    loss_ax, f1_ax = fig.axes[:2]
    assert not [line for line in loss_ax.get_lines() if line.get_label() == "pruned"]
    return [
        (list(line.get_xdata()), list(line.get_ydata()))
        for line in f1_ax.get_lines()
        if line.get_label() == "pruned"
    ]


def test_learning_curves_mark_the_pruning_point_on_the_last_fold() -> None:
    # One red cross, at the last validated epoch of the fold the trial was pruned in.
    assert _pruned_marks(pruned=True) == [([2], [0.2])]


def test_learning_curves_of_a_complete_trial_mark_nothing() -> None:
    assert _pruned_marks(pruned=False) == []
