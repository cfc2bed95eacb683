"""The fixed enrichment and waterfall catalog: ids, prices, params and hidden hit rates.

Defined once here so the routes, the fake providers and the tests agree on every number. The JSON comes in
the shapes Databar's SDK reads (`variant=False`, the default) or in the other spellings Databar's clients
accept (`variant=True`: category strings, choice lists, numeric prices, `enabled_by_default` left out), so
tests can prove our client reads both.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from databar_mcp.sandbox.errors import Json


@dataclass(frozen=True)
class Param:
    name: str
    is_required: bool = True
    type_field: str = "text"
    description: str = ""
    choices: tuple[str, ...] = ()
    remote_choices: bool = False  # served only through the choices endpoint, as long lists are

    def as_json(self, enrichment_id: int, variant: bool = False) -> dict[str, Json]:
        out: dict[str, Json] = {
            "name": self.name,
            "is_required": self.is_required,
            "type_field": self.type_field,
            "description": self.description,
        }
        if self.choices and variant:
            out["choices"] = [{"id": _choice_id(c), "name": c} for c in self.choices[:10]]
        elif self.choices and self.remote_choices:
            endpoint = f"/v1/enrichments/{enrichment_id}/params/{self.name}/choices"
            out["choices"] = {"mode": "remote", "items": None, "endpoint": endpoint}
        elif self.choices:
            out["choices"] = {"mode": "inline", "items": list[Json](choice_items(self)), "endpoint": None}
        return out

    def input_json(self, required_key: str | None) -> dict[str, Json]:
        """A waterfall input: free-form in the SDK; Databar's MCP server reads `{name, type, required}`."""
        out: dict[str, Json] = {"name": self.name, "type": self.type_field, "description": self.description}
        if required_key is not None:
            out[required_key] = self.is_required
        return out


@dataclass(frozen=True)
class OutputField:
    name: str
    display_name: str
    type_field: str = "text"

    def as_json(self) -> dict[str, Json]:
        return {"name": self.name, "display_name": self.display_name, "type_field": self.type_field}

    def waterfall_json(self) -> dict[str, Json]:
        return {"name": self.name, "label": self.display_name, "type": self.type_field}


@dataclass(frozen=True)
class Enrichment:
    id: int
    name: str
    description: str
    data_source: str
    price: float
    category: tuple[str, ...]
    params: tuple[Param, ...]
    response_fields: tuple[OutputField, ...]
    auth_method: str = "none"
    hit_rate: float = 0.5  # hidden: share of inputs the fake provider finds data for
    price_parameter: str | None = None  # per-parameter pricing: price × params[price_parameter] per input
    per_page: int | None = None  # paginated (list-style) enrichments: rows per page
    # What the pricing parameter is when an input leaves it out (stated in its param's description, as
    # Databar's descriptions state defaults; the API has no field for it). A list-style enrichment with a
    # pricing parameter returns that many results per input, a list (an assumption: Databar's docs show no
    # such reply, but a price per result that answered one result would bill for items never delivered).
    price_parameter_default: float = 1.0

    def summary_json(self, variant: bool = False) -> dict[str, Json]:
        out: dict[str, Json] = {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "data_source": self.data_source,
            "price": self.price,
            "auth_method": self.auth_method,
        }
        if variant:
            out["category"] = list(self.category)
            if self.price_parameter:
                out["pricing"] = {"type": "per_parameter", "parameter": self.price_parameter}
            return out
        out["pricing"] = (
            {"type": "per_parameter", "parameter": self.price_parameter}
            if self.price_parameter
            else {"type": "fixed", "parameter": None}
        )
        out["category"] = [{"id": CATEGORY_IDS[c], "name": c} for c in self.category]
        return out

    def detail_json(self, variant: bool = False) -> dict[str, Json]:
        out = self.summary_json(variant)
        out["params"] = [p.as_json(self.id, variant) for p in self.params]
        out["response_fields"] = [f.as_json() for f in self.response_fields]
        if not variant:
            out["pagination"] = (
                {"supported": True, "per_page": self.per_page} if self.per_page else {"supported": False}
            )
        return out

    def unit_cost(self, row: dict[str, Json]) -> float:
        """What one input costs: the price, times the pricing parameter's value for per-parameter pricing."""
        if self.price_parameter is None:
            return self.price
        return self.price * self.amount(row)

    def amount(self, row: Mapping[str, Json]) -> float:
        """The pricing parameter's value in this input (its default when left out)."""
        value = row.get(self.price_parameter) if self.price_parameter else None
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        return self.price_parameter_default

    @property
    def many_results(self) -> bool:
        """Answers a list per input: a paginated enrichment priced per result."""
        return self.per_page is not None and self.price_parameter is not None

    def param(self, slug: str) -> Param | None:
        return next((p for p in self.params if p.name == slug), None)


