"""The pages (GET): agents, an agent's memories or search results, its sessions, a session
as a timeline, a memory, the trash, and the overviews. Each route declares its scope and
the agent it touches like the API's (read; the server overview needs every namespace)."""

from __future__ import annotations

import json
from itertools import pairwise
from typing import Any

from litestar import Response, get
from litestar.params import FromPath

from app.errors import ValidationError
from app.models import MEMORY_TYPES, Memory, RecallHit
from app.service import Service as TheService
from app.service.keys import Principal as ThePrincipal
from app.web import plots
from app.web.context import (
    AnyRequest,
    Principal,
    Service,
    context,
    flash_of,
    int_param,
    link,
    number,
    query,
)
from app.web.render import field_errors, html, stamp

READ = {"scope": "read"}
AGENT_IN_PATH = {"scope": "read", "agent": ("path", "agent_id")}
AGENT_IN_QUERY = {"scope": "read", "agent": ("query", "agent_id")}
SORTS = [("recent", "newest first"), ("oldest", "oldest first"),
         ("importance", "most important first"), ("accessed", "recently recalled first")]
FILTERS = ("type", "tag", "session", "min_importance", "max_importance", "sort")
# the fields the agent page shows a message next to (the service's names for them)
SHOWN_FIELDS = ("query", "memory_type", "tag", "session", "min_importance", "max_importance",
                "sort")
SEARCH_TOP_K = 20
GAP_SECS = 60


def _respond(template: str, ctx: dict[str, Any], browser: Any, status: int = 200
             ) -> Response[str]:
    return html(template, ctx, status=status, cookie=browser.cookie_header())


def transfer_ready(service: TheService) -> bool:
    """Whether this build has export and import (the transfer part) to offer."""
    return hasattr(type(service), "transfer")


@get("/", opt={**READ, "listing": True}, sync_to_thread=True, include_in_schema=False)
def agents_page(request: AnyRequest, service: Service, principal: Principal) -> Response[str]:
    every = service.browse.agents()
    shown = [a for a in every if principal.reaches_agent(a["agent_id"])]
    ctx, browser = context(request, service, principal, nav="agents", agents=shown,
                           hidden=len(every) - len(shown))
    return _respond("agents.html", ctx, browser)


@get("/agents/{agent_id:str}", opt=AGENT_IN_PATH, sync_to_thread=True, include_in_schema=False)
def agent_page(request: AnyRequest, service: Service, principal: Principal,
               agent_id: FromPath[str]) -> Response[str]:
    """The agent's memories, a page at a time (filters, order), or with ?q= the recall
    results with the parts of their scores."""
    form = {name: query(request, name) for name in FILTERS}
    q = query(request, "q")
    ctx, browser = context(request, service, principal, nav="agents", agent_id=agent_id,
                           transfer=transfer_ready(service), q=q, form=form,
                           memory_types=MEMORY_TYPES, sorts=SORTS, hits=[], memories=[],
                           stored=0, prev_url=None, next_url=None, flash=flash_of(request),
                           partial=False, scan=0,
                           filtered=any(form[k] for k in FILTERS if k != "sort"))
    status = 200
    try:
        if q:
            hits = _search(service, agent_id, q, form)
            ctx["hits"] = [(h, score_parts(h)) for h in hits]
            ctx["multipliers"] = [label for name, label in FACTOR_LABELS.items()
                                  if name not in ADDED_FACTORS and any(
                                      name in (f := h.factors or {}) and (
                                          name in ALWAYS_SHOWN or f[name] != 1)
                                      for h in hits)]
        else:
            page = service.browse.page(
                agent_id, sort=form["sort"], memory_type=form["type"], tag=form["tag"],
                session_id=form["session"], min_importance=form["min_importance"],
                max_importance=form["max_importance"], after=query(request, "after"),
                before=query(request, "before"), limit=int_param(request, "limit", 50))
            base = f"/ui/agents/{agent_id}"
            keep = {**form, "limit": query(request, "limit")}
            ctx.update(memories=page["memories"], stored=page["stored"],
                       partial=page["partial"], scan=page["scan"],
                       next_url=link(base, {**keep, "after": page["next"]})
                       if page["next"] else None,
                       prev_url=link(base, {**keep, "before": page["prev"]})
                       if page["prev"] else None)
    except ValidationError as exc:
        ctx["errors"] = field_errors(exc, SHOWN_FIELDS)
        status = 400
    return _respond("agent.html", ctx, browser, status)


# The parts of a recall score as the engine names them (RecallHit.factors), in the order
# shown, with the page's names; a part the engine adds that is not listed here is shown
# under its own name after these. "context" is added to the relevance, the rest multiply.
TIMES = "\N{MULTIPLICATION SIGN}"
FACTOR_LABELS = {"importance": "importance", "recency": "recency", "context": "neighbourhood",
                 "speaker": "speaker", "question": "question"}
