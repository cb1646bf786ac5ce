"""A throwaway PostgreSQL server for tests: initdb into a temp dir, start, yield a URL, remove.

The server listens on a free loopback port with password (SCRAM) authentication, so tests
exercise the same code path as a real deployment. The superuser is reachable only through the
unix socket inside the temp dir; tests get an ordinary user with a password and CREATEDB.
PostgreSQL refuses to run as root: when the tests run as root, every server command runs as
the ``postgres`` system user (``nobody`` where that user does not exist).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import re
import shutil
import socket
import stat
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "PostgresNotFound",
    "PostgresServer",
    "find_postgres_bindir",
    "free_port",
    "postgres_server",
    "require_postgres_bindir",
]

_SUPERUSER = "postgres"
_START_ATTEMPTS = 3
_COMMAND_TIMEOUT = 60


class PostgresNotFound(RuntimeError):
    """No PostgreSQL server binaries (initdb, pg_ctl) on this machine."""


def find_postgres_bindir() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl``, or None.

    Looks at ``$HPO_PG_BINDIR``, ``pg_config --bindir``, ``/usr/lib/postgresql/*/bin`` (newest
    version first, the Debian layout) and finally ``PATH``.
    """
    candidates: list[Path] = []
    if env_dir := os.environ.get("HPO_PG_BINDIR"):
        candidates.append(Path(env_dir))
    if pg_config := shutil.which("pg_config"):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, check=True, timeout=10
            ).stdout.strip()
            if out:
                candidates.append(Path(out))
    debian = glob.glob("/usr/lib/postgresql/*/bin")
    candidates.extend(Path(p) for p in sorted(debian, key=_version_key, reverse=True))
    if initdb := shutil.which("initdb"):
        candidates.append(Path(initdb).parent)
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
            return folder
    return None


def _version_key(path: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", path))


def require_postgres_bindir() -> Path:
    """The binaries folder; skips the calling test when there is none.

    On CI (``CI=true``) with ``HPO_REQUIRE_POSTGRES=1`` a missing server fails the test instead,
    so a broken CI image cannot turn the PostgreSQL tests into silent skips.
    """
    import pytest

    bindir = find_postgres_bindir()
    if bindir is not None:
        return bindir
    reason = (
        "PostgreSQL server binaries not found (looked at $HPO_PG_BINDIR, pg_config --bindir, "
        "/usr/lib/postgresql/*/bin, PATH); install the `postgresql` package"
    )
    required = os.environ.get("HPO_REQUIRE_POSTGRES") == "1"
    if os.environ.get("CI", "").lower() == "true" and required:
        pytest.fail(reason + " (required: CI=true and HPO_REQUIRE_POSTGRES=1)")
    pytest.skip(reason)


@dataclass(frozen=True)
class PostgresServer:
    """A running throwaway server and the ordinary user/database created on it."""

    host: str
    port: int
    user: str
    password: str
    database: str
    socket_dir: Path
    bindir: Path | None = None
    data_dir: Path | None = None

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``pg_ctl stop -m MODE``) to simulate an outage; :meth:`start` again.

        Clients see their connections closed and new logins refused until the server is back.
        """
        self._pg_ctl("-m", mode, "-w", "stop")

    def start(self) -> None:
        """Start the stopped server again, on the same port with the same data."""
        assert self.data_dir is not None
        self._pg_ctl("-l", str(self.data_dir.parent / "server.log"), "-w", "-t", "30", "start")

    def _pg_ctl(self, *args: str) -> None:
        if self.bindir is None or self.data_dir is None:
            raise RuntimeError("this server was not started by postgres_server()")
        _run(
            [str(self.bindir / "pg_ctl"), "-D", str(self.data_dir), *args],
            run_as=_server_user(),
            cwd=self.data_dir.parent,
        )

    @property
    def url(self) -> str:
        """``postgresql://user:password@127.0.0.1:PORT/database``."""
        return self.url_for(self.database)

    def url_for(self, database: str) -> str:
        """The URL of another database on this server, same user and password."""
        return f"postgresql://{self.user}:{self.password}@{self.host}:{self.port}/{database}"

    def create_database(self, name: str | None = None) -> str:
        """Create an empty database owned by the test user; returns its URL."""
        from psycopg import sql

        name = name or f"t_{uuid.uuid4().hex[:16]}"
        with self._admin() as conn:
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(name), sql.Identifier(self.user)
                )
            )
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        """Drop a database, closing the connections that pools still hold to it."""
        from psycopg import sql

        with self._admin() as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

    def _admin(self) -> Any:
        import psycopg

        # The superuser has no password: it is reachable only through the private socket dir.
        return psycopg.connect(
            host=str(self.socket_dir),
            port=self.port,
            user=_SUPERUSER,
            dbname="postgres",
            autocommit=True,
            connect_timeout=10,
        )


