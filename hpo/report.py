"""A study as one self-contained HTML file that opens offline (plotly.js embedded).

The report holds the optimization history, every trial's learning curve with pruned trials
marked, parameter importances and parallel coordinates (all from ``optuna.visualization``),
the best trial's confusion matrix and per-class F1, counts by state and the best trial's
exported training config.
"""

from __future__ import annotations

import base64
import html
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from hpo import __version__
from hpo.artifacts import class_names_of, per_class_rows
from hpo.config import dump_yaml
from hpo.exceptions import HPOError
from hpo.export import exported_config, select_trial
from hpo.files import write_text_atomic
from hpo.study import (
    imported_count,
    is_imported,
    kept_trials,
    mask_url,
    read_study_record,
    read_trial_record,
    state_counts,
)

__all__ = ["build_report", "write_report"]

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
h1 { margin-bottom: 0.2em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; } td, th { padding: 2px 10px; border-bottom: 1px solid #eee; }
th { text-align: left; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
pre { background: #f6f8fa; padding: 1em; overflow-x: auto; }
.meta { color: #666; } .missing { color: #a60; font-style: italic; }
.row { display: flex; gap: 2em; align-items: flex-start; flex-wrap: wrap; }
img { max-width: 100%; }
"""


def write_report(study: optuna.Study, out: Path, *, storage_url: str) -> Path:
    """Build the report of ``study`` and write it to ``out`` (atomically: a failed write leaves
    nothing, and raises :class:`~hpo.exceptions.HPOError` naming the file)."""
    return write_text_atomic(out, build_report(study, storage_url=storage_url))


def build_report(study: optuna.Study, *, storage_url: str) -> str:
    """The report of ``study`` as one HTML document.

    Args:
        study: The study.
        storage_url: Its storage URL (shown with the password masked).
    """
    from plotly.offline import get_plotlyjs

    trials = kept_trials(study)
    complete = [t for t in trials if t.state == TrialState.COMPLETE and not is_imported(t)]
    best = select_trial(study) if complete else None  # imported trials are never the best
    name = html.escape(study.study_name)
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Study {name}</title>",
        f"<style>{_CSS}</style>",
        f'<script type="text/javascript">{get_plotlyjs()}</script>',
        "</head><body>",
        f"<h1>Study {name}</h1>",
        f'<p class="meta">{study.direction.name.lower()} &middot; storage '
        f"{html.escape(mask_url(storage_url))} &middot; generated {generated} by hpo "
        f"{__version__}</p>",
        "<h2>Trials by state</h2>",
        _counts_table(study),
        *_imported_note(study),
    ]
    if best is not None:
        parts.append(f"<p>Best trial: <b>{best.number}</b>, macro-F1 <b>{best.value:.4f}</b></p>")
    parts += [
        "<h2>Optimization history</h2>",
        _plot(optuna.visualization.plot_optimization_history, study),
        "<h2>Learning curves</h2>",
        '<p class="meta">Validation macro-F1 at pruner step fold &times; epochs + epoch &minus; 1 '
        "(folds and steps count from 0, epochs from 1), one line per trial; pruned trials are "
        "dotted and end in a red cross.</p>",
        _plot(_learning_curves, study, trials),
        "<h2>Parameter importances</h2>",
        _plot(optuna.visualization.plot_param_importances, study),
        "<h2>Parallel coordinates</h2>",
        _plot(optuna.visualization.plot_parallel_coordinate, study),
    ]
    if best is not None:
        parts += _best_trial(study, best, storage_url)
    else:
        parts.append('<p class="missing">No complete trial yet: no best trial to show.</p>')
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _counts_table(study: optuna.Study) -> str:
    counts = state_counts(study)
    imported = imported_count(study)
    if imported:
        counts["imported (not trained here)"] = imported
    rows = "".join(
        f'<tr><td>{state}</td><td class="num">{n}</td></tr>' for state, n in counts.items()
    )
    return f"<table><tr><th>state</th><th>trials</th></tr>{rows}</table>"


def _imported_note(study: optuna.Study) -> list[str]:
    """What warm starts imported: counted apart, plotted with the rest, never the best."""
    n = imported_count(study)
    if not n:
        return []
    sources = ", ".join(
        f"{html.escape(w.study)} ({w.imported} trials, {html.escape(w.storage)})"
        for w in read_study_record(study).warm_starts
    )
    return [
        f"<p>Imported by <code>--warm-start</code>: <b>{n}</b> trials from {sources or '?'}. "
        "They were trained in that study, not here: the plots below include them, the counts "
        "above and the best trial do not.</p>"
    ]


def _plot(make: Callable[..., Any], *args: Any) -> str:
    """One plotly figure as a ``<div>``, or a note saying why it cannot be drawn."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fig = make(*args)
    except (ValueError, RuntimeError, ZeroDivisionError) as exc:
        return f'<p class="missing">not available: {html.escape(str(exc))}</p>'
    if not fig.data:
        return '<p class="missing">not available: no trial to plot yet</p>'
    fig.update_layout(height=450, margin={"l": 60, "r": 30, "t": 50, "b": 50})
    div: str = fig.to_html(full_html=False, include_plotlyjs=False)
    return f'<div class="plot">{div}</div>'


def _learning_curves(study: optuna.Study, trials: list[FrozenTrial]) -> Any:
    """Optuna's intermediate-values plot with pruned trials dotted and their last step marked."""
    import plotly.graph_objects as go

    fig = optuna.visualization.plot_intermediate_values(study)
    by_name = {f"Trial{t.number}": t for t in trials}
    xs, ys, labels = [], [], []
    for trace in fig.data:
        trial = by_name.get(str(trace.name))
        if trial is None or trial.state != TrialState.PRUNED or not trial.intermediate_values:
            continue
        trace.update(line={"dash": "dot"}, name=f"Trial{trial.number} (pruned)")
        step = max(trial.intermediate_values)
        xs.append(step)
        ys.append(trial.intermediate_values[step])
        labels.append(f"trial {trial.number} pruned at step {step}")
    if xs:
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                mode="markers",
                name="pruned",
                text=labels,
                marker={"symbol": "x", "size": 12, "color": "red"},
            )
        )
    fig.update_layout(title="Learning curves (validation macro-F1)", showlegend=True)
    fig.update_xaxes(title="step (fold x epochs + epoch - 1)")
    fig.update_yaxes(title="macro-F1")
    return fig


def _png(data: bytes, alt: str) -> str:
    encoded = base64.b64encode(data).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{encoded}">'


def _best_trial(study: optuna.Study, best: FrozenTrial, storage_url: str) -> list[str]:
    from hpo.plots import confusion_figure, learning_curves_figure, png_bytes

    parts = [f"<h2>Best trial {best.number}</h2>"]
    params = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{html.escape(str(v))}</td></tr>"
        for k, v in sorted(best.params.items())
    )
    parts.append(f"<table><tr><th>parameter</th><th>value</th></tr>{params}</table>")
    record = read_trial_record(best)
    if record.history:
        fig = learning_curves_figure(record.history, title=f"trial {best.number} learning curves")
        parts.append(_png(png_bytes(fig), "learning curves of the best trial"))
    confusion = record.scores.confusion if record.scores is not None else None
    per_class = record.scores.per_class_f1 if record.scores is not None else ()
    n = len(confusion) if confusion else len(per_class)
    names = class_names_of(study, n)
    parts.append('<div class="row">')
    if confusion:
        fig = confusion_figure(confusion, names, title=f"trial {best.number}: confusion matrix")
        parts.append(f"<div>{_png(png_bytes(fig), 'confusion matrix of the best trial')}</div>")
    if per_class:
        rows = "".join(
            f"<tr><td>{r['class']}</td><td>{html.escape(str(r['name']))}</td>"
            f'<td class="num">{r["f1"]:.4f}</td><td class="num">{r["support"] or ""}</td></tr>'
            for r in per_class_rows(per_class, names, confusion)
        )
        parts.append(
            '<div><table id="per-class-f1"><tr><th>class</th><th>name</th><th>F1</th>'
            f"<th>images</th></tr>{rows}</table></div>"
        )
    parts.append("</div>")
    parts.append("<h2>Exported config of the best trial</h2>")
    try:
        config = exported_config(study, best, storage_url)
        yaml_text = dump_yaml(config.to_dict())
        parts.append(
            '<p class="meta">What <code>hpo export</code> writes and <code>hpo train</code> '
            "reads.</p>"
        )
        parts.append(f'<pre id="best-config">{html.escape(yaml_text)}</pre>')
    except HPOError as exc:
        parts.append(f'<p class="missing">not available: {html.escape(str(exc))}</p>')
    return parts
