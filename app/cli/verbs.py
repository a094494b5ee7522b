"""The client verbs: store, recall, forget, agents, stats, export, import and backup.

Each talks to a running server (--url or DAKERA_URL, key from DAKERA_API_KEY) or, when no
server holds the data dir, opens it in this process (see backend.connect). Results go to
stdout (--json: as JSON), notes and progress bars to stderr. Exit codes: backend.OK ...
SERVER_ERROR, listed in `dakera --help`.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from app.cli import show
from app.cli.backend import (
    FAILED,
    INVALID,
    Backend,
    CliError,
    connect,
    move_into_place,
)
from app.cli.main import main
from app.config import SettingError, Settings

F = TypeVar("F", bound=Callable[..., Any])
EXPORT_FORMATS = ("jsonl", "csv", "mem0", "zep")
IMPORT_FORMATS = ("auto", "jsonl", "csv", "mem0", "zep", "mcp-memory-service")
EXTENSIONS = {"jsonl": "jsonl", "csv": "csv", "mem0": "mem0.json", "zep": "zep.json"}
POLL_SECS = 0.5


class ClientCommand(click.Command):
    """A client verb: a usage error exits with INVALID (5), not click's 2 (which means
    "no server reachable" here)."""

    def make_context(self, info_name: str | None, args: list[str],
                     parent: click.Context | None = None, **extra: Any) -> click.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.UsageError as exc:
            exc.exit_code = INVALID  # type: ignore[misc]
            raise


class ClientGroup(click.Group):
    command_class = ClientCommand


def client_options(fn: F) -> F:
    """--url, --data-dir, --json and --quiet, and a `backend` argument opened from them."""

    @click.option("--url", envvar=["DAKERA_URL", "DAKERA_API_URL"], default=None,
                  help="The dakera server to use, e.g. http://127.0.0.1:7700 [env DAKERA_URL "
                       "or DAKERA_API_URL]; its key is read from DAKERA_API_KEY. Without one "
                       "the data dir is opened here, or the server holding it is used.")
    @click.option("--data-dir", default=None,
                  help="The data dir to open when no server URL is given [default: per-user "
                       "data dir; env DAKERA_DATA_DIR].")
    @click.option("--json", "as_json", is_flag=True,
                  help="Print the result as JSON (for scripts).")
    @click.option("-q", "--quiet", is_flag=True, help="No progress bars or notes on stderr.")
    @functools.wraps(fn)
    def wrapper(url: str | None, data_dir: str | None, as_json: bool, quiet: bool,
                **kwargs: Any) -> Any:
        logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                            format="dakera: %(message)s")
        try:
            settings = Settings.from_env(data_dir=data_dir)
        except SettingError as exc:
            raise CliError(str(exc), INVALID) from None
        backend = connect(settings, url, quiet=quiet)
        try:
            return fn(backend=backend, as_json=as_json, quiet=quiet, **kwargs)
        finally:
            backend.close()

    return wrapper  # type: ignore[return-value]


def _note(quiet: bool, text: str) -> None:
    if not quiet:
        click.echo(text, err=True)


# -- everyday verbs ---------------------------------------------------------------------------

@main.command("store", cls=ClientCommand)
@click.argument("agent")
@click.argument("content", required=False)
@click.option("-t", "--type", "memory_type",
              type=click.Choice(["episodic", "semantic", "procedural", "working"]),
              help="Memory type [default: episodic].")
@click.option("-i", "--importance", type=click.FloatRange(0, 1),
              help="Importance from 0 to 1 [default: 0.5].")
@click.option("--tag", "tags", multiple=True, help="A tag (repeat for several).")
@click.option("-s", "--session", "session_id", help="The session the memory belongs to.")
@click.option("--metadata", help="Metadata as a JSON object.")
@client_options
def store_cmd(backend: Backend, as_json: bool, quiet: bool, agent: str, content: str | None,
              memory_type: str | None, importance: float | None, tags: tuple[str, ...],
              session_id: str | None, metadata: str | None) -> None:
    """Store a memory for AGENT: CONTENT, or stdin when CONTENT is - or missing."""
    if content in (None, "-"):
        content = sys.stdin.read()
    body: dict[str, Any] = {"agent_id": agent, "content": content}
    if memory_type:
        body["memory_type"] = memory_type
    if importance is not None:
        body["importance"] = importance
    if tags:
        body["tags"] = list(tags)
    if session_id:
        body["session_id"] = session_id
    if metadata:
        import json

        try:
            body["metadata"] = json.loads(metadata)
        except ValueError as exc:
            raise CliError(f"--metadata is not JSON: {exc}", INVALID) from None
    memory = backend.store(body)["memory"]
    if as_json:
        show.as_json(memory)
    else:
        click.echo(memory["id"])


@main.command("recall", cls=ClientCommand)
@click.argument("agent")
@click.argument("query")
@click.option("-k", "--top-k", default=5, show_default=True, type=click.IntRange(1, 1000),
              help="How many memories.")
@click.option("-t", "--type", "memory_type",
              type=click.Choice(["episodic", "semantic", "procedural", "working"]),
              help="Only memories of this type.")
@click.option("--tag", "tags", multiple=True, help="Only memories with one of these tags.")
@client_options
def recall_cmd(backend: Backend, as_json: bool, quiet: bool, agent: str, query: str,
               top_k: int, memory_type: str | None, tags: tuple[str, ...]) -> None:
    """Recall AGENT's memories most relevant to QUERY, best first."""
    body: dict[str, Any] = {"agent_id": agent, "query": query, "top_k": top_k}
    if memory_type:
        body["memory_type"] = memory_type
    if tags:
        body["tags"] = list(tags)
    hits = backend.recall(body)["memories"]
    if as_json:
        show.as_json(hits)
        return
    if not hits:
        _note(quiet, f"no memories of {agent} match")
        return
    now = time.time()
    rows = []
    rank = 0
    for hit in hits:
        m = hit.get("memory", hit)
        score = hit.get("rank_score", hit.get("score", 0.0))
        # a session neighbour shown for context is not ranked
        rank += "context_of" not in hit
        rows.append(["ctx" if "context_of" in hit else str(rank), f"{score:.3f}",
                     m.get("memory_type", ""),
                     show.age(m.get("created_at"), now), m.get("content", "")])
    show.table(["rank", "score", "type", "age", "content"], rows, stretch=4)


