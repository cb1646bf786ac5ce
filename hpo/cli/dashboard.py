"""``hpo dashboard``: optuna-dashboard on a study's storage."""

from __future__ import annotations

from pathlib import Path

import click

from hpo.cli._options import storage_option
from hpo.cli._signals import stop_on_signals

__all__ = ["dashboard"]


@click.command(short_help="Serve optuna-dashboard for a study.")
@click.option("--study", "study_name", required=True, metavar="NAME", help="Study to show.")
@click.option(
    "--config",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Study file, for its storage URL (default: studies/NAME.yaml).",
)
@storage_option
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to bind; the dashboard has no login, so 0.0.0.0 exposes it to the network.",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8080,
    show_default=True,
    help="Port to bind; 0 picks a free one.",
)
@click.option(
    "--artifacts",
    "artifact_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Folder of the study's artifact store (default: study.artifacts of the study file, "
    "else studies/NAME.artifacts).",
)
def dashboard(
    study_name: str,
    config: Path | None,
    storage: str | None,
    host: str,
    port: int,
    artifact_dir: Path | None,
) -> None:
    """Serve optuna-dashboard for study NAME until Ctrl-C."""
    from hpo.artifacts import artifact_location_for
    from hpo.dashboard import open_dashboard
    from hpo.study import storage_for

    url = storage_for(study_name, cli=storage, config=config)
    location = None if artifact_dir else artifact_location_for(study_name, config=config)
    board = open_dashboard(
        study_name,
        url,
        host=host,
        port=port,
        artifact_dir=artifact_dir,
        artifact_location=location,
    )
    # One write, so a script that reads the URL line also finds the lines after it.
    lines = [f"Dashboard of study {board.study_name!r}: {board.url}"]
    if board.all_interfaces:
        lines.append(f"Listening on all interfaces ({board.host}), port {board.port}.")
    lines.append(f"Storage: {board.masked_storage_url}")
    lines.append(f"Artifacts: {artifact_dir or location}")
    lines.append("Press Ctrl-C to stop.")
    try:
        # Its own handlers, before it says how to stop it: a dashboard started with `cmd &`
        # from a script inherits SIGINT ignored, and Python then never turns Ctrl-C or
        # `kill -INT` into KeyboardInterrupt.
        with stop_on_signals():
            click.echo("\n".join(lines))
            board.serve_forever()
    except KeyboardInterrupt:
        click.echo("stopped", err=True)
    finally:
        board.close()
