"""The client verbs on a data dir no server holds (they open it in this process), and their
exit codes. The same verbs against a running server: tests/test_transfer_http.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from app.cli import main
from app.cli.backend import INVALID, NOT_FOUND, UNREACHABLE
from app.config import Settings
from app.service import Service
from tests import importer_fixtures as fx
from tests.conftest import free_port


@pytest.fixture
def dakera(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    for name in ("DAKERA_URL", "DAKERA_API_URL", "DAKERA_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DAKERA_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DAKERA_EMBEDDING_MODEL", "hash")
    monkeypatch.setenv("DAKERA_DECAY_INTERVAL_SECS", "0")
    monkeypatch.setenv("DAKERA_PORT", str(free_port()))  # nothing listens there
    monkeypatch.chdir(tmp_path)

    def run(*args: str, stdin: str | None = None) -> Result:
        return CliRunner().invoke(main, list(args), input=stdin, catch_exceptions=False)

    return run


def test_everyday_verbs_offline(dakera) -> None:  # type: ignore[no-untyped-def]
    first = dakera("store", "me", "I keep my passport in the blue drawer", "--tag", "home",
                   "-i", "0.9")
    assert first.exit_code == 0, first.output
    memory_id = first.stdout.strip()
    assert memory_id.startswith("mem_")
    assert dakera("store", "me", "-", "-t", "semantic", stdin="Tea, not coffee\n"
                  ).exit_code == 0
    recall = dakera("recall", "me", "where is my passport")
    assert recall.exit_code == 0
    lines = recall.stdout.splitlines()
    assert lines[0].split() == ["rank", "score", "type", "age", "content"]
    assert "passport" in lines[2] and lines[2].split()[0] == "1"
    agents = json.loads(dakera("agents", "--json").stdout)
    assert agents[0]["agent_id"] == "me" and agents[0]["memory_count"] == 2
    stats = json.loads(dakera("stats", "me", "--json").stdout)
    assert stats["total_memories"] == 2
    assert "memories: 2" in dakera("stats").stdout
    gone = dakera("forget", "me", memory_id)
    assert gone.exit_code == 0 and gone.stdout.strip() == "deleted 1"


def test_export_import_and_backups_offline(dakera, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    for i in range(5):
        assert dakera("store", "me", f"note number {i} about the garden").exit_code == 0
    out = dakera("export", "me", "-o", "me.jsonl")
    assert out.exit_code == 0 and "exported 5 memories" in out.stdout
    assert "100%" in out.stderr
    assert len((tmp_path / "me.jsonl").read_text().splitlines()) == 5
    imported = dakera("import", "copy", "me.jsonl", "--json", "-q")
    assert imported.exit_code == 0 and imported.stderr == ""
    assert json.loads(imported.stdout)["imported"] == 5
    db = tmp_path / "sqlite_vec.db"
    fx.mcp_memory_service_db(db)
    mms = dakera("import", "mms", str(db))
    assert mms.exit_code == 0 and "done: 6 imported into mms" in mms.stdout

    made = json.loads(dakera("backup", "create", "before", "--json").stdout)
    assert made["memory_count"] == 16
    assert dakera("store", "me", "written after the backup").exit_code == 0
    listed = dakera("backup", "list")
    assert made["backup_id"] in listed.stdout and "before" in listed.stdout
    restored = dakera("backup", "restore", made["backup_id"], "-y")
    assert restored.exit_code == 0, restored.output
    assert "restored" in restored.stdout and "the data before it is backup" in restored.stdout
    assert json.loads(dakera("stats", "me", "--json").stdout)["total_memories"] == 5
    down = dakera("backup", "download", made["backup_id"], "-o", "b.db.gz")
    assert down.exit_code == 0 and (tmp_path / "b.db.gz").stat().st_size > 0
    up = dakera("backup", "upload", "b.db.gz", "--json")
    assert up.exit_code == 0 and json.loads(up.stdout)["kind"] == "uploaded"
    assert dakera("backup", "delete", made["backup_id"]).exit_code == 0


def test_exit_codes(dakera, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert dakera("recall", "me", "x", "-k", "0").exit_code == INVALID  # a usage error
    assert dakera("forget", "me").exit_code == INVALID
    assert dakera("store", "bad agent!", "x").exit_code == INVALID  # the server's 400
    (tmp_path / "bad.jsonl").write_text('{"content": "fine"}\nnot json\n')
    bad = dakera("import", "me", "bad.jsonl")
    assert bad.exit_code == INVALID and "line 2: not valid JSON" in bad.stderr
    assert dakera("backup", "download", "bk_20000101T000000Z_abcdef").exit_code == NOT_FOUND
    closed = f"http://127.0.0.1:{free_port()}"
    assert dakera("agents", "--url", closed).exit_code == UNREACHABLE


def test_a_busy_data_dir_without_a_server(dakera, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    holder = Service(Settings.from_env(data_dir=str(tmp_path / "data")))
    holder.start(wait=True)
    try:
        out = dakera("agents")
        assert out.exit_code == UNREACHABLE
        assert "in use" in out.stderr and "--url" in out.stderr
    finally:
        holder.close()