@main.command("forget", cls=ClientCommand)
@click.argument("agent")
@click.argument("memory_ids", nargs=-1)
@click.option("--tag", "tags", multiple=True, help="Forget the memories with this tag.")
@click.option("-s", "--session", "session_id", help="Forget the memories of this session.")
@client_options
def forget_cmd(backend: Backend, as_json: bool, quiet: bool, agent: str,
               memory_ids: tuple[str, ...], tags: tuple[str, ...],
               session_id: str | None) -> None:
    """Delete AGENT's memories: by id (MEMORY_IDS), tag or session (all given must match)."""
    if not memory_ids and not tags and not session_id:
        raise CliError("name what to forget: memory ids, --tag or --session", INVALID)
    body: dict[str, Any] = {"agent_id": agent}
    if memory_ids:
        body["memory_ids"] = list(memory_ids)
    if tags:
        body["tags"] = list(tags)
    if session_id:
        body["session_id"] = session_id
    out = backend.forget(body)
    if as_json:
        show.as_json(out)
    else:
        click.echo(f"deleted {out.get('deleted_count', 0)}")


@main.command("agents", cls=ClientCommand)
@client_options
def agents_cmd(backend: Backend, as_json: bool, quiet: bool) -> None:
    """List the agents with their memory and session counts."""
    agents = backend.agents()
    if as_json:
        show.as_json(agents)
        return
    show.table(["agent", "memories", "sessions", "active"],
               [[a["agent_id"], a.get("memory_count", 0), a.get("session_count", 0),
                 a.get("active_sessions", 0)] for a in agents])


@main.command("stats", cls=ClientCommand)
@click.argument("agent", required=False)
@client_options
def stats_cmd(backend: Backend, as_json: bool, quiet: bool, agent: str | None) -> None:
    """AGENT's statistics (memories by type, sessions, importance, time span); without
    AGENT, totals over every agent."""
    if agent is None:
        agents = backend.agents()
        out: dict[str, Any] = {
            "agents": len(agents), "memories": sum(a.get("memory_count", 0) for a in agents),
            "sessions": sum(a.get("session_count", 0) for a in agents),
            "active_sessions": sum(a.get("active_sessions", 0) for a in agents)}
    else:
        out = backend.stats(agent)
    if as_json:
        show.as_json(out)
        return
    now = time.time()
    for key, value in out.items():
        if key.endswith("_at") and isinstance(value, int):
            value = f"{value} ({show.age(value, now)} ago)"
        elif isinstance(value, dict):
            value = ", ".join(f"{k} {v}" for k, v in value.items()) or "-"
        click.echo(f"{key.replace('_', ' ')}: {'-' if value is None else value}")


# -- export and import ------------------------------------------------------------------------

@main.command("export", cls=ClientCommand)
@click.argument("agent")
@click.option("-o", "--output", type=click.Path(dir_okay=False, allow_dash=True),
              help="Where to write it ('-': stdout) [default: AGENT.jsonl (.csv, "
                   ".mem0.json, .zep.json) here].")
