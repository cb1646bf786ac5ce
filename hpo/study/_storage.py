"""Study storage: URL resolution, one ``open_storage`` for every backend, masking, existence."""

from __future__ import annotations

import math
import os
import re
import time
import warnings
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy
from optuna.storages import BaseStorage, RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial

from hpo.exceptions import ConfigError, StorageError
from hpo.study._outage import ResilientRDBStorage
from hpo.study._record import is_discarded

__all__ = [
    "ATTEMPT_MARGIN",
    "DEFAULT_OUTAGE_LIMIT",
    "RetryStaleTrial",
    "check_study_name",
    "default_grace_period",
    "list_study_names",
    "load_study",
    "mask_url",
    "minimum_grace_period",
    "normalize_url",
    "open_storage",
    "resolve_storage_url",
    "sqlite_file",
]

_CREATE_ATTEMPTS = 5
_CONNECT_TIMEOUT = 10
_SQLITE_BUSY_TIMEOUT = 5
DEFAULT_OUTAGE_LIMIT = 120.0
"""Seconds a worker waits for an unreachable database (``study.db_outage_seconds``)."""
ATTEMPT_MARGIN = 30
"""Seconds one storage attempt may take on top of the outage limit (a connect timeout, a busy
SQLite file, a lock held until the server ends an idle transaction): part of every grace
period, so a worker that rides out an outage never finds its own trial judged stale."""

# Server-side limits on every PostgreSQL connection, so a worker that vanishes (killed, frozen,
# cut off) cannot hold a row lock for long: the server ends its idle transaction, finds its
# socket dead through keepalives, and a statement or a lock wait cannot run for ever.
_POSTGRES_OPTIONS = {
    "idle_in_transaction_session_timeout": "20s",
    "lock_timeout": "25s",
    "statement_timeout": "120s",
    "tcp_keepalives_idle": "10",
    "tcp_keepalives_interval": "5",
    "tcp_keepalives_count": "3",
    "tcp_user_timeout": "20000",
}
_POSTGRES_CONNECT_ARGS: dict[str, Any] = {
    "connect_timeout": _CONNECT_TIMEOUT,  # an unreachable host fails a try, not hangs it
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 20000,
    "options": " ".join(f"-c {key}={value}" for key, value in _POSTGRES_OPTIONS.items()),
}


def default_grace_period(heartbeat_interval: int, outage_limit: float) -> int:
    """Seconds without a heartbeat before a trial is stale, unless the study file says.

    A worker cut off from the database for up to ``outage_limit`` seconds keeps its trial:
    its next heartbeat may come an interval, an outage and one attempt's own time late.
    """
    return max(2 * heartbeat_interval, minimum_grace_period(heartbeat_interval, outage_limit))


def minimum_grace_period(heartbeat_interval: int, outage_limit: float) -> int:
    """The shortest safe grace period: shorter, a live worker's trial can be judged stale."""
    return heartbeat_interval + math.ceil(outage_limit) + ATTEMPT_MARGIN


_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def check_study_name(name: str) -> str:
    """A study name is also a file name (``studies/NAME.yaml``, ``NAME.db``, ``NAME.artifacts``).

    Raises:
        ConfigError: the name is empty, holds a ``/``, starts with ``.`` or is otherwise not a
            plain file name, so it could write outside ``studies/`` or hide there.
    """
    if not _SAFE_NAME.fullmatch(name) or name.endswith(".yaml"):
        raise ConfigError(
            f"study name {name!r} is not allowed: use letters, digits, '.', '_' and '-' "
            "(up to 128), starting with a letter or digit, without '.yaml' (e.g. mask-clf)"
        )
    return name


def resolve_storage_url(
    study_name: str, *, cli: str | None, spec: str | None, studies_dir: Path
) -> str:
    """Storage precedence: ``--storage``, ``HPO_STORAGE``, the study file, then SQLite."""
    url = cli or os.environ.get("HPO_STORAGE") or spec
    if not url:
        return f"sqlite:///{studies_dir / f'{check_study_name(study_name)}.db'}"
    return normalize_url(url)


def normalize_url(url: str) -> str:
    """The URL SQLAlchemy is given: plain ``postgresql://`` selects psycopg 3, which we ship.

    Raises:
        StorageError: not a URL SQLAlchemy can parse (a non-numeric port, an unencoded ``@``
            in the password, no ``://``); the message masks every credential.
    """
    example = "(e.g. sqlite:///studies/x.db or postgresql://user:pass@host/db)"
    if _authority(url).count("@") > 1:
        raise StorageError(
            f"storage URL {mask_url(url)} has an '@' in its user or password: write it as %40 "
            f"{example}"
        )
    try:
        parsed = sqlalchemy.make_url(url)
    except (sqlalchemy.exc.ArgumentError, ValueError) as exc:
        why = "its port is not a number" if "int()" in str(exc) else "not a valid SQLAlchemy URL"
        raise StorageError(f"storage URL {mask_url(url)}: {why} {example}") from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


