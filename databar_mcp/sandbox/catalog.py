"""The fixed enrichment and waterfall catalog: ids, prices, params and hidden hit rates.

Defined once here so the routes, the fake providers and the tests agree on every number.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from databar_mcp.sandbox.errors import Json


@dataclass(frozen=True)
class Param:
    name: str
    is_required: bool = True
    type_field: str = "text"
    description: str = ""
    choices: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Json]:
        out: dict[str, Json] = {
            "name": self.name,
            "is_required": self.is_required,
            "type_field": self.type_field,
            "description": self.description,
        }
        if self.choices:
            out["choices"] = [{"id": _choice_id(c), "name": c} for c in self.choices[:10]]
        return out


@dataclass(frozen=True)
class OutputField:
    name: str
    display_name: str
    type_field: str = "text"

    def as_json(self) -> dict[str, Json]:
        return {"name": self.name, "display_name": self.display_name, "type_field": self.type_field}


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

    def summary_json(self) -> dict[str, Json]:
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "data_source": self.data_source,
            "price": self.price,
            "auth_method": self.auth_method,
            "category": list(self.category),
        }

    def detail_json(self) -> dict[str, Json]:
        out = self.summary_json()
        out["params"] = [p.as_json() for p in self.params]
        out["response_fields"] = [f.as_json() for f in self.response_fields]
        return out

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

    def as_json(self) -> dict[str, Json]:
        available: list[Json] = []
        for p in self.providers:
            e = ENRICHMENTS[p.enrichment_id]
            available.append(
                {
                    "id": e.id,
                    "name": e.name,
                    "description": e.description,
                    "price": e.price,
                    "params": [x.as_json() for x in e.params],
                    "enabled_by_default": p.enabled_by_default,
                }
            )
        verifiers: list[Json] = [
            {"id": v, "name": ENRICHMENTS[v].name, "price": ENRICHMENTS[v].price} for v in self.email_verifiers
        ]
        return {
            "identifier": self.identifier,
            "name": self.name,
            "description": self.description,
            "input_params": [p.as_json() for p in self.input_params],
            "output_fields": [f.as_json() for f in self.output_fields],
            "available_enrichments": available,
            "is_email_verifying": bool(self.email_verifiers),
            "email_verifiers": verifiers,
        }


def _choice_id(name: str) -> str:
    return name.lower().replace(" ", "_")


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
            Param("country", False, "select", "Country", COUNTRIES),
        ),
        response_fields=_PERSON_OUT,
        hit_rate=0.5,
    ),
)

ENRICHMENTS: dict[int, Enrichment] = {e.id: e for e in _ALL}

_WATERFALLS: tuple[Waterfall, ...] = (
    Waterfall(
        identifier="email_getter",
        name="Email getter",
        description="Find a work email from first name, last name and company, trying providers in order.",
        input_params=(_FIRST, _LAST, _COMPANY),
        output_fields=(
            OutputField("email", "Email", "email"),
            OutputField("provider", "Provider"),
            OutputField("verified", "Verified", "boolean"),
        ),
        providers=(Provider(833, True), Provider(966, True), Provider(1001, False)),
        email_verifiers=(10,),
    ),
    Waterfall(
        identifier="phone_getter",
        name="Phone getter",
        description="Find a mobile phone number from a LinkedIn profile URL, trying providers in order.",
        input_params=(_LINKEDIN,),
        output_fields=(OutputField("phone", "Phone", "phone"), OutputField("provider", "Provider")),
        providers=(Provider(1201, True), Provider(1202, False)),
    ),
)

WATERFALLS: dict[str, Waterfall] = {w.identifier: w for w in _WATERFALLS}


def choice_items(param: Param) -> list[dict[str, Json]]:
    return [{"id": _choice_id(c), "name": c} for c in param.choices]
