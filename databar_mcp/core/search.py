"""Ranking catalog entries against the words a user says, not the words Databar's catalog happens to use.

A user asks for a "tech stack" and the catalog says "technographics"; a "cell phone" and it says "mobile";
"staff" and it says "employees". Databar's own `q` is a substring match, so those found nothing. Here every
entry is a document of weighted fields (name, category, description, params, outputs); query and document go
through the same light stemmer, the query's words are widened through a small synonym table for this domain,
and rarer words count more (idf), so "find" or "company" alone never outrank the word that says what is wanted.
"""

from __future__ import annotations

import difflib
import functools
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# Each group: words and phrases a user may say for one thing. A query word in a group matches any member.
SYNONYMS: tuple[tuple[str, ...], ...] = (
    ("technology", "technologies", "tech", "tech stack", "stack", "technographics", "builtwith", "built with",
     "software", "tools", "platform", "crm", "analytics", "hosting"),
    ("phone", "mobile", "cell", "cell phone", "cellphone", "telephone", "direct dial", "dial", "phone number",
     "mobile number"),
    ("company", "organization", "organisation", "org", "account", "business", "firm", "employer", "startup"),
    ("firmographics", "company profile", "company info", "company information", "company data"),
    ("funding", "fund", "raise", "raised", "investment", "investor", "investors", "round", "funding round",
     "capital", "venture", "money"),
    ("email", "e-mail", "mail", "email address", "inbox"),
    ("person", "people", "contact", "lead", "prospect", "individual", "someone", "human"),
    ("employee", "employees", "staff", "headcount", "workforce", "personnel", "team", "work at", "works at",
     "working at", "colleague", "team size"),
    ("linkedin", "linked in", "profile"),
    ("revenue", "turnover", "annual revenue", "income", "arr", "sales volume"),
    ("address", "location", "located", "headquarters", "hq", "office", "street", "city", "postal"),
    ("verify", "verification", "verifier", "validate", "validation", "check", "deliverable", "deliverability",
     "bounce", "valid"),
    ("twitter", "x", "tweet", "x handle", "handle"),
    ("social", "socials", "social media", "twitter", "linkedin"),
    ("title", "job title", "role", "position", "job"),
    ("seniority", "senior", "decision maker", "decision makers", "executive", "vp", "vps", "director",
     "c-suite", "c suite", "ceo", "cto", "cfo", "head of", "leadership", "manager"),
    ("founded", "founding", "established", "year founded", "age"),
    ("industry", "sector", "vertical"),
    ("country", "nation", "region", "geo"),
    ("domain", "website", "site", "url", "web"),
    ("lookup", "look up", "reverse", "behind", "identify", "who is"),
    ("finder", "getter", "lookup", "look up", "search"),
)  # fmt: skip

# Words that say nothing about which enrichment is wanted.
STOP_WORDS = frozenset((
    "a", "an", "the", "of", "for", "from", "to", "by", "with", "and", "or", "in", "on", "at", "as", "into", "my",
    "our", "your", "their", "its", "this", "these", "that", "those", "what", "which", "who", "whom", "whose",
    "where", "when", "why", "how", "is", "are", "was", "were", "be", "been", "do", "does", "did", "has", "have",
    "had", "can", "could", "would", "should", "will", "please", "i", "me", "we", "us", "you", "it", "they", "them",
    "get", "gets", "find", "finds", "finding", "search", "searching", "want", "need", "give", "show", "list",
    "all", "some", "any", "every", "each", "much", "many", "more", "data", "info", "information", "enrich",
    "enriched", "enrichment", "enrichments", "run", "via", "using",
))  # fmt: skip

_SUFFIXES = (
    "ications", "ication", "ability", "ations", "ation", "ators", "ator", "ated", "ates", "ate", "iers", "ier",
    "ings", "ing", "ies", "ied", "able", "ers", "er", "ed", "es", "s", "y", "e",
)  # fmt: skip
_MIN_STEM = 3
_WORD = re.compile(r"[a-z0-9]+")
SYNONYM_FACTOR = 0.8  # a word the user did not say counts a little less than one they did
PREFIX_FACTOR = 0.5  # "techno" for "technographics": a typed prefix of a long word
PREFIX_MIN = 4


@functools.lru_cache(maxsize=65_536)  # a catalog's vocabulary is small; each word is stemmed once
def stem(word: str) -> str:
    """A light suffix stripper: one rule, the longest that leaves a stem of three letters or more
    ("companies" and "company" -> "compan", "verified"/"verify"/"verification" -> "verif")."""
    if len(word) <= _MIN_STEM or word.endswith(("ss", "us", "is")):
        return word
    if word.endswith("sses"):
        return word[:-2]
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= _MIN_STEM:
            return word[: -len(suffix)]
    return word


def words(text: str) -> list[str]:
    """Lower-case words; `linkedin_url` is two words, "e-mail" one."""
    text = text.lower().replace("e-mail", "email").replace("_", " ")
    return _WORD.findall(text)


def stems(text: str) -> list[str]:
    return [stem(w) for w in words(text)]


Term = tuple[str, ...]  # one word or a phrase, stemmed


def _term(text: str) -> Term:
    return tuple(stems(text))


_GROUPS: tuple[frozenset[Term], ...] = tuple(frozenset(_term(member) for member in group) for group in SYNONYMS)
_PHRASES: tuple[Term, ...] = tuple(
    sorted({t for g in _GROUPS for t in g if len(t) > 1}, key=lambda t: (-len(t), t))
)  # longest first: "tech stack" before "tech"


