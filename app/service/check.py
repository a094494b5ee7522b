"""`dakera check`: is a data dir sound? The database (SQLite's integrity check and the
tables that must agree), each agent's saved vector index, and the model files against
their manifest. Read-only: it changes nothing, and can run beside a running server."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from app.config import Settings
from app.embed import PresetError, resolve, verify_model_files
from app.index import check_index_file
from app.store import check_database


@dataclass
class Finding:
    part: str  # "database", "index", "model"
    ok: bool
    text: str
    remedy: str = ""


def check_data_dir(settings: Settings, *, full: bool = True,
                   on_step: Callable[[str], None] = lambda step: None) -> Iterator[Finding]:
    """Findings, part by part; a part that is sound yields one ok finding."""
    on_step("database")
    report = check_database(settings.db_path, full=full)
    if report.problems:
        for problem in report.problems:
            yield Finding("database", False, problem,
                          "restore a backup (dakera refuses to start on a damaged database)")
    else:
        yield Finding("database", True, f"{report.path}: sound, {report.memories} memories, "
                      f"{len(report.agents)} agent(s)")
        on_step("indexes")
        bad = 0
        for agent, trimmed in sorted(report.agents.items()):
            found = check_index_file(settings.index_dir, agent, report.model_id, trimmed)
            if found is not None:
                bad += 1
                yield Finding("index", False, f"agent {agent}: {found}",
                              "nothing to do: it is rebuilt from the database at the next "
                              "start (recall uses exact search meanwhile)")
        if not bad:
            yield Finding("index", True, f"{len(report.agents)} saved vector index(es) usable")
    on_step("model")
    try:
        preset = resolve(settings.embedding_model, Path(settings.models_dir))
    except PresetError as exc:
        yield Finding("model", False, str(exc), "fix the model folder's preset.json "
                      "(docs/models.md)")
        return
    if preset.name == "hash":
        yield Finding("model", True, "the test embedder has no files")
        return
    folder = Path(settings.models_dir) / preset.name
    if preset.from_file and not (folder / "manifest.json").exists():
        missing = [n for n in ("model.onnx", "tokenizer.json") if not (folder / n).is_file()]
        yield (Finding("model", False, f"{folder} has a preset.json but no "
                       f"{' or '.join(missing)}", "put the export's files there")
               if missing else Finding("model", True, f"{folder}: your export (no manifest)"))
        return
    problems = verify_model_files(folder)
    for problem in problems:
        yield Finding("model", False, problem,
                      "run `make models` (a binary: download it again)")
    if not problems:
        yield Finding("model", True, f"{folder}: every file matches its manifest")