# Query parameters that carry a secret (libpq's password and sslpassword, tokens of cloud
# proxies); matched case-insensitively, also as a suffix (``db_password``, ``auth_token``).
_SECRET_PARAMS = re.compile(
    r"(?i)(?P<key>[^?&;=]*(?:password|passwd|pass|pwd|secret|token|api_?key|credentials?))="
    r"(?P<value>[^&;#]*)"
)


def _authority(url: str) -> str:
    """What follows ``scheme://`` (or ``//``) up to the path: ``user:password@host:port``.

    The userinfo ends at the last ``@`` before the query, so a password holding an unencoded
    ``@`` or ``/`` still counts as userinfo.
    """
    start = url.find("//")
    if start < 0:
        return ""
    rest = url[start + 2 :].split("?", 1)[0]
    if rest.startswith("/"):  # sqlite:///path: no authority, an '@' belongs to the path
        return ""
    at = rest.rfind("@")
    host_end = len(rest)
    for sep in "/#":
        found = rest.find(sep, at + 1)
        if found >= 0:
            host_end = min(host_end, found)
    return rest[:host_end]


def mask_url(url: str) -> str:
    """The URL with every credential replaced by ``***``, for logs, messages and exports.

    Masks the password of the userinfo (even one holding an unencoded ``@``), query parameters
    such as ``password=``, ``sslpassword=`` or ``token=``, and does not trust a malformed URL:
    whatever comes between ``//`` and the last ``@`` is hidden, and a URL without ``//`` shows
    only its scheme.
    """
    masked = _SECRET_PARAMS.sub(lambda m: f"{m['key']}=***", url)
    start = masked.find("//")
    if start < 0:
        # No URL at all (every SQLAlchemy URL has '//'): whatever follows a scheme may be a
        # password pasted in the wrong place, so only the scheme is shown.
        scheme = re.match(r"[A-Za-z][A-Za-z0-9+.-]*(?=:)", masked)
        return f"<invalid storage URL: {scheme[0] + ':...' if scheme else 'no scheme'}>"
    authority = _authority(masked)
    at = authority.rfind("@")
    if at < 0:
        return masked
    userinfo = authority[:at]
    user, has_password, _ = userinfo.partition(":")
    if "@" in user or "/" in user:
        user = "***"
    shown = f"{user}:***" if has_password else user
    head = masked[: start + 2]
    return head + shown + masked[start + 2 + at :]


def sqlite_file(url: str) -> Path | None:
    """The database file of a file-backed SQLite URL, else None."""
    parsed = sqlalchemy.make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(str(parsed.database))


def open_storage(
    url: str,
    *,
    heartbeat_interval: int | None = 60,
    grace_period: int | None = None,
    max_retry: int = 2,
    create: bool = True,
    outage_limit: float = DEFAULT_OUTAGE_LIMIT,
) -> BaseStorage:
    """The storage behind ``url``; the one place that knows the backends.

    Dispatches on the URL's scheme, like Optuna's ``get_storage``: SQLite and every other
    SQLAlchemy database become an ``RDBStorage`` with heartbeats and stale-trial retry (SQLite
    waits for the lock of other workers, PostgreSQL pings pooled connections) whose calls ride
    out a database outage of up to ``outage_limit`` seconds (:mod:`hpo.study._outage`). A new
    backend (Optuna's JournalStorage, its gRPC proxy) is one more branch here.

    Args:
        url: Storage URL.
        heartbeat_interval: Seconds between running trials' heartbeats; None for none (readers
            such as the dashboard or ``hpo export``).
        grace_period: Seconds without a heartbeat before a trial is stale; None for
            :func:`default_grace_period`.
        max_retry: How often a stale trial is re-queued with the same parameters.
        create: Create a missing SQLite file; False for commands that only read an existing
            study (a typo must not leave an empty database behind).
        outage_limit: Seconds calls retry while the database is unreachable (once opened).

    Raises:
        StorageError: the database cannot be reached, or (``create=False``) does not exist;
            the password is masked.
    """
    url = normalize_url(url)
    path = sqlite_file(url)
    if path is not None:
        if not create and not path.is_file():
            raise StorageError(
                f"no study database at {path}: storage {mask_url(url)} does not exist; run "
                "`hpo run` first, or point --storage / HPO_STORAGE at the study's storage"
            )
        if not path.parent.exists():
            raise StorageError(f"storage {mask_url(url)}: folder {path.parent} does not exist")
    if heartbeat_interval and grace_period is None:
        grace_period = default_grace_period(heartbeat_interval, outage_limit)
    return _rdb_storage(
        url,
        heartbeat_interval=heartbeat_interval,
        grace_period=grace_period,
        max_retry=max_retry,
        outage_limit=outage_limit,
    )


