"""The throwaway PostgreSQL server: it starts, its user logs in, databases come and go."""

from __future__ import annotations

import psycopg
import pytest

from hpo.testing import PostgresServer, find_postgres_bindir, free_port

pytestmark = pytest.mark.postgres


def test_the_binaries_are_found(postgres_server: PostgresServer) -> None:
    bindir = find_postgres_bindir()
    assert bindir is not None and (bindir / "initdb").is_file() and (bindir / "pg_ctl").is_file()


def test_the_user_logs_in_with_its_password(postgres_server: PostgresServer) -> None:
    server = postgres_server
    assert server.url == (
        f"postgresql://{server.user}:{server.password}@127.0.0.1:{server.port}/{server.database}"
    )
    with psycopg.connect(server.url, connect_timeout=10) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (server.user,)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(server.url.replace(server.password, "wrong"), connect_timeout=10)


def test_a_database_is_created_for_the_user_and_dropped(postgres_server: PostgresServer) -> None:
    url = postgres_server.create_database("t_created")
    assert url == postgres_server.url_for("t_created")
    with psycopg.connect(url, connect_timeout=10) as conn:
        conn.execute("CREATE TABLE t (x int)")  # the user owns it
        conn.commit()
        postgres_server.drop_database("t_created")  # open connections are closed
    with pytest.raises(psycopg.OperationalError, match="t_created"):
        psycopg.connect(url, connect_timeout=10)


def test_a_free_port_has_no_server() -> None:
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(f"postgresql://u:p@127.0.0.1:{free_port()}/db", connect_timeout=5)
