"""The command line: help on everything, version, and the refusal to serve openly."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from app import __version__
from app.cli import is_loopback, main
from app.config import SETTINGS

ROOT = Path(__file__).resolve().parent.parent


def all_commands(group: click.Group, prefix: tuple[str, ...] = ()):  # type: ignore[no-untyped-def]
    yield prefix, group
    for name, cmd in group.commands.items():
        if isinstance(cmd, click.Group):
            yield from all_commands(cmd, (*prefix, name))
        else:
            yield (*prefix, name), cmd


def test_every_command_has_help() -> None:
    runner = CliRunner()
    for path, cmd in all_commands(main):
        assert cmd.help, f"{' '.join(path) or 'dakera'} has no help text"
        result = runner.invoke(main, [*path, "--help"])
        assert result.exit_code == 0, result.output
        assert "Usage:" in result.output
        for param in cmd.params:
            if isinstance(param, click.Option) and not param.hidden:
                assert param.help, f"{path} {param.name} has no help"


def test_version() -> None:
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output


def test_every_setting_is_documented() -> None:
    readme = (ROOT / "README.md").read_text()
    for setting in SETTINGS:
        assert setting.help
        for env in setting.env:
            assert f"`{env}`" in readme, f"{env} is not in the README"
    result = CliRunner().invoke(main, ["settings"])
    for setting in SETTINGS:
        assert setting.env[0] in result.output


@pytest.mark.parametrize("host, loopback", [
    ("127.0.0.1", True), ("localhost", True), ("::1", True), ("127.0.0.2", True),
    ("0.0.0.0", False), ("::", False), ("192.168.1.10", False), ("example.com", False)])
def test_loopback_detection(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_refuses_to_serve_publicly_without_a_key(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAKERA_")}
    env["DAKERA_DATA_DIR"] = str(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "app", "serve", "--host", "0.0.0.0"],
                          env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert "refusing to bind 0.0.0.0 without an API key" in proc.stderr
    assert not (tmp_path / "dakera.db").exists()


def test_bad_setting_is_a_usage_error(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAKERA_")}
    env.update(DAKERA_DATA_DIR=str(tmp_path), DAKERA_EMBED_THREADS="many")
    proc = subprocess.run([sys.executable, "-m", "app", "serve"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "DAKERA_EMBED_THREADS" in proc.stderr