ADDED_FACTORS = {"context"}
ALWAYS_SHOWN = {"importance", "recency", "context"}  # the others only when not neutral


def score_parts(hit: RecallHit) -> list[tuple[str, str]]:
    """(label, value) of each part of a hit's score: what the engine returned."""
    def fmt(value: float | None, digits: int = 3) -> str:
        return "-" if value is None else f"{value:.{digits}f}"

    parts = [("score", fmt(hit.rank_score)), ("fused", fmt(hit.score)),
             ("vector", fmt(hit.vector_score)), ("BM25", fmt(hit.text_score, 2))]
    factors = hit.factors or {}
    for name in [*FACTOR_LABELS, *sorted(set(factors) - set(FACTOR_LABELS))]:
        if name not in factors:
            continue
        value = float(factors[name])
        label = FACTOR_LABELS.get(name, name)
        if name in ADDED_FACTORS:
            parts.append((label, f"+{value:.3f}" if value > 0 else "-"))
        elif name in FACTOR_LABELS:
            if name in ALWAYS_SHOWN or value != 1:
                parts.append((label, f"{TIMES}{value:.3f}"))
        else:
            parts.append((label, f"{value:.3f}"))
    return parts


def _search(service: TheService, agent_id: str, q: str, form: dict[str, str]
            ) -> list[RecallHit]:
    result = service.recall.search(
        agent_id, q, top_k=SEARCH_TOP_K, memory_type=form["type"] or None,
        tags=[form["tag"]] if form["tag"] else None, session_id=form["session"] or None,
        min_importance=number(form["min_importance"]))
    return result.hits


@get("/agents/{agent_id:str}/sessions", opt=AGENT_IN_PATH, sync_to_thread=True,
     include_in_schema=False)
def sessions_page(request: AnyRequest, service: Service, principal: Principal,
                  agent_id: FromPath[str]) -> Response[str]:
    offset = int_param(request, "offset", 0)
    size = 50
    sessions, total = service.browse.sessions_of(agent_id, offset=offset, limit=size)
    base = f"/ui/agents/{agent_id}/sessions"
    ctx, browser = context(
        request, service, principal, nav="agents", agent_id=agent_id,
        transfer=transfer_ready(service), sessions=sessions, total=total,
        prev_url=link(base, {"offset": max(0, offset - size) or None}) if offset else None,
        next_url=link(base, {"offset": offset + size}) if offset + size < total else None)
    return _respond("sessions.html", ctx, browser)


@get("/agents/{agent_id:str}/sessions/{session_id:str}", opt=AGENT_IN_PATH,
     sync_to_thread=True, include_in_schema=False)
def session_page(request: AnyRequest, service: Service, principal: Principal,
                 agent_id: FromPath[str], session_id: FromPath[str]) -> Response[str]:
    """A session as a timeline: its memories in the order they were stored."""
    page = service.browse.timeline(agent_id, session_id, after=query(request, "after"),
                                   before=query(request, "before"))
    memories: list[Memory] = page["memories"]
    gaps = [""] + [_gap(b.effective_time - a.effective_time) for a, b in pairwise(memories)]
    base = f"/ui/agents/{agent_id}/sessions/{session_id}"
    ctx, browser = context(
        request, service, principal, nav="agents", agent_id=agent_id,
        transfer=transfer_ready(service), session=page["session"], memories=memories,
        gaps=gaps, next_url=link(base, {"after": page["next"]}) if page["next"] else None,
        prev_url=link(base, {"before": page["prev"]}) if page["prev"] else None)
    return _respond("session.html", ctx, browser)