@dataclass(frozen=True)
class Provider:
    enrichment_id: int
    enabled_by_default: bool


@dataclass(frozen=True)
class Waterfall:
    identifier: str
    name: str
    description: str
    input_params: tuple[Param, ...]
    output_fields: tuple[OutputField, ...]
    providers: tuple[Provider, ...]
    email_verifiers: tuple[int, ...] = field(default=())

    @property
    def provider_ids(self) -> list[int]:
        return [p.enrichment_id for p in self.providers]

    @property
    def default_provider_ids(self) -> list[int]:
        return [p.enrichment_id for p in self.providers if p.enabled_by_default]

    def as_json(self, variant: bool = False, required_key: str | None = "required") -> dict[str, Json]:
        available: list[Json] = []
        for p in self.providers:
            e = ENRICHMENTS[p.enrichment_id]
            provider: dict[str, Json] = {
                "id": e.id,
                "name": e.name,
                "description": e.description,
                "price": e.price if variant else f"{e.price:.2f}",
                "params": [x.name for x in e.params],
            }
            if not (variant and p.enabled_by_default):  # the SDK reads an absent flag as true
                provider["enabled_by_default"] = p.enabled_by_default
            available.append(provider)
        verifiers: list[Json] = [
            {
                "id": v,
                "name": ENRICHMENTS[v].name,
                "price": ENRICHMENTS[v].price if variant else f"{ENRICHMENTS[v].price:.2f}",
            }
            for v in self.email_verifiers
        ]
        return {
            "identifier": self.identifier,
            "name": self.name,
            "description": self.description,
            "input_params": [p.input_json(required_key) for p in self.input_params],
            "output_fields": [f.waterfall_json() for f in self.output_fields],
            "available_enrichments": available,
            "is_email_verifying": bool(self.email_verifiers),
            "email_verifiers": verifiers,
        }


def _choice_id(name: str) -> str:
    return name.lower().replace(" ", "_")


CATEGORY_IDS = {"email": 1, "phone": 2, "company": 3, "people": 4, "social": 5}


COUNTRIES = (
    "Argentina", "Australia", "Austria", "Belgium", "Brazil", "Bulgaria", "Canada", "Chile", "China",
    "Colombia", "Croatia", "Czechia", "Denmark", "Egypt", "Estonia", "Finland", "France", "Germany",
    "Greece", "Hungary", "India", "Indonesia", "Ireland", "Israel", "Italy", "Japan", "Kenya", "Latvia",
    "Lithuania", "Malaysia", "Mexico", "Morocco", "Netherlands", "New Zealand", "Nigeria", "Norway",
    "Pakistan", "Peru", "Philippines", "Poland", "Portugal", "Romania", "Saudi Arabia", "Serbia",
    "Singapore", "Slovakia", "Slovenia", "South Africa", "South Korea", "Spain", "Sweden", "Switzerland",
    "Thailand", "Turkey", "Ukraine", "United Arab Emirates", "United Kingdom", "United States", "Vietnam",
)  # fmt: skip
SENIORITIES = ("Entry", "Senior", "Manager", "Director", "VP", "C-suite")
TECH_CATEGORIES = ("Analytics", "CRM", "Hosting", "Payments", "Marketing automation", "E-commerce")

_FIRST = Param("first_name", description="First name of the person")
_LAST = Param("last_name", description="Last name of the person")
_COMPANY = Param("company", description="Company name or domain, e.g. acme.com")
_DOMAIN = Param("domain", description="Company website domain, e.g. acme.com")
_EMAIL = Param("email", description="Email address")
_LINKEDIN = Param("linkedin_url", description="LinkedIn profile URL")
_PERSON_OUT = (
    OutputField("full_name", "Full name"),
    OutputField("title", "Job title"),
    OutputField("company", "Company"),
    OutputField("linkedin_url", "LinkedIn URL", "url"),
)