@click.option("-f", "--format", "fmt", type=click.Choice(EXPORT_FORMATS), default="jsonl",
              show_default=True,
              help="jsonl is dakera's lossless format; csv, mem0 and zep carry what those "
                   "tools know.")
@click.option("--vectors/--no-vectors", default=True, show_default=True,
              help="Include the vectors (jsonl, csv), so that a server with the same model "
                   "imports them without embedding again.")
@click.option("--sessions/--no-sessions", default=True, show_default=True,
              help="Include AGENT's sessions (jsonl).")
@click.option("--edges/--no-edges", default=True, show_default=True,
              help="Include AGENT's knowledge-graph edges (jsonl).")
@client_options
def export_cmd(backend: Backend, as_json: bool, quiet: bool, agent: str, output: str | None,
               fmt: str, vectors: bool, sessions: bool, edges: bool) -> None:
    """Export AGENT's memories to a file, with a progress bar."""
    target = output or f"{agent}.{EXTENSIONS[fmt]}"
    count, chunks = backend.export(agent, fmt, vectors, sessions, edges)
    bar = show.progress(count if fmt == "jsonl" else None,
                        "memories" if fmt == "jsonl" else "B", f"export {agent}", quiet,
                        scale=fmt != "jsonl")
    written = 0
    with bar:
        if target == "-":
            out = sys.stdout.buffer
            for chunk in chunks:
                out.write(chunk)
                written += len(chunk)
                bar.update(min(chunk.count(b"\n"), max(0, count - bar.n))
                           if fmt == "jsonl" else len(chunk))
            out.flush()
        else:
            path = Path(target)
            tmp = path.with_name(f".{path.name}.part")
            try:
                with tmp.open("wb") as f:
                    for chunk in chunks:
                        f.write(chunk)
                        written += len(chunk)
                        bar.update(min(chunk.count(b"\n"), max(0, count - bar.n))
                                   if fmt == "jsonl" else len(chunk))
                move_into_place(tmp, path)
            except BaseException:
                with contextlib.suppress(OSError):
                    tmp.unlink()
                raise
    result = {"agent_id": agent, "format": fmt, "memories": count, "bytes": written,
              "file": target}
    if as_json:
        show.as_json(result)
    elif target != "-":
        click.echo(f"exported {count} memories of {agent} to {target} ({show.size(written)})")


@main.command("import", cls=ClientCommand)
@click.argument("agent")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-f", "--format", "fmt", type=click.Choice(IMPORT_FORMATS), default="auto",
              show_default=True,
              help="The file's format; auto detects it (JSON lines, CSV, a Mem0 or Zep JSON "
                   "export, an mcp-memory-service JSON export or database file).")
@client_options
def import_cmd(backend: Backend, as_json: bool, quiet: bool, agent: str, file: Path,
               fmt: str) -> None:
    """Import FILE into AGENT, with progress bars (upload, then import).

    Running the same import again adds nothing twice: memories already there are skipped
    (that is how an interrupted import is finished). Records that cannot be imported are
    listed with their line and skipped; the exit code is then 5.
    """
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="dakera-import-") as work:
        from app.service.formats import consistent_copy

        try:
            copy = consistent_copy(file, Path(work))
        except Exception as exc:
            raise CliError(str(getattr(exc, "message", exc)), INVALID) from None
        source = copy or file
        with show.progress(source.stat().st_size, "B", "upload", quiet, scale=True) as bar:
            job = backend.start_import(agent, source, None if fmt == "auto" else fmt,
                                       bar.update)
        job = _follow(backend, job, quiet)  # (a local import reads the copy meanwhile)
    if as_json:
        show.as_json(job)
    else:
        for line in job.get("errors", [])[:20]:
            click.echo(f"  {line}", err=True)
        more = job.get("error_count", 0) - min(20, len(job.get("errors", [])))
        if more > 0:
            click.echo(f"  ... and {more} more", err=True)
        click.echo(f"{job['status']}: {job['imported']} imported into {agent}, "
                   f"{job['existing']} already there, {job['invalid']} invalid "
                   f"({job['reembedded']} embedded; {time.monotonic() - started:.1f}s, "
                   f"job {job['job_id']})")
    if job["status"] != "done":
        raise CliError(f"the import {job['status']}: "
                       f"{(job.get('errors') or ['see its status'])[-1]}", FAILED)
    if job["invalid"]:
        sys.exit(INVALID)


def _follow(backend: Backend, job: dict[str, Any], quiet: bool) -> dict[str, Any]:
    """Poll an import job until it ends, with a progress bar of its records."""
    with show.progress(job.get("total") or None, "records", f"import ({job['format']})",
                       quiet) as bar:
        while True:
            done = job["imported"] + job["existing"] + job["invalid"]
            if job.get("total") and bar.total != job["total"]:
                bar.total = job["total"]
                bar.refresh()
            bar.update(done - bar.n)
            if job["status"] not in ("queued", "running"):
                return job
            time.sleep(POLL_SECS)
            job = backend.job(job["job_id"])