def _gap(seconds: int) -> str:
    if seconds < GAP_SECS:
        return ""
    for size, unit in ((86_400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            return f"+{seconds // size} {unit}"
    return ""


@get("/memories/{memory_id:str}", opt=AGENT_IN_QUERY, sync_to_thread=True,
     include_in_schema=False)
def memory_page(request: AnyRequest, service: Service, principal: Principal,
                memory_id: FromPath[str]) -> Response[str]:
    agent_id = query(request, "agent_id")
    ctx, browser = memory_context(request, service, principal, agent_id, memory_id)
    return _respond("memory.html", ctx, browser)


def memory_context(request: AnyRequest, service: TheService, principal: ThePrincipal,
                   agent_id: str, memory_id: str, *, form: dict[str, Any] | None = None,
                   errors: dict[str, str] | None = None) -> tuple[dict[str, Any], Any]:
    """The memory page's context (also for the edit form shown again with its errors)."""
    detail = service.browse.memory(agent_id, memory_id)
    m: Memory = detail["memory"]
    forecast = detail["forecast"]
    points = [(t, v) for t, v in forecast["points"]]
    ticks = [(points[0][0], "now" if abs(points[0][0] - service.now()) < 3600
              else stamp(points[0][0])[:10]), (points[-1][0], stamp(points[-1][0])[:10])] \
        if points else []
    visible = {k: v for k, v in m.metadata.items() if not k.startswith("_dakera_")}
    ctx, browser = context(
        request, service, principal, nav="agents", agent_id=m.agent_id,
        transfer=transfer_ready(service), m=m, history=detail["history"],
        forecast=forecast, neighbours=detail["neighbours"], similar=detail["similar"],
        graph=graph_edges(service, m), flash=flash_of(request), errors=errors or {},
        metadata=json.dumps(visible, indent=2, ensure_ascii=False) if visible else "",
        retention_hours=service.settings.dedup_retention_hours,
        forecast_plot=plots.line(points, label="projected importance if never recalled",
                                 floor=forecast["floor"], ticks=ticks),
        form=form or {"content": m.content, "importance": f"{m.importance:.3f}",
                      "tags": ", ".join(m.tags)})
    return ctx, browser


def graph_edges(service: TheService, memory: Memory) -> list[dict[str, Any]] | None:
    """The memory's knowledge-graph edges, where this build has a graph (None: it has
    none, so the page says nothing about edges)."""
    return None


@get("/agents/{agent_id:str}/trash", opt=AGENT_IN_PATH, sync_to_thread=True,
     include_in_schema=False)
def trash_page(request: AnyRequest, service: Service, principal: Principal,
               agent_id: FromPath[str]) -> Response[str]:
    ctx, browser = context(request, service, principal, nav="agents", agent_id=agent_id,
                           transfer=transfer_ready(service),
                           items=service.browse.trash(agent_id), flash=flash_of(request),
                           retention_hours=service.settings.dedup_retention_hours)
    return _respond("trash.html", ctx, browser)


@get("/overview", opt={**READ, "every_namespace": True}, sync_to_thread=True,
     include_in_schema=False)
def overview_page(request: AnyRequest, service: Service, principal: Principal
                  ) -> Response[str]:
    ctx, browser = overview_context(request, service, principal, None)
    return _respond("overview.html", ctx, browser)


@get("/agents/{agent_id:str}/overview", opt=AGENT_IN_PATH, sync_to_thread=True,
     include_in_schema=False)
def agent_overview_page(request: AnyRequest, service: Service, principal: Principal,
                        agent_id: FromPath[str]) -> Response[str]:
    ctx, browser = overview_context(request, service, principal, agent_id)
    return _respond("overview.html", ctx, browser)


STEP_NAMES = {3600: "hour", 6 * 3600: "6 hours", 12 * 3600: "12 hours", 86_400: "day",
              2 * 86_400: "2 days", 7 * 86_400: "week", 14 * 86_400: "2 weeks",
              30 * 86_400: "30 days", 91 * 86_400: "quarter", 365 * 86_400: "year"}


def overview_context(request: AnyRequest, service: TheService, principal: ThePrincipal,
                     agent_id: str | None) -> tuple[dict[str, Any], Any]:
    data = service.browse.overview(agent_id)
    bins = data["importance"]
    n = len(bins)
    importance_plot = plots.bars(
        bins, [f"{i / n:.2f}-{(i + 1) / n:.2f}" for i in range(n)],
        label="memories by importance, 0 to 1",
        ticks=[(0, "0"), (n // 2, "0.5"), (n - 1, "1")])
    created = data["created"]
    time_plot = None
    if created["counts"]:
        start, step, counts = created["start"], created["step"], created["counts"]
        labels = [stamp(start + i * step)[:16] for i in range(len(counts))]
        ticks = [(0, stamp(start)[:10])]
        if len(counts) > 1:
            ticks.append((len(counts) - 1, stamp(start + (len(counts) - 1) * step)[:10]))
        time_plot = plots.bars(counts, labels, label="memories stored over time",
                               ticks=ticks)
    indexes = data["indexes"]
    by_agent = indexes.get("by_agent") or {}
    ctx, browser = context(
        request, service, principal, nav="overview" if agent_id is None else "agents",
        agent_id=agent_id, transfer=transfer_ready(service),
        total=sum(data["by_type"].values()), by_type=sorted(data["by_type"].items()),
        agents=data.get("agents") or 0, indexes=indexes,
        top_indexes=sorted(by_agent.items(), key=lambda kv: -kv[1])[:5],
        decay=data["decay"], recall=data["recall"], importance_plot=importance_plot,
        time_plot=time_plot, step_label=STEP_NAMES.get(created["step"],
                                                       f"{created['step']} s"))
    return ctx, browser


__all__ = ["agent_overview_page", "agent_page", "agents_page", "memory_context",
           "memory_page", "overview_page", "session_page", "sessions_page", "trash_page"]
