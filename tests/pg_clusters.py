"""Throwaway PostgreSQL clusters for tests that need what the shared server does not give (real authentication).

The binaries, the port and the way to run a command as the postgres user are passed in: tests/conftest.py owns
them (`_pg_bin()`, `_free_port()`, `_as_postgres()`), and this module imports nothing from the tests.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ADMIN = "opsbot_admin"
AsPostgres = Callable[[list[str]], list[str]]


@dataclass(frozen=True, slots=True)
class Cluster:
    """A running cluster: where it lives, and the admin DSN (with its password) to reach it over TCP."""

    data: Path
    port: int
    admin_dsn: str
    bin_dir: Path
    as_postgres: AsPostgres

    @property
    def log(self) -> Path:
        """The server's log file (it logs every statement, so a test can look for what must not be there)."""
        return self.data / "log"

    def halt(self) -> None:
        """Stop the server (fast shutdown: clients are disconnected), keeping its files."""
        pg_ctl = str(self.bin_dir / "pg_ctl")
        subprocess.run(
            self.as_postgres([pg_ctl, "-D", str(self.data), "-m", "fast", "-w", "stop"]), capture_output=True
        )

    def resume(self) -> None:
        """Start the halted server again, on the same port."""
        pg_ctl = [str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-w", "-l", str(self.log)]
        options = f"-p {self.port} -k {self.data} -h 127.0.0.1"
        subprocess.run(self.as_postgres([*pg_ctl, "-o", options, "start"]), check=True, capture_output=True)

    def stop(self) -> None:
        """Stop the server at once and remove its files."""
        pg_ctl = str(self.bin_dir / "pg_ctl")
        subprocess.run(self.as_postgres([pg_ctl, "-D", str(self.data), "-m", "immediate", "stop"]), capture_output=True)
        shutil.rmtree(self.data, ignore_errors=True)


def start_scram_cluster(bin_dir: Path, port: int, as_postgres: AsPostgres) -> Cluster:
    """A cluster where TCP logins need a SCRAM-SHA-256 password, with an admin role that has one."""
    data = Path(tempfile.mkdtemp(prefix="opsbot-scram-"))
    if os.geteuid() == 0:
        shutil.chown(data, "postgres", "postgres")
    subprocess.run(
        as_postgres([str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"]),
        check=True,
        capture_output=True,
    )
    _write_as_postgres(data / "pg_hba.conf", "local all postgres trust\nhost all all 127.0.0.1/32 scram-sha-256\n")
    with open(data / "postgresql.conf", "a") as conf:
        conf.write("\npassword_encryption = 'scram-sha-256'\nlog_statement = 'all'\nlog_connections = on\n")
    pg_ctl = [str(bin_dir / "pg_ctl"), "-D", str(data), "-w", "-l", str(data / "log")]
    subprocess.run(
        as_postgres([*pg_ctl, "-o", f"-p {port} -k {data} -h 127.0.0.1", "start"]), check=True, capture_output=True
    )
    password = secrets.token_urlsafe(18)
    cluster = Cluster(data, port, f"postgresql://{ADMIN}:{password}@127.0.0.1:{port}/postgres", bin_dir, as_postgres)
    try:  # over the socket, which trusts postgres
        psql = [shutil.which("psql") or str(bin_dir / "psql"), "-h", str(data), "-p", str(port), "-U", "postgres"]
        create = f"CREATE ROLE {ADMIN} LOGIN SUPERUSER PASSWORD '{password}'"
        subprocess.run(as_postgres([*psql, "-d", "postgres", "-c", create]), check=True, capture_output=True)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _write_as_postgres(path: Path, text: str) -> None:
    path.write_text(text)
    if os.geteuid() == 0:
        shutil.chown(path, "postgres", "postgres")


def start_trust_cluster(bin_dir: Path, port: int, as_postgres: AsPostgres) -> Cluster:
    """A cluster the test owns (to restart it under opsbot), trusting local TCP logins as `postgres`."""
    data = Path(tempfile.mkdtemp(prefix="opsbot-owned-"))
    if os.geteuid() == 0:
        shutil.chown(data, "postgres", "postgres")
    subprocess.run(
        as_postgres([str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"]),
        check=True,
        capture_output=True,
    )
    cluster = Cluster(data, port, f"postgresql://postgres@127.0.0.1:{port}/postgres", bin_dir, as_postgres)
    cluster.resume()
    return cluster
