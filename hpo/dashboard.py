"""The optuna-dashboard web UI served on a study's storage."""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from optuna.storages import RDBStorage

from hpo.artifacts import open_artifact_store
from hpo.exceptions import HPOError, StorageError
from hpo.study import load_study, mask_url, open_storage

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "Dashboard", "open_dashboard"]

_log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
_WILDCARD_HOSTS = ("0.0.0.0", "::", "")


class _Server(ThreadingMixIn, WSGIServer):
    # The page fires many API requests at once; one thread each, none blocking shutdown.
    daemon_threads = True


class _Server6(_Server):
    address_family = socket.AF_INET6


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        _log.debug("dashboard %s - %s", self.address_string(), format % args)


@dataclass
class Dashboard:
    """A dashboard bound to its address, ready to serve one study's storage."""

    study_name: str
    study_id: int
    storage_url: str
    server: WSGIServer

    @property
    def host(self) -> str:
        """The address the server is bound to."""
        return str(self.server.server_address[0])

    @property
    def port(self) -> int:
        """The bound port (the one chosen by the system when 0 was asked for)."""
        return int(self.server.server_address[1])

    @property
    def all_interfaces(self) -> bool:
        """Whether the server listens on every interface, not only one address."""
        return self.host in _WILDCARD_HOSTS

    @property
    def url(self) -> str:
        """The study's page, e.g. ``http://127.0.0.1:8080/dashboard/studies/1``."""
        host = "localhost" if self.all_interfaces else self.host
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}/dashboard/studies/{self.study_id}"

    @property
    def masked_storage_url(self) -> str:
        """The storage URL with its password hidden."""
        return mask_url(self.storage_url)

    def serve_forever(self) -> None:
        """Serve requests until interrupted (KeyboardInterrupt propagates)."""
        self.server.serve_forever()

    def close(self) -> None:
        """Stop serving (when running in another thread) and release the port."""
        self.server.server_close()


def open_dashboard(
    study_name: str,
    storage_url: str,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    artifact_dir: Path | None = None,
    artifact_location: str | None = None,
) -> Dashboard:
    """Check that the study exists and bind optuna-dashboard to ``host:port``.

    Args:
        study_name: The study to show; it must exist in the storage.
        storage_url: SQLAlchemy URL of the storage (as returned by ``hpo.study.storage_for``).
        host: Address to bind; loopback unless told otherwise, since the dashboard can edit
            and delete studies and has no authentication.
        port: Port to bind; 0 picks a free one.
        artifact_dir: Folder of a ``FileSystemArtifactStore`` holding the trials' artifacts;
            it must exist.
        artifact_location: Otherwise, the study's artifact store (``hpo.artifacts``: a folder,
            which may not exist yet while the first trials run, or ``s3://bucket/prefix``).

    Returns:
        The bound dashboard; call ``serve_forever()`` to serve it.

    Raises:
        StorageError: the storage cannot be opened or holds no study of that name.
        HPOError: the address cannot be bound (port in use, unknown host).
    """
    # The dashboard runs no trials: no heartbeat thread, no stale-trial callback; a missing
    # SQLite file is an error, never created.
    storage = open_storage(storage_url, heartbeat_interval=None, create=False)
    study = load_study(study_name, storage)
    study_id = storage.get_study_id_from_name(study.study_name)

    import optuna_dashboard

    artifact_store = None
    if artifact_dir is not None:
        if not artifact_dir.is_dir():
            raise StorageError(f"artifact folder {artifact_dir} does not exist")
        from optuna.artifacts import FileSystemArtifactStore

        artifact_store = FileSystemArtifactStore(artifact_dir)
    elif artifact_location is not None:
        artifact_store = open_artifact_store(artifact_location)
    app = optuna_dashboard.wsgi(storage, artifact_store=artifact_store)

    server_class = _Server6 if ":" in host else _Server
    try:
        server = make_server(
            host, port, app, server_class=server_class, handler_class=_QuietHandler
        )
    except OSError as exc:
        if isinstance(storage, RDBStorage):
            storage.engine.dispose()
        reason = exc.strerror or str(exc)
        raise HPOError(
            f"cannot listen on {host}:{port}: {reason}; choose another --port or --host"
        ) from None
    return Dashboard(
        study_name=study.study_name, study_id=study_id, storage_url=storage_url, server=server
    )
