"""Named entities of a memory by rules alone: persons, organisations, places, dates, urls,
emails, quantities and identifiers. Standard library only; see docs/extraction.md."""

from app.extract.entities import DEFAULT_TYPES, ENTITY_TYPES, Entity, extract

__all__ = ["DEFAULT_TYPES", "ENTITY_TYPES", "Entity", "extract"]
