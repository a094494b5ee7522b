"""Entity extraction: the entities of any text (by rules, no model: app/extract), the
entities found in a stored memory, and each agent namespace's extraction config."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from app import validate
from app.config import Settings
from app.errors import FeatureDisabledError, ValidationError
from app.extract import DEFAULT_TYPES, ENTITY_TYPES, extract
from app.models import Mention
from app.store import Store

if TYPE_CHECKING:  # policies reads entity_types() from here
    from app.service.policies import Policies

# Names other extractors use for our types.
ALIASES = {"organization": "org", "organisation": "org", "company": "org", "place": "location",
           "gpe": "location", "loc": "location", "city": "location", "country": "location",
           "datetime": "date", "time": "date", "quantity": "number_with_unit",
           "money": "number_with_unit", "amount": "number_with_unit", "id": "identifier",
           "per": "person", "people": "person", "link": "url"}
# Providers that name this server's own rules; a hosted model is not available here.
RULES = ("rules", "rule", "rule-based", "builtin", "dakera", "none", "default")
MODEL_PROVIDERS = ("openai", "anthropic", "openrouter", "ollama")
LANGS = ("en", "eng", "english")


def entity_types(value: Any, field: str = "entity_types") -> tuple[str, ...] | None:
    """Entity type names as the extractor knows them (None: not given)."""
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValidationError(f"'{field}' must be a list of entity types")
    out: list[str] = []
    for raw in value:
        name = ALIASES.get(raw.strip().lower(), raw.strip().lower())
        if name not in ENTITY_TYPES:
            raise ValidationError(f"'{field}': unknown entity type {raw!r}; this server "
                                  f"extracts {', '.join(ENTITY_TYPES)}")
        if name not in out:
            out.append(name)
    return tuple(out)


def mentions(text: str, types: Collection[str]) -> list[Mention]:
    """The entities of a text as stored with a memory."""
    if not types:
        return []
    return [Mention(e.entity_type, e.value, e.normalized, e.score, e.start, e.end)
            for e in extract(text, types)]


# Batch stores extract while they embed: the model runs without the GIL, so the rules (pure
# Python) take the other core meanwhile instead of adding their time after it. A few texts
# are read at once: a hop to another thread would cost more than it saves.
_EXTRACTOR = ThreadPoolExecutor(max_workers=2, thread_name_prefix="dakera-extract")
ON_A_THREAD = 8  # texts from which extraction goes to the worker


def find_entities(texts: list[tuple[str, Collection[str]]]) -> Future[list[list[Mention]]]:
    """The entities of each (text, types): found now for a few texts, else on a worker
    thread (the caller embeds meanwhile)."""
    def work() -> list[list[Mention]]:
        return [mentions(text, types) for text, types in texts]

    if len(texts) >= ON_A_THREAD and any(types for _, types in texts):
        return _EXTRACTOR.submit(work)
    done: Future[list[list[Mention]]] = Future()
    done.set_result(work())
    return done


def mention_view(m: Mention) -> dict[str, Any]:
    return {"entity_type": m.entity_type, "value": m.value, "normalized": m.normalized,
            "score": m.score, "start": m.start, "end": m.end}


class Extraction:
    def __init__(self, store: Store, settings: Settings, now: Callable[[], int],
                 policies: Policies, find_memory: Callable[[Any, Any], Any]) -> None:
        self.db = store
        self.max_bytes = settings.max_content_bytes
        self.now = now
        self.policies = policies
        self.find_memory = find_memory  # Memories.get: a memory by id (and agent)

    def extract(self, content: Any, types: Any = None, lang: Any = None,
                field: str = "content") -> dict[str, Any]:
        """POST /v1/memories/extract: the entities of a text, in reading order. Without
        types, the contract's default set (person, org, location, date, url, email)."""
        text = validate.content(content, self.max_bytes, field)
        wanted = entity_types(types)
        warnings = _lang_warnings(lang)
        found = mentions(text, DEFAULT_TYPES if wanted is None else wanted)
        out: dict[str, Any] = {"entities": [mention_view(m) for m in found]}
        if warnings:
            out["warnings"] = warnings
        return out

    def extract_text(self, text: Any, *, namespace: Any = None, provider: Any = None,
                     model: Any = None, lang: Any = None, agent_id: Any = None,
                     extractor_override: Any = None) -> dict[str, Any]:
        """POST /v1/extract: like extract, with the types of a namespace's config when one
        is named. Only this server's rules are available: a hosted model provider is
        refused with 501."""
        if isinstance(extractor_override, dict):
            provider = extractor_override.get("provider", provider)
            model = extractor_override.get("model", model)
        warnings = _provider_warnings(provider, model)
        types: Collection[str] = DEFAULT_TYPES
        if namespace is not None or agent_id is not None:
            ns = namespace if namespace is not None else (
                "_dakera_agent_" + validate.agent_id(agent_id))
            if not isinstance(ns, str):
                raise ValidationError("'namespace' must be a string")
            types = self.policies.ner(ns)["entity_types"] or DEFAULT_TYPES
        started = time.perf_counter()
        text_ = validate.content(text, self.max_bytes, "text")
        found = mentions(text_, types)
        duration = (time.perf_counter() - started) * 1000
        out: dict[str, Any] = {"entities": [mention_view(m) for m in found],
                               "provider": "rules", "model": None,
                               "duration_ms": round(duration, 3)}
        warnings += _lang_warnings(lang)
        if warnings:
            out["warnings"] = warnings
        return out

    def memory_entities(self, memory_id: Any, agent_id: Any = None) -> dict[str, Any]:
        """GET /v1/memory/entities/{id}: what was extracted when the memory was stored. When
        nothing was kept (the agent's extraction was off, or the memory predates it) the
        entities are found now, with the agent's types (not kept)."""
        memory = self.find_memory(memory_id, agent_id)
        found = self.db.entities.of_memory(memory.rowid)
        stored = bool(found)
        if not found:
            types = self.policies.store_policy(memory.agent_id).entity_types or DEFAULT_TYPES
            found = mentions(memory.content, types)
        return {"memory_id": memory.id, "agent_id": memory.agent_id,
                "entities": [mention_view(m) for m in found], "count": len(found),
                "extracted_at_store": stored}


def _lang_warnings(lang: Any) -> list[str]:
    if lang is None:
        return []
    if not isinstance(lang, str):
        raise ValidationError("'lang' must be a language code such as \"en\"")
    if lang.strip().lower() in LANGS:
        return []
    return [f"lang {lang!r}: the extraction rules are written for English; names and dates "
            "of other languages may be missed"]


def _provider_warnings(provider: Any, model: Any) -> list[str]:
    if provider is None:
        return []
    if not isinstance(provider, str):
        raise ValidationError("'provider' must be a string")
    name = provider.strip().lower()
    if name in MODEL_PROVIDERS:
        raise FeatureDisabledError(
            f"extraction provider {provider!r} needs a hosted language model, which this "
            "server does not call; it extracts entities with its own rules (omit provider)",
            details="no DAKERA_* setting enables it")
    if name == "gliner":
        return ["provider 'gliner' is not available on this server: its rule-based "
                "extractor answered instead"]
    if name not in RULES:
        raise ValidationError(f"unknown extraction provider {provider!r}")
    if model is not None:
        return [f"model {model!r} ignored: the rule-based extractor has no models"]
    return []


__all__ = ["Extraction", "entity_types", "find_entities", "mention_view", "mentions"]