def _rdb_storage(
    url: str,
    *,
    heartbeat_interval: int | None,
    grace_period: int | None,
    max_retry: int,
    outage_limit: float,
) -> RDBStorage:
    engine_kwargs: dict[str, Any] = {}
    if sqlalchemy.make_url(url).get_backend_name() == "sqlite":
        # Many workers on one machine share the file: a try waits a little for the lock, then
        # fails as "database is locked" and is retried inside the call's outage clock.
        engine_kwargs["connect_args"] = {"timeout": min(_SQLITE_BUSY_TIMEOUT, outage_limit)}
    else:
        engine_kwargs["pool_pre_ping"] = True
        engine_kwargs["pool_size"] = 2
        if heartbeat_interval:
            # A worker uses the database from two threads, its own and Optuna's heartbeat
            # thread, one connection each: it never holds more than 2, so a server takes
            # 2 per worker (BENCHMARKS.md, "Many workers"). Both stay open: a pool of 1 plus an
            # overflow connection would reconnect for nearly every trial, and a pool of 1 alone
            # cannot open the storage (Optuna's schema check takes two at once). A third
            # thread would wait for a connection rather than open one.
            engine_kwargs["max_overflow"] = 0
            engine_kwargs["pool_timeout"] = outage_limit + ATTEMPT_MARGIN
        else:
            engine_kwargs["max_overflow"] = 4  # readers: the dashboard serves from threads
        if sqlalchemy.make_url(url).get_backend_name() == "postgresql":
            engine_kwargs["connect_args"] = dict(_POSTGRES_CONNECT_ARGS)
    callback = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if heartbeat_interval:
            callback = RetryStaleTrial(max_retry=max_retry)
    for attempt in range(_CREATE_ATTEMPTS):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return ResilientRDBStorage(
                    url,
                    outage_limit=outage_limit,
                    masked_url=mask_url(url),
                    engine_kwargs=engine_kwargs,
                    heartbeat_interval=heartbeat_interval,
                    grace_period=grace_period,
                    heartbeat_stale_trial_callback=callback,
                )
        except (sqlalchemy.exc.SQLAlchemyError, ImportError) as exc:
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            # Workers started together on a new database race to create its tables; the
            # losers see the winner's rows and simply open the storage again.
            racing = isinstance(exc, sqlalchemy.exc.IntegrityError) or "already exists" in reason
            if racing and attempt + 1 < _CREATE_ATTEMPTS:
                time.sleep(0.2 * (attempt + 1))
                continue
            raise StorageError(f"cannot open storage {mask_url(url)}: {reason}") from None
    raise AssertionError("unreachable")


class RetryStaleTrial(RetryHeartbeatStaleTrialCallback):
    """Re-queue a stale trial with the same parameters, unless it was discarded.

    A trial discarded over the study's total (its worker lost the race for the last slot) has
    no result to retry: re-queued, its copy would inherit the mark, run, and never count.
    """

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if is_discarded(trial):
            return
        super().__call__(study, trial)


def list_study_names(storage: BaseStorage) -> list[str]:
    """Names of the studies in ``storage``, sorted."""
    return sorted(s.study_name for s in storage.get_all_studies())


def load_study(name: str, storage: str | BaseStorage) -> optuna.Study:
    """Load an existing study: the one "does this study exist" check of every reading command.

    A URL is opened read-only (no heartbeats; a missing SQLite file is an error, not created).

    Raises:
        StorageError: the storage or the study does not exist; names the studies there.
    """
    if isinstance(storage, str):
        try:
            storage = open_storage(storage, heartbeat_interval=None, create=False)
        except StorageError as exc:
            raise StorageError(f"no study named {name!r}: {exc}") from None
    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        names = list_study_names(storage)
        known = ", ".join(names) if names else "none"
        where = mask_url(storage.url) if isinstance(storage, RDBStorage) else "the storage"
        raise StorageError(f"no study named {name!r} in {where}; studies there: {known}") from None
