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
from app.config import FIELDS, Settings

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
    for field in FIELDS:
        assert field.help
        for env in field.env:
            assert f"`{env}`" in readme, f"{env} is not in the README"
    result = CliRunner().invoke(main, ["settings"])
    for field in FIELDS:
        assert field.env[0] in result.output
        assert f"Accepts {field.accepts()}." in result.output


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


@pytest.mark.parametrize("name, value, accepted", [
    ("DAKERA_DECAY_STRATEGY", "bogus", "one of exponential, linear, step"),
    ("DAKERA_PORT", "abc", "an integer from 1 to 65535"),
    ("DAKERA_DEDUP_THRESHOLD", "2", "a number from 0.0 to 1.0"),
    ("DAKERA_SQLITE_SYNCHRONOUS", "sometimes", "one of full, normal"),
    ("DAKERA_EMBED_THREADS", "many", "an integer from 0 to 256"),
    ("DAKERA_DEDUP_MEMORY_TYPES", "semantic,gossip", "a comma-separated list of episodic"),
    ("DAKERA_DEDUP_ON_STORE", "maybe", "true or false"),
    ("DAKERA_EMBEDDING_MODEL", "gpt-9", "one of all-minilm-l6-v2"),
])
def test_a_bad_setting_refuses_to_start(tmp_path: Path, name: str, value: str,
                                        accepted: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAKERA_")}
    env.update(DAKERA_DATA_DIR=str(tmp_path), **{name: value})
    proc = subprocess.run([sys.executable, "-m", "app", "serve"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr  # one line, naming the variable and what it takes
    assert lines[0].startswith(f"dakera: {name}={value!r} is not valid") and accepted in lines[0]
    assert not (tmp_path / "dakera.db").exists()


def test_settings_are_case_insensitive_where_natural(tmp_path: Path) -> None:
    from app.store import SqliteStore

    s = Settings.from_env(env={"DAKERA_SQLITE_SYNCHRONOUS": "FULL", "DAKERA_LOG_LEVEL": "Debug",
                               "DAKERA_DECAY_DELETE_BELOW_FLOOR": "No",
                               "DAKERA_EMBEDDING_MODEL": "MiniLM",
                               "DAKERA_DEDUP_MEMORY_TYPES": " Semantic , WORKING "})
    assert (s.sqlite_synchronous, s.log_level, s.decay_delete_below_floor) == ("full", "debug",
                                                                            False)
    assert s.embedding_model == "all-minilm-l6-v2"
    assert s.dedup_memory_types == ("semantic", "working")
    store = SqliteStore(tmp_path / "db.sqlite", dimension=4, model_id="m",
                        synchronous=s.sqlite_synchronous)
    try:  # FULL is what the database runs with (2), not NORMAL (1)
        assert store.reader().execute("PRAGMA synchronous").fetchone()[0] == 2
    finally:
        store.close()


def test_settings_never_show_the_key() -> None:
    s = Settings.from_env(env={"DAKERA_API_KEY": "sekret-value"})
    assert s.api_key == "sekret-value"
    assert "sekret" not in repr(s) and "sekret" not in str(s)
