"""What a catalog search answers: the enrichments and waterfalls that fit the user's words, best first; when
nothing does, where to look instead (the categories with their counts and the names closest to the words).

The whole catalog is listed once (cached) and ranked here with stemming and synonyms (core/search.py), since
Databar's `q` matches substrings only ("tech stack" found nothing, "technologies" found enrichment 121).
Params and outputs are only in an enrichment's details: the leading candidates' details are fetched (they are
shown anyway) and the ranking is redone with them, and every enrichment whose details are cached is searched
with them too.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import anyio

from databar_mcp.api.errors import DatabarError
from databar_mcp.api.models import Enrichment, Waterfall
from databar_mcp.core.catalog import Catalog
from databar_mcp.core.search import Document, nearest, rank, stems

logger = logging.getLogger("databar_mcp.core.finding")

DETAILS_RANKED = 10  # the leading candidates whose params and outputs are fetched to rank them
NEAREST_SHOWN = 5
WATERFALL_BOOST = 1.1  # several providers in turn find more than any one of them: ahead on a tie
CHOICES_INDEXED = 50  # inline choices searched per param ("CRM" finds the technographics enrichment)


@dataclass(frozen=True)
class Entry:
    """One search result: an enrichment or a waterfall."""

    enrichment: Enrichment | None = None
    waterfall: Waterfall | None = None


@dataclass(frozen=True)
class Found:
    entries: list[Entry]
    categories: dict[str, int] = field(default_factory=lambda: dict[str, int]())
    nearest: list[str] = field(default_factory=lambda: list[str]())
    searched: tuple[int, int] = (0, 0)  # enrichments and waterfalls in the catalog


def _spaced(name: str) -> str:
    """'PeopleDataLabs' -> 'PeopleDataLabs People Data Labs': either spelling finds it."""
    split = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", name)
    return name if split == name else f"{name} {split}"


def enrichment_document(e: Enrichment) -> Document:
    fields: list[tuple[str, float]] = [
        (e.name, 3.0),
        (" ".join(e.category_names), 2.0),
        (_spaced(e.data_source or ""), 2.0),
        (e.description or "", 1.5),
    ]
    for p in e.params or []:
        choices = p.choices.items[:CHOICES_INDEXED] if p.choices is not None and p.choices.items else []
        fields.append((f"{p.name} {p.description or ''} {' '.join(c.name for c in choices)}", 1.0))
    for f in e.response_fields or []:
        fields.append((f"{f.name} {f.display_name or ''}", 1.2))
    return Document(f"e{e.id}", tuple(fields))


def waterfall_document(w: Waterfall) -> Document:
    fields: list[tuple[str, float]] = [
        (f"{w.identifier} {w.name}", 3.0),
        (w.description or "", 1.5),
        (" ".join(f"{p.name} {p.text or ''}" for p in w.input_params), 1.0),
        (" ".join(w.output_field_names()), 1.2),
        (" ".join(f"{p.name} {p.description or ''}" for p in w.available_enrichments), 0.5),
    ]
    return Document(f"w{w.identifier}", tuple(fields), boost=WATERFALL_BOOST)


def waterfalls_for(waterfalls: Sequence[Waterfall], query: str) -> list[Waterfall]:
    """The waterfalls matching the query, best first."""
    by_key = {f"w{w.identifier}": w for w in waterfalls}
    return [by_key[hit.key] for hit in rank(map(waterfall_document, waterfalls), query)]


def in_category(e: Enrichment, category: str) -> bool:
    wanted = stems(category)
    return any(stems(c.name) == wanted or str(c.id) == category.strip() for c in e.category)


async def find(catalog: Catalog, query: str | None, category: str | None) -> Found:
    """Entries for the query (and category), best first; with no query, the category's (or every)
    enrichment, cheapest first. Waterfalls are searched when no category narrows the search."""
    listing = await catalog.enrichment_list()
    pool = [e for e in listing if category is None or in_category(e, category)]
    if not query:
        ordered = sorted(pool, key=lambda e: e.price if e.price is not None else float("inf"))
        return _with_hints(Found([Entry(enrichment=e) for e in ordered]), listing, [], query or category or "")
    waterfalls = await _waterfalls(catalog) if category is None else []
    entries = _ranked(catalog, pool, waterfalls, query)
    missing = [e.enrichment.id for e in entries[:DETAILS_RANKED] if e.enrichment and not catalog.known(e.enrichment.id)]
    if missing:
        await _fetch_details(catalog, missing)
        entries = _ranked(catalog, pool, waterfalls, query)
    return _with_hints(Found(entries), listing, waterfalls, query)


def _ranked(catalog: Catalog, pool: Sequence[Enrichment], waterfalls: Sequence[Waterfall], query: str) -> list[Entry]:
    cheapest_first = sorted(pool, key=lambda e: e.price if e.price is not None else float("inf"))  # wins a tie
    enrichments = {f"e{e.id}": catalog.known(e.id) or e for e in cheapest_first}
    flows = {f"w{w.identifier}": w for w in waterfalls}
    documents = [*(enrichment_document(e) for e in enrichments.values()), *map(waterfall_document, waterfalls)]
    return [Entry(enrichment=enrichments.get(hit.key), waterfall=flows.get(hit.key)) for hit in rank(documents, query)]


def _with_hints(found: Found, listing: Sequence[Enrichment], waterfalls: Sequence[Waterfall], said: str) -> Found:
    """Every answer carries the category counts; one with no entries also the names nearest the words."""
    counts = Counter(name for e in listing for name in (e.category_names or ["uncategorised"]))
    categories = dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    candidates = [
        *((e.name, f"{e.name} {e.data_source or ''}") for e in listing),
        *((w.name, w.name) for w in waterfalls),
    ]
    close = [] if found.entries else nearest(candidates, said)
    return Found(found.entries, categories, close[:NEAREST_SHOWN], (len(listing), len(waterfalls)))


async def _waterfalls(catalog: Catalog) -> list[Waterfall]:
    try:
        return await catalog.waterfall_list()
    except DatabarError as exc:  # the enrichments still answer the search
        logger.info("waterfalls not searched: %s", exc)
        return []


async def _fetch_details(catalog: Catalog, ids: Sequence[int]) -> None:
    async def one(enrichment_id: int) -> None:
        try:
            await catalog.enrichment(enrichment_id)
        except DatabarError as exc:  # ranked on its summary instead
            logger.info("details of enrichment %s unavailable for ranking: %s", enrichment_id, exc)

    async with anyio.create_task_group() as tg:
        for enrichment_id in ids:
            tg.start_soon(one, enrichment_id)