def _email_finder(eid: int, name: str, source: str, price: float, hit_rate: float) -> Enrichment:
    return Enrichment(
        id=eid,
        name=name,
        description=f"Find a person's work email from their name and company, via {source}.",
        data_source=source,
        price=price,
        category=("email",),
        params=(_FIRST, _LAST, _COMPANY),
        response_fields=(OutputField("email", "Email", "email"),),
        hit_rate=hit_rate,
    )


def _phone_finder(eid: int, name: str, source: str, price: float, hit_rate: float) -> Enrichment:
    return Enrichment(
        id=eid,
        name=name,
        description=f"Find a mobile phone number from a LinkedIn profile URL, via {source}.",
        data_source=source,
        price=price,
        category=("phone",),
        params=(_LINKEDIN,),
        response_fields=(OutputField("phone", "Phone", "phone"),),
        hit_rate=hit_rate,
    )


_ALL: tuple[Enrichment, ...] = (
    _email_finder(833, "LeadMagic email finder", "LeadMagic", 1.0, 0.55),
    _email_finder(966, "Prospeo email finder", "Prospeo", 2.0, 0.45),
    _email_finder(1001, "Findymail email finder", "Findymail", 1.5, 0.50),
    Enrichment(
        id=10,
        name="MillionVerifier email verification",
        description="Check whether an email address is deliverable.",
        data_source="MillionVerifier",
        price=0.5,
        category=("email",),
        params=(_EMAIL,),
        response_fields=(
            OutputField("email", "Email", "email"),
            OutputField("status", "Status"),
            OutputField("verified", "Verified", "boolean"),
        ),
        hit_rate=0.95,
    ),
    _phone_finder(1201, "Wiza mobile phone finder", "Wiza", 3.0, 0.40),
    _phone_finder(1202, "Kaspr phone finder", "Kaspr", 4.0, 0.60),
    Enrichment(
        id=120,
        name="Company profile from domain",
        description="Firmographics of a company: name, industry, headcount, country, founding year.",
        data_source="Databar",
        price=1.0,
        category=("company",),
        params=(_DOMAIN,),
        response_fields=(
            OutputField("name", "Company name"),
            OutputField("industry", "Industry"),
            OutputField("employees", "Employees", "number"),
            OutputField("country", "Country"),
            OutputField("founded", "Founded", "number"),
            OutputField("linkedin_url", "LinkedIn URL", "url"),
        ),
        hit_rate=0.85,
    ),
    Enrichment(
        id=121,
        name="Company technographics",
        description="Technologies a company's website uses, optionally filtered by category.",
        data_source="BuiltWith",
        price=2.5,
        category=("company",),
        params=(
            _DOMAIN,
            Param("tech_category", False, "select", "Only this technology category", TECH_CATEGORIES),
        ),
        response_fields=(OutputField("technologies", "Technologies", "array"),),
        auth_method="api_key",
        hit_rate=0.7,
    ),
    Enrichment(
        id=130,
        name="Company funding rounds",
        description="Funding history of a company: total raised, last round type and date, lead investors.",
        data_source="Crunchbase",
        price=2.0,
        category=("company",),
        params=(_DOMAIN,),
        response_fields=(
            OutputField("total_funding", "Total funding (USD)", "number"),
            OutputField("last_round", "Last round type"),
            OutputField("last_round_date", "Last round date", "datetime"),
            OutputField("investors", "Lead investors", "array"),
        ),
        auth_method="api_key",
        hit_rate=0.4,
    ),
    Enrichment(
        id=131,
        name="Company revenue estimate",
        description="Estimated annual revenue of a company and its revenue range, from its domain.",
        data_source="Owler",
        price=1.5,
        category=("company",),
        params=(_DOMAIN,),
        response_fields=(
            OutputField("annual_revenue", "Annual revenue (USD)", "number"),
            OutputField("revenue_range", "Revenue range"),
        ),
        hit_rate=0.6,
    ),
    Enrichment(
        id=132,
        name="Company headquarters address",
        description="Street address, city, postal code and country of a company's headquarters.",
        data_source="Google Maps",
        price=0.5,
        category=("company",),
        params=(_COMPANY,),
        response_fields=(
            OutputField("street", "Street"),
            OutputField("city", "City"),
            OutputField("postal_code", "Postal code"),
            OutputField("country", "Country"),
        ),
        hit_rate=0.9,
    ),
    Enrichment(
        id=300,
        name="Person from work email",
        description="Look up a person's name, title, company and LinkedIn profile from a work email.",
        data_source="PeopleDataLabs",
        price=1.0,
        category=("people",),
        params=(_EMAIL,),
        response_fields=_PERSON_OUT,
        hit_rate=0.6,
    ),
    Enrichment(
        id=301,
        name="LinkedIn profile enrichment",
        description="Public profile of a person from their LinkedIn URL: name, headline, location.",
        data_source="Proxycurl",
        price=1.0,
        category=("people", "social"),
        params=(_LINKEDIN,),
        response_fields=(
            OutputField("full_name", "Full name"),
            OutputField("headline", "Headline"),
            OutputField("location", "Location"),
            OutputField("connections", "Connections", "number"),
        ),
        hit_rate=0.75,
    ),
    Enrichment(
        id=410,
        name="X (Twitter) profile lookup",
        description="Followers and bio of an X (Twitter) account by handle.",
        data_source="X API",
        price=0.5,
        category=("social",),
        params=(Param("handle", description="X handle without @"),),
        response_fields=(
            OutputField("followers", "Followers", "number"),
            OutputField("bio", "Bio"),
        ),
        auth_method="api_key",
        hit_rate=0.8,
    ),
    Enrichment(
        id=500,
        name="People search by job title",
        description="Find a person with a job title, optionally by seniority and country.",
        data_source="Apollo",
        price=3.0,
        category=("people",),
        params=(
            Param("job_title", description="Job title, e.g. Head of Sales"),
            Param("seniority", False, "select", "Seniority level", SENIORITIES),
            Param("country", False, "select", "Country", COUNTRIES, remote_choices=True),
        ),
        response_fields=_PERSON_OUT,
        hit_rate=0.5,
    ),
    Enrichment(
        id=510,
        name="Employees of a company",
        description="Employees of a company by domain: name, title and LinkedIn URL, up to max_results people.",
        data_source="Apollo",
        price=0.2,
        category=("people", "company"),
        params=(
            _DOMAIN,
            Param("max_results", False, "number", "How many people to return (billed per person; default 10)"),
        ),
        response_fields=_PERSON_OUT,
        hit_rate=0.8,
        price_parameter="max_results",
        price_parameter_default=10,
        per_page=25,
    ),
    Enrichment(
        id=511,
        name="Job postings of a company",
        description="Open job postings of a company by domain: title, location and posting URL, up to max_results.",
        data_source="Coresignal",
        price=0.2,
        category=("company",),
        # Priced per result with no default stated anywhere: a run that leaves max_results out cannot be priced.
        params=(_DOMAIN, Param("max_results", False, "number", "How many postings to return (billed per posting)")),
        response_fields=(
            OutputField("title", "Job title"),
            OutputField("location", "Location"),
            OutputField("posting_url", "Posting URL", "url"),
        ),
        hit_rate=0.7,
        price_parameter="max_results",
        per_page=25,
    ),
)

ENRICHMENTS: dict[int, Enrichment] = {e.id: e for e in _ALL}

_WATERFALLS: tuple[Waterfall, ...] = (
    Waterfall(
        identifier="email_getter",
        name="Email getter",
        description="Find a work email from first name, last name and company, trying providers in order.",
        input_params=(_FIRST, _LAST, _COMPANY),
        output_fields=(OutputField("email", "Email", "email"),),
        providers=(Provider(833, True), Provider(966, True), Provider(1001, False)),
        email_verifiers=(10,),
    ),
    Waterfall(
        identifier="phone_getter",
        name="Phone getter",
        description="Find a mobile phone number from a LinkedIn profile URL, trying providers in order.",
        input_params=(_LINKEDIN,),
        output_fields=(OutputField("phone", "Phone", "phone"),),
        providers=(Provider(1201, True), Provider(1202, False)),
    ),
)

WATERFALLS: dict[str, Waterfall] = {w.identifier: w for w in _WATERFALLS}


def choice_items(param: Param) -> list[dict[str, Json]]:
    return [{"id": _choice_id(c), "name": c} for c in param.choices]