# -- backups ----------------------------------------------------------------------------------

@main.group("backup", cls=ClientGroup)
def backup_group() -> None:
    """Backups of the whole database: create, list, restore, download, upload, delete."""


def _backup_row(b: dict[str, Any]) -> list[Any]:
    return [b["backup_id"], b.get("name", ""), b.get("kind", ""),
            b.get("memory_count", 0), show.size(b.get("size_bytes")),
            show.age(b.get("created_at")) + " ago"]


@backup_group.command("create")
@click.argument("name", default="manual")
@client_options
def backup_create(backend: Backend, as_json: bool, quiet: bool, name: str) -> None:
    """Take a backup now (hot: writes go on); NAME labels it."""
    info = backend.backup_create(name)
    if as_json:
        show.as_json(info)
    else:
        click.echo(f"{info['backup_id']}: {info.get('memory_count', 0)} memories, "
                   f"{show.size(info.get('size_bytes'))}")


@backup_group.command("list")
@client_options
def backup_list(backend: Backend, as_json: bool, quiet: bool) -> None:
    """List the backups, newest first."""
    backups = backend.backup_list()
    if as_json:
        show.as_json(backups)
    elif not backups:
        _note(quiet, "no backups")
    else:
        show.table(["id", "name", "kind", "memories", "size", "age"],
                   [_backup_row(b) for b in backups])


@backup_group.command("restore")
@click.argument("backup")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--name", help="With a FILE: the name the uploaded backup is listed under.")
@client_options
def backup_restore(backend: Backend, as_json: bool, quiet: bool, backup: str, yes: bool,
                   name: str | None) -> None:
    """Replace ALL data with BACKUP: a backup id, or a backup file (.db.gz as downloaded,
    or .db) that is uploaded first. The data before it is kept as a new backup."""
    path = Path(backup)
    if path.is_file():
        with show.progress(path.stat().st_size, "B", "upload", quiet, scale=True) as bar:
            info = backend.backup_upload(path, name or path.name, bar.update)
        _note(quiet, f"uploaded {path} as {info['backup_id']}")
        backup = info["backup_id"]
    if not yes:
        click.confirm(f"Replace every memory in {backend.where} with backup {backup}?",
                      abort=True, err=True)
    _note(quiet, f"restoring {backup} ...")
    status = backend.backup_restore(backup)
    if as_json:
        show.as_json(status)
    if status.get("status") != "completed":
        raise CliError(f"the restore failed: {status.get('error')}; the data is as it was",
                       FAILED)
    if not as_json:
        click.echo(f"restored {backup} ({status.get('memory_count', '?')} memories) in "
                   f"{status.get('duration_seconds')}s; the data before it is backup "
                   f"{status.get('pre_restore_backup_id')}")


@backup_group.command("download")
@click.argument("backup_id")
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="Where to write it [default: BACKUP_ID.db.gz here].")
@client_options
def backup_download(backend: Backend, as_json: bool, quiet: bool, backup_id: str,
                    output: str | None) -> None:
    """Download a backup as a gzipped SQLite file."""
    name, chunks = backend.backup_download(backup_id)
    path = Path(output or name)
    tmp = path.with_name(f".{path.name}.part")
    written = 0
    try:
        with show.progress(None, "B", "download", quiet, scale=True) as bar, \
                tmp.open("wb") as f:
            for chunk in chunks:
                f.write(chunk)
                written += len(chunk)
                bar.update(len(chunk))
        move_into_place(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    if as_json:
        show.as_json({"backup_id": backup_id, "file": str(path), "bytes": written})
    else:
        click.echo(f"{path} ({show.size(written)})")


@backup_group.command("upload")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", help="The name it is listed under [default: the file name].")
@client_options
def backup_upload(backend: Backend, as_json: bool, quiet: bool, file: Path,
                  name: str | None) -> None:
    """Upload a backup file (.db.gz as downloaded, or .db) so it can be restored."""
    with show.progress(file.stat().st_size, "B", "upload", quiet, scale=True) as bar:
        info = backend.backup_upload(file, name or file.name, bar.update)
    if as_json:
        show.as_json(info)
    else:
        click.echo(f"{info['backup_id']}: {info.get('memory_count', 0)} memories")


@backup_group.command("delete")
@click.argument("backup_id")
@client_options
def backup_delete(backend: Backend, as_json: bool, quiet: bool, backup_id: str) -> None:
    """Delete a backup."""
    out = backend.backup_delete(backup_id)
    if as_json:
        show.as_json(out)
    else:
        click.echo(f"deleted {backup_id}")