@contextlib.contextmanager
def postgres_server(
    *,
    user: str = "hpo",
    password: str = "secret",
    database: str = "hpo",
    bindir: Path | None = None,
    max_connections: int = 200,
) -> Iterator[PostgresServer]:
    """Start a throwaway PostgreSQL server; stop it and delete its files on exit.

    Args:
        user: Ordinary role created with ``password`` and CREATEDB.
        password: Its password (SCRAM authentication on TCP).
        database: Database created for ``user``.
        bindir: Folder of ``initdb``/``pg_ctl``; found with :func:`find_postgres_bindir` if None.
        max_connections: The server's ``max_connections`` (3 of them are kept for the
            superuser); a benchmark of many workers needs about 2 per worker.

    Yields:
        The running server; ``server.url`` is ``postgresql://user:password@127.0.0.1:PORT/db``.

    Raises:
        PostgresNotFound: no server binaries were found.
        RuntimeError: initdb or the server start failed (the message holds the server log).
    """
    bindir = bindir or find_postgres_bindir()
    if bindir is None:
        raise PostgresNotFound("PostgreSQL server binaries (initdb, pg_ctl) not found")
    run_as = _server_user()
    root = Path(tempfile.mkdtemp(prefix="hpo-pg-", dir=_temp_parent(run_as)))
    data = root / "data"
    log = root / "server.log"
    started = False
    try:
        if run_as is not None:
            os.chown(root, run_as.pw_uid, run_as.pw_gid)
        _run(
            [
                str(bindir / "initdb"),
                "-D", str(data),
                "-U", _SUPERUSER,
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ],
            run_as=run_as,
            cwd=root,
        )  # fmt: skip
        port = 0
        for attempt in range(_START_ATTEMPTS):
            port = free_port()
            _configure(data, port=port, socket_dir=root, max_connections=max_connections)
            try:
                _run(
                    [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "30",
                     "start"],
                    run_as=run_as,
                    cwd=root,
                )  # fmt: skip
                started = True
                break
            except RuntimeError:
                # Another process may have taken the port between probing and binding.
                if attempt == _START_ATTEMPTS - 1:
                    raise RuntimeError(f"PostgreSQL did not start:\n{_tail(log)}") from None
        server = PostgresServer(
            host="127.0.0.1",
            port=port,
            user=user,
            password=password,
            database=database,
            socket_dir=root,
            bindir=bindir,
            data_dir=data,
        )
        _create_user(server)
        yield server
    finally:
        if started:
            _stop(bindir, data, run_as=run_as, cwd=root)
        shutil.rmtree(root, ignore_errors=True)


def _server_user() -> pwd.struct_passwd | None:
    """The unprivileged user to run the server as, or None to run it as ourselves."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise RuntimeError("running as root and neither a `postgres` nor a `nobody` user exists")


def _temp_parent(run_as: pwd.struct_passwd | None) -> str | None:
    """A temp folder the server user can reach (root's $TMPDIR may be private to root)."""
    default = tempfile.gettempdir()
    if run_as is None:
        return None
    path = Path(default).resolve()
    for folder in (path, *path.parents):
        if not folder.stat().st_mode & stat.S_IXOTH:
            return "/tmp"
    return default


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (at the time of the call)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _configure(data: Path, *, port: int, socket_dir: Path, max_connections: int) -> None:
    # Later lines win in postgresql.conf, so a retry on another port just appends again.
    # Durability is worthless for a throwaway server; turning it off makes tests fast.
    settings = {
        "port": str(port),
        "listen_addresses": "'127.0.0.1'",
        "unix_socket_directories": f"'{socket_dir}'",
        "max_connections": str(max_connections),
        "fsync": "off",
        "synchronous_commit": "off",
        "full_page_writes": "off",
    }
    with (data / "postgresql.conf").open("a", encoding="utf-8") as conf:
        conf.write("\n# hpo.testing.postgres\n")
        conf.writelines(f"{key} = {value}\n" for key, value in settings.items())


def _create_user(server: PostgresServer) -> None:
    from psycopg import sql

    with server._admin() as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN CREATEDB PASSWORD {}").format(
                sql.Identifier(server.user), sql.Literal(server.password)
            )
        )
        conn.execute(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(server.database), sql.Identifier(server.user)
            )
        )


def _stop(bindir: Path, data: Path, *, run_as: pwd.struct_passwd | None, cwd: Path) -> None:
    try:
        _run(
            [str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
            run_as=run_as,
            cwd=cwd,
        )
    except RuntimeError:
        # Last resort: the postmaster pid is the first line of postmaster.pid.
        with contextlib.suppress(OSError, ValueError):
            pid = int((data / "postmaster.pid").read_text().splitlines()[0])
            os.kill(pid, 9)


def _run(cmd: list[str], *, run_as: pwd.struct_passwd | None, cwd: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    kwargs: dict[str, Any] = {}
    if run_as is not None:
        env["HOME"] = str(cwd)
        env["USER"] = env["LOGNAME"] = run_as.pw_name
        kwargs = {"user": run_as.pw_uid, "group": run_as.pw_gid, "extra_groups": []}
    try:
        proc = subprocess.run(
            cmd,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=_COMMAND_TIMEOUT,
            check=False,
            **kwargs,
        )
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"{Path(cmd[0]).name} timed out after {_COMMAND_TIMEOUT} s") from None
    if proc.returncode != 0:
        output = (proc.stdout + proc.stderr).strip()
        raise RuntimeError(f"{Path(cmd[0]).name} failed ({proc.returncode}): {output}")


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no log at {path})"
