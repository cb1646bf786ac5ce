"""What one worker of a study is asked to do: builds its session, or a child's command line."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hpo.train import configure_backends, resolve_device, set_threads
from hpo.tune import TuneSession, prepare_session

__all__ = ["WorkerRequest"]


@dataclass(frozen=True)
class WorkerRequest:
    """One worker of a study: which study, where it is stored, on what device, until when.

    The same request runs in this process (:meth:`open_session`) or in a child process that a
    supervisor starts (:meth:`command`, which the child turns back into this request).

    Attributes:
        study: The study's name; its file is ``studies/NAME.yaml`` unless ``config`` is given.
        config: Study file other than ``studies/NAME.yaml``.
        overrides: ``KEY=VALUE`` settings over the study file (value parsed as YAML; later wins).
        storage: Storage URL (None: ``HPO_STORAGE``, then the study file, then the default).
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:K``.
        n_trials: Study-wide total of finished (complete + pruned) trials; None: no total.
        timeout: Seconds after which the worker starts no new trial; None: no limit.
        allow_mismatch: Join a study whose stored study file or data fingerprint differ.
        threads: Torch CPU threads of the worker's process; None: torch's default.
        warm_start: Import the finished trials of this study first (``--warm-start``); a
            supervisor does it once, before its workers start, so their command lines leave
            it out.
        warm_start_storage: The storage of ``warm_start`` (None: resolved as this study's).
    """

    study: str
    config: Path | None = None
    overrides: tuple[str, ...] = ()
    storage: str | None = None
    device: str = "auto"
    n_trials: int | None = None
    timeout: float | None = None
    allow_mismatch: bool = False
    threads: int | None = None
    warm_start: str | None = None
    warm_start_storage: str | None = None

    def open_session(
        self, *, advance: Callable[[int, int], None] | None = None, warn: bool = True
    ) -> TuneSession:
        """Set this process up for the worker, check everything, open the study, load the data.

        The process-wide switches (torch threads, the device's backend settings: cuDNN
        autotuning, TF32) are set here, once per worker process, before any trial.

        Args:
            advance: Told ``advance(done, total)`` while the images are decoded.
            warn: Log the study file's warnings (a supervised child leaves them to its parent).

        Raises:
            HPOError: The device, study file, data or storage is not usable (one line saying
                which and why); see :func:`hpo.tune.prepare_session`.
        """
        device = resolve_device(self.device)
        if self.threads is not None:
            set_threads(self.threads)
        configure_backends(device)
        return prepare_session(
            self.study,
            config=self.config,
            overrides=self.overrides,
            storage=self.storage,
            device=device,
            allow_mismatch=self.allow_mismatch,
            advance=advance,
            n_trials=self.n_trials,
            warm_start=self.warm_start,
            warm_start_storage=self.warm_start_storage,
            warn=warn,
        )

    def command(self, *, parent: int) -> list[str]:
        """The command line of a child process that runs this request for supervisor ``parent``.

        The child is ``hpo run`` (so it stops on signals and reports errors as every worker
        does) in its quiet mode that writes :mod:`protocol <hpo.workers._protocol>` messages.
        The storage URL never goes on a command line, where ``ps`` would show its password:
        the supervisor hands it over in ``HPO_STORAGE``. ``--warm-start`` stays out too: the
        supervisor imported the trials before starting its workers.
        """
        argv = [sys.executable, "-m", "hpo", "run", "--study", self.study, "--quiet"]
        argv += ["--device", self.device]
        if self.threads is not None:
            argv += ["--threads", str(self.threads)]
        argv += ["--worker-of", str(parent)]
        if self.config is not None:
            argv += ["--config", str(self.config)]
        if self.n_trials is not None:
            argv += ["--n-trials", str(self.n_trials)]
        if self.timeout is not None:
            argv += ["--timeout", str(self.timeout)]
        for override in self.overrides:
            argv += ["--set", override]
        if self.allow_mismatch:
            argv.append("--allow-mismatch")
        return argv
