"""Test helpers shipped with hpo: a throwaway PostgreSQL server for storage tests."""

from __future__ import annotations

from hpo.testing.postgres import (
    PostgresNotFound,
    PostgresServer,
    find_postgres_bindir,
    postgres_server,
    require_postgres_bindir,
)

__all__ = [
    "PostgresNotFound",
    "PostgresServer",
    "find_postgres_bindir",
    "postgres_server",
    "require_postgres_bindir",
]
