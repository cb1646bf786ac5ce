"""Test helpers shipped with hpo: a throwaway PostgreSQL server, tiny study files, a tiny study.

- ``postgres``: a PostgreSQL server started in a temporary folder, for the storage tests, and
  ``free_port`` (a port nothing listens on, for an unreachable server).
- ``studies``: ``tiny_study``, the text of a study file that trains in seconds on a CPU.
- ``objective``: ``tiny_objective``, the CPU objective of such a file, for ``study.ask()`` tests.
- ``pictures``: a tiny real study with trial artifacts, notes and TensorBoard runs.
- ``weights``: made-up ImageNet weights in torch's cache, trusted as the real files.
- ``trials``: ``running_trial``, a trial started by hand as a worker starts one.
- ``disks``: ``mounted_tmpfs``, a small real disk (a tmpfs) that a test can fill up.
- ``cli``: ``one_error_line``, the one ``error:`` line a failing command ends with.
- ``trackers``: W&B kept offline and local (``wandb_offline_env``), and its offline runs read
  back from their record files (``read_wandb_runs``).
"""

from __future__ import annotations

from hpo.testing.postgres import (
    PostgresNotFound,
    PostgresServer,
    find_postgres_bindir,
    free_port,
    postgres_server,
    require_postgres_bindir,
)
from hpo.testing.trials import running_trial

__all__ = [
    "PostgresNotFound",
    "PostgresServer",
    "find_postgres_bindir",
    "free_port",
    "postgres_server",
    "require_postgres_bindir",
    "running_trial",
]