@dataclass(frozen=True)
class Concept:
    """One thing the user asked for: the term they said and the terms that mean the same."""

    said: Term
    alternatives: frozenset[Term]


def concepts(query: str) -> list[Concept]:
    """The query as concepts: known phrases first ("tech stack", "who is"), then each remaining word that is
    not a stop word; each widened by its synonym groups."""
    said = stems(query)
    raw = words(query)
    out: list[Concept] = []
    i = 0
    while i < len(said):
        phrase = next((p for p in _PHRASES if tuple(said[i : i + len(p)]) == p), None)
        if phrase is not None:
            out.append(_concept(phrase))
            i += len(phrase)
            continue
        if raw[i] not in STOP_WORDS:
            out.append(_concept((said[i],)))
        i += 1
    unique: dict[Term, Concept] = {c.said: c for c in out}
    return list(unique.values())


def _concept(term: Term) -> Concept:
    alternatives: set[Term] = {term}
    for group in _GROUPS:
        if term in group:
            alternatives |= group
    return Concept(term, frozenset(alternatives))


@dataclass(frozen=True)
class Document:
    """One catalog entry as searchable text: (text, weight) fields, e.g. the name counts more than a param."""

    key: str
    fields: tuple[tuple[str, float], ...]
    boost: float = 1.0  # e.g. waterfalls: several providers in turn find more than any one of them


@dataclass(frozen=True)
class Hit:
    key: str
    score: float


class _Indexed:
    """A document's fields as stems: a list for phrases (order matters), a set for single words."""

    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.fields: list[tuple[list[str], frozenset[str], float]] = []
        self.word_weight: dict[str, float] = {}  # each word's best field: one lookup for a one-word term
        for text, weight in doc.fields:
            ordered = stems(text)
            self.fields.append((ordered, frozenset(ordered), weight))
            for word in ordered:
                self.word_weight[word] = max(weight, self.word_weight.get(word, 0.0))

    def weight_of(self, term: Term) -> float:
        """The weight of the best field holding `term` (a phrase: its words in order), else 0."""
        if len(term) == 1 or not all(w in self.word_weight for w in term):
            return self.word_weight.get(term[0], 0.0) if len(term) == 1 else 0.0
        best = 0.0
        for ordered, bag, weight in self.fields:
            if weight > best and _contains(ordered, bag, term):
                best = weight
        return best

    def prefix_weight(self, term: Term) -> float:
        if len(term) != 1 or len(term[0]) < PREFIX_MIN:
            return 0.0
        return max((w for x, w in self.word_weight.items() if x.startswith(term[0])), default=0.0)


def _contains(ordered: Sequence[str], bag: frozenset[str], term: Term) -> bool:
    if not all(t in bag for t in term):
        return False
    n = len(term)
    return n == 1 or any(tuple(ordered[i : i + n]) == term for i in range(len(ordered) - n + 1))


def rank(documents: Iterable[Document], query: str) -> list[Hit]:
    """Documents matching the query, best first (ties keep the documents' order).

    Each concept adds, for a document holding it, the weight of its best field (a synonym a little less than
    the word said) times the concept's idf: a concept most entries hold says little about which one is meant.
    A concept no entry holds falls back to prefixes ("techno")."""
    indexed = [_Indexed(d) for d in documents]
    scores = [0.0] * len(indexed)
    for concept in concepts(query):
        weights = [_concept_weight(doc, concept) for doc in indexed]
        if not any(weights):
            weights = [doc.prefix_weight(concept.said) * PREFIX_FACTOR for doc in indexed]
        holders = sum(1 for w in weights if w)
        if not holders:
            continue
        idf = math.log((len(indexed) + 1) / (holders + 0.5))
        for i, weight in enumerate(weights):
            scores[i] += weight * idf
    hits = [Hit(d.doc.key, round(score * d.doc.boost, 6)) for d, score in zip(indexed, scores, strict=True) if score]
    order = {h.key: i for i, h in enumerate(hits)}
    return sorted(hits, key=lambda h: (-h.score, order[h.key]))


def _concept_weight(doc: _Indexed, concept: Concept) -> float:
    return max(doc.weight_of(t) * (1.0 if t == concept.said else SYNONYM_FACTOR) for t in concept.alternatives)


NEAR_ENOUGH = 0.5  # closeness (0..1) a name needs to be offered ahead of the rest
NEAR_SPREAD = 0.25  # ... and no further than this below the closest one


def nearest(candidates: Iterable[tuple[str, str]], query: str, count: int = 5) -> list[str]:
    """The names whose text (name, source...) is closest in spelling to the query, for a search that found
    nothing: typos ("linkdin"), a provider's name ("crunchbse"). Only the close ones when some are close,
    else the three least far."""
    said = [w for w in words(query) if w not in STOP_WORDS] or words(query)

    def closeness(text: str) -> float:
        whole = difflib.SequenceMatcher(None, query.lower(), text.lower()).ratio()
        parts = words(text)
        each = [max((difflib.SequenceMatcher(None, w, p).ratio() for p in parts), default=0.0) for w in said]
        return max(whole, sum(each) / len(each) if each else 0.0)

    scored = sorted(
        ((closeness(text), i, name) for i, (name, text) in enumerate(candidates)), key=lambda t: (-t[0], t[1])
    )
    if not scored:
        return []
    floor = max(NEAR_ENOUGH, scored[0][0] - NEAR_SPREAD)
    close = [name for score, _, name in scored if score >= floor]
    return (close or [name for _, _, name in scored[:3]])[:count]
