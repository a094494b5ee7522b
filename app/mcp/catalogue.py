"""Every MCP tool, its tier, and the profiles that list them (DAKERA_MCP_PROFILE):

- core (the default): the 12 everyday tools and the 2 discovery tools, 14 in all;
- admin: core and the administration tools (decay, whoami);
- power: core and the tools of the graph, entities, consolidation, sessions, agents,
  feedback, policies, AutoPilot and the server;
- all: every tool.

A profile decides what tools/list shows, not what can be called: a model that finds a tool
with dakera_discover_tools and reads its schema with dakera_load_tools can call it under any
profile (the API key is the security boundary, as in dakera-mcp).
"""

from __future__ import annotations

from typing import Any

from app.errors import ValidationError
from app.mcp.backend import Backend
from app.mcp.graph_tools import GRAPH_TOOLS
from app.mcp.manage_tools import MANAGE_TOOLS
from app.mcp.tools import TOOLS, ToolSpec, _schema

PROFILES = ("core", "admin", "power", "all")
TIERS = ("core", "power", "admin", "meta")
_LISTED = {"core": {"core", "meta"}, "admin": {"core", "admin", "meta"},
           "power": {"core", "power", "meta"}, "all": set(TIERS)}


def _summary(spec: ToolSpec) -> str:
    return spec.description.split("\n\n")[0].replace("\n", " ")


async def _discover(backend: Backend, args: dict[str, Any]) -> dict[str, Any]:
    query = str(args.get("query", "")).lower().strip()
    tier = args.get("tier", "all")
    words = query.split()
    found = [{"name": t.name, "title": t.title, "tier": t.tier, "summary": _summary(t)}
             for t in CATALOGUE
             if (tier == "all" or t.tier == tier)
             and all(w in f"{t.name} {t.title} {t.description}".lower() for w in words)]
    return {"tools": found, "count": len(found),
            "hint": "dakera_load_tools gives the full description and input schema of the "
                    "tools you name; any of them can then be called."}


async def _load(backend: Backend, args: dict[str, Any]) -> dict[str, Any]:
    names = args["tools"]
    found = [{"name": BY_NAME[n].name, "title": BY_NAME[n].title, "tier": BY_NAME[n].tier,
              "description": BY_NAME[n].description, "inputSchema": BY_NAME[n].input_schema}
             for n in dict.fromkeys(names) if n in BY_NAME]
    return {"tools": found, "not_found": [n for n in names if n not in BY_NAME]}


META_TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(
        name="dakera_discover_tools", tier="meta", title="Find more dakera tools",
        description="""\
Search all of dakera's tools, including those not listed here (the knowledge graph, \
entities, consolidation, sessions, agents, feedback, administration), by keywords and/or \
tier (core, power, admin, meta). Returns each match's name, tier and a one-line summary. \
Then call dakera_load_tools with the names you need to read their schemas; you can call \
them afterwards even though they are not in your tool list.""",
        input_schema=_schema({
            "query": {"type": "string", "description": (
                "Words that must all appear in the tool's name or description, e.g. "
                "\"graph path\" or \"session\". Empty: every tool.")},
            "tier": {"type": "string", "enum": ["core", "power", "admin", "meta", "all"],
                     "default": "all", "description": "Only tools of this tier."},
        }, []),
        handler=_discover, read_only=True,
    ),
    ToolSpec(
        name="dakera_load_tools", tier="meta", title="Load dakera tool schemas",
        description="""\
The full description and input schema of the named tools (from dakera_discover_tools), so \
you can call them. Unknown names come back in not_found.""",
        input_schema=_schema({
            "tools": {"type": "array", "items": {"type": "string"}, "minItems": 1,
                      "maxItems": 50, "description": "Tool names, e.g. [\"dakera_graph_path\"]."},
        }, ["tools"]),
        handler=_load, read_only=True,
    ),
)

CATALOGUE: tuple[ToolSpec, ...] = (*TOOLS, *GRAPH_TOOLS, *MANAGE_TOOLS, *META_TOOLS)
BY_NAME = {t.name: t for t in CATALOGUE}
assert len(BY_NAME) == len(CATALOGUE), "duplicate tool names"
assert {t.tier for t in CATALOGUE} <= set(TIERS)


def listed(profile: str) -> list[ToolSpec]:
    """The tools a profile lists, in catalogue order."""
    if profile not in _LISTED:
        raise ValidationError(f"unknown MCP profile {profile!r}: one of {', '.join(PROFILES)}")
    return [t for t in CATALOGUE if t.tier in _LISTED[profile]]
