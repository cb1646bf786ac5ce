"""Readable Markdown summaries of a trial and of a study, saved as optuna-dashboard notes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import optuna

from hpo.artifacts import scores_source
from hpo.config import dump_yaml
from hpo.study import IMPORTED_ATTR, TrialRecord, imported_count, read_study_record

__all__ = [
    "DataSummary",
    "save_study_note",
    "save_trial_note",
    "study_note",
    "trial_note",
    "warm_start_note",
]


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def trial_note(
    number: int,
    *,
    state: str,
    value: float | None,
    params: Mapping[str, Any],
    record: TrialRecord,
    epochs: int | None = None,
    pruner: str | None = None,
    prune_reason: str | None = None,
) -> str:
    """One trial in Markdown: sampled values, fold scores, per-factor F1, epochs, pruning.

    Args:
        number: Trial number.
        state: ``complete`` or ``pruned``.
        value: The objective value (mean validation macro-F1 of the folds run), if any.
        params: Sampled values.
        record: The trial's record as the objective left it.
        epochs: Epochs per fold (to translate a pruning step into fold and epoch).
        pruner: Name of the study's pruner.
        prune_reason: The pruning message (what the pruner saw).
    """
    head = f"## Trial {number}: {state}"
    if value is not None:
        head += f", macro-F1 {value:.4f}"
    lines = [head, "", "**Sampled values**", ""]
    lines += [f"- `{k}`: {_fmt(v)}" for k, v in sorted(params.items())] or ["- (none)"]
    folds = list(record.fold_scores or ())
    lines += ["", "**Results**", ""]
    if folds:
        scores = ", ".join(f"{v:.4f}" for v in folds)
        lines.append(f"- fold scores (macro-F1): {scores} (mean {np.mean(folds):.4f})")
    else:
        lines.append("- fold scores: no fold finished")
    factor_f1 = record.scores.factor_f1 if record.scores is not None else {}
    factors = [f"{label} {value:.4f}" for label, value in factor_f1.items()]
    if factors:
        lines.append(f"- per-factor F1: {', '.join(factors)}")
    if record.epochs_trained is not None:
        lines.append(f"- epochs trained: {record.epochs_trained}")
    if record.seconds is not None:
        lines.append(f"- time: {record.seconds} s on {record.device or '?'}")
    step = record.pruned_at_step
    if state == "pruned" or record.pruned_at_fold is not None:
        where = ""
        if record.pruned_at_fold is not None:
            where = f"after fold {record.pruned_at_fold}"
        elif step is not None and epochs:
            where = f"at step {step} (fold {step // epochs}, epoch {step % epochs + 1}/{epochs})"
        elif step is not None:
            where = f"at step {step}"
        by = f" by the {pruner} pruner" if pruner else ""
        why = f": {prune_reason}" if prune_reason else ""
        lines.append(f"- pruned {where}{by}{why}".replace("  ", " "))
        source = scores_source(record)
        if source:
            lines.append(f"- confusion matrix, per-class F1 and per-factor F1 come from {source}")
    return "\n".join(lines) + "\n"


class DataSummary:
    """People, images and images per class of a data set."""

    def __init__(self, people: int, images: int, class_counts: Mapping[str, int]) -> None:
        self.people = people
        self.images = images
        self.class_counts = dict(class_counts)

    @classmethod
    def of(cls, samples: Any) -> DataSummary:
        """From ``hpo.data.Samples``."""
        counts = np.bincount(samples.labels, minlength=samples.num_classes)
        return cls(
            people=len(set(np.asarray(samples.groups).tolist())),
            images=len(samples),
            class_counts={
                f"{k} {name}": int(counts[k]) for k, name in enumerate(samples.class_names)
            },
        )


def study_note(
    name: str,
    *,
    search_space: Mapping[str, Any],
    fixed: Mapping[str, Any],
    pruner: Mapping[str, Any],
    sampler: Mapping[str, Any],
    data: DataSummary | None,
) -> str:
    """The study in Markdown: search space, fixed settings, sampler and pruner, the data."""
    lines = [f"## Study {name}", ""]
    lines += ["**Search space**", "", "```yaml", dump_yaml(dict(search_space)).rstrip(), "```"]
    lines += ["", "**Fixed settings**", "", "```yaml", dump_yaml(dict(fixed)).rstrip(), "```"]
    lines += ["", f"**Sampler**: `{_inline(sampler)}`", "", f"**Pruner**: `{_inline(pruner)}`"]
    if data is not None:
        lines += [
            "",
            f"**Data**: {data.people} people, {data.images} images",
            "",
            "| class | images |",
            "|---|---:|",
        ]
        lines += [f"| {k} | {v} |" for k, v in data.class_counts.items()]
    return "\n".join(lines) + "\n"


def _inline(spec: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in spec.items())


def save_trial_note(trial: optuna.Trial, body: str) -> None:
    """Save ``body`` as the trial's optuna-dashboard note."""
    from optuna_dashboard import save_note

    save_note(trial, body)


def warm_start_note(study: optuna.Study) -> str:
    """Markdown on what ``study.enqueue`` and ``--warm-start`` put in ``study`` ("" if none)."""
    record = read_study_record(study)
    imported = imported_count(study)
    if not record.enqueued and not imported:
        return ""
    lines = ["", "**Warm start**", ""]
    if record.enqueued:
        lines.append(f"- {len(record.enqueued)} configurations of `study.enqueue` tried first")
    if imported:
        sources = ", ".join(
            f"`{w.study}` ({w.imported} from {w.storage})" for w in record.warm_starts
        )
        lines.append(
            f"- {imported} trials imported from {sources or '?'} (`hpo run --warm-start`): "
            "trained there, not here; they inform the sampler and the pruner, count toward no "
            "`--n-trials` and are never the best (their user attribute "
            f"`{IMPORTED_ATTR}` names the source trial)"
        )
    return "\n".join(lines) + "\n"


def save_study_note(study: optuna.Study, body: str) -> None:
    """Save ``body`` as the study's note unless it already says exactly that (many workers).

    What warm starts put in the study (:func:`warm_start_note`) is appended.
    """
    from optuna_dashboard import get_note, save_note

    body += warm_start_note(study)
    if get_note(study) != body:
        save_note(study, body)
