"""The shipped systemd units and environment file: valid for systemd, hardened, and naming real settings."""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from opsbot.settings import Settings

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
UNITS = {"opsbot.service": "serve", "opsbot-worker.service": "worker"}
HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "RestrictSUIDSGID": "yes",
    "CapabilityBoundingSet": "",
}


def unit(name: str) -> configparser.RawConfigParser:
    """A unit file as sections of keys (a key given twice, like SystemCallFilter, keeps its last value)."""
    parser = configparser.RawConfigParser(strict=False, delimiters=("=",), comment_prefixes=("#", ";"))
    parser.optionxform = str  # type: ignore[assignment, method-assign]  # systemd keys are case-sensitive
    parser.read_string((DEPLOY / name).read_text())
    return parser


@pytest.mark.parametrize(("name", "command"), UNITS.items())
def test_unit_runs_opsbot_as_its_own_user_with_secrets_from_a_file(name: str, command: str) -> None:
    """ExecStart runs the opsbot command; User, EnvironmentFile, Restart=on-failure and WantedBy are there."""
    parsed = unit(name)
    service = parsed["Service"]
    exec_start = service["ExecStart"].split()
    assert Path(exec_start[0]).name == "opsbot" and exec_start[1] == command
    assert service["User"] == "opsbot" and service["EnvironmentFile"] == "/etc/opsbot/opsbot.env"
    assert service["Restart"] == "on-failure" and float(service["TimeoutStopSec"]) >= 20
    assert parsed["Install"]["WantedBy"] == "multi-user.target"
    assert "network-online.target" in parsed["Unit"]["After"]


@pytest.mark.parametrize("name", UNITS)
def test_unit_is_hardened(name: str) -> None:
    """No new privileges, no capabilities, a read-only system and no view of homes, /tmp or devices."""
    service = unit(name)["Service"]
    assert {key: service.get(key) for key in HARDENING} == HARDENING


def test_serve_listens_on_loopback_for_the_proxy() -> None:
    """The TLS-terminating proxy in front talks to 127.0.0.1; nothing else reaches the plain-HTTP port."""
    args = unit("opsbot.service")["Service"]["ExecStart"].split()
    assert args[args.index("--host") + 1] == "127.0.0.1"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
@pytest.mark.parametrize("name", UNITS)
def test_systemd_analyze_verifies_the_unit(name: str, tmp_path: Path) -> None:
    """`systemd-analyze verify` accepts the unit and warns about nothing in it (with ExecStart at this opsbot)."""
    here = Path(sys.executable).parent / "opsbot"
    copy = tmp_path / name
    copy.write_text((DEPLOY / name).read_text().replace("/opt/opsbot/venv/bin/opsbot", str(here)))
    result = subprocess.run(["systemd-analyze", "verify", str(copy)], capture_output=True, text=True, timeout=60)
    ours = [line for line in (result.stdout + result.stderr).splitlines() if name in line]
    assert result.returncode == 0 and ours == [], result.stdout + result.stderr


def _assignments(text: str) -> list[tuple[str, str, bool]]:
    """`NAME=value` lines, commented out (`#NAME=value`, an optional setting) or not."""
    found = []
    for line in text.splitlines():
        active = not line.startswith("#")
        name, sep, value = line.lstrip("#").partition("=")
        if sep and re.fullmatch(r"[A-Z][A-Z0-9_]*", name):
            found.append((name, value, active))
    return found


def test_example_environment_names_real_settings_and_holds_only_placeholders(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each OPSBOT_/SLACK_ variable in opsbot.env.example is one opsbot reads, secrets are CHANGE_ME, values parse."""
    known = {f"OPSBOT_{name.upper()}" for name in Settings.model_fields}
    known |= {"SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN"}
    assignments = _assignments((DEPLOY / "opsbot.env.example").read_text())
    for name, value, active in assignments:
        assert not name.startswith(("OPSBOT_", "SLACK_")) or name in known, name
        if any(word in name for word in ("TOKEN", "SECRET", "DATABASE_URL", "DSN")):
            assert "CHANGE_ME" in value, name
        if active:
            monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.database_url.startswith("postgresql+psycopg://") and settings.log_level == "INFO"
