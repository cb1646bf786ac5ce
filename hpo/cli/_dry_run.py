"""``hpo run --dry-run``: the checked study file and one sampled trial, as plain lines."""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["print_dry_run"]


def print_dry_run(
    name: str,
    *,
    config: Path | None,
    overrides: tuple[str, ...],
    storage: str | None,
    warm_start: str | None,
    warm_start_storage: str | None,
) -> None:
    from hpo.cli._display import flow_yaml, schedule_lines
    from hpo.config import dump_yaml
    from hpo.tune import dry_run

    # Plain lines, never wrapped or styled: users grep and diff this output.
    checked = dry_run(
        name,
        config=config,
        overrides=overrides,
        storage=storage,
        warm_start=warm_start,
        warm_start_storage=warm_start_storage,
    )
    spec, samples = checked.spec, checked.data
    study = spec.study
    lines = [
        f"study file {spec.path} is valid | study {name} | storage {checked.masked_storage} "
        "(not opened)",
        f"data: {len(samples)} images of {len(set(samples.groups))} people/groups in "
        f"{samples.num_classes} classes ({spec.base_config().data.root})",
        f"sampler: {flow_yaml(dict(study.sampler))} | pruner: {flow_yaml(dict(study.pruner))}",
        f"search space ({len(checked.space.params)} parameters; -> the value sampled below):",
    ]
    for path, param in checked.space.params.items():
        lines.append(f"  {path}: {param.describe()}  -> {flow_yaml(checked.sampled_values[path])}")
    if checked.enqueue:
        lines.append(f"study.enqueue: {len(checked.enqueue)} configurations tried first:")
        lines += [f"  {flow_yaml(params)}" for params in checked.enqueue]
    if checked.warm_start is not None:
        lines.append(checked.warm_start.describe())
    schedules, warnings = schedule_lines(checked.schedules)
    lines += schedules
    lines.append("one sampled trial's config (what `hpo export` would write for it):")
    click.echo("\n".join(lines))
    click.echo(dump_yaml(checked.sample.to_dict()), nl=False)
    for warning in [*warnings, *(f"warning: {w}" for w in checked.warnings)]:
        click.echo(warning, err=True)
    click.echo("dry run: nothing trained, nothing written")
