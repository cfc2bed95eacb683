"""Which file column feeds which input: the mapping the agent gave, then common header spellings.

People's files say "First Name", "first_name", "FirstName", "E-mail", "Company Domain", "Website" or
"LinkedIn URL"; Databar's inputs say first_name, email, company, linkedin_url. Headers and input names are
compared in a compact form (lower case, letters and digits only), first as the same name, then through the
spellings each kind of input goes by (a `company` input, which takes a name or a domain, also takes a
"Company Domain", "domain" or "Website" column), then with a prefix such as "Contact Email". Each column
feeds one input at most; required inputs choose first, so an optional one never takes the only column a
required one could use. The mapping used is stated in the answer, so a wrong guess is seen and corrected
with `columns`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from databar_mcp.core.files.problems import MissingColumns, quoted

COLUMNS_SHOWN = 50
NOT_ALNUM = re.compile(r"[\W_]+")
# Each kind of input by its spellings, best first. An input belongs to the kind whose first spelling it is,
# else to the kind that lists it earliest.
KINDS: tuple[tuple[str, ...], ...] = (
    ("firstname", "first", "fname", "givenname", "forename"),
    ("lastname", "last", "lname", "surname", "familyname"),
    ("fullname", "name", "contactname", "personname", "contact"),
    ("email", "emailaddress", "mail", "emailaddr", "workemail", "businessemail"),
    (
        "company",
        "companydomain",
        "domain",
        "companywebsite",
        "website",
        "companyurl",
        "websiteurl",
        "url",
        "companyname",
        "organization",
        "organisation",
        "org",
        "accountname",
        "account",
        "employer",
    ),
    ("domain", "companydomain", "website", "companywebsite", "websiteurl", "url", "web", "site", "homepage"),
    ("companyname", "company", "organization", "organisation", "org", "accountname", "account", "employer"),
    ("linkedinurl", "linkedin", "linkedinprofile", "linkedinprofileurl", "linkedinlink", "liurl", "profileurl"),
    ("phone", "phonenumber", "mobile", "mobilephone", "mobilenumber", "telephone", "tel", "cell", "cellphone"),
    ("jobtitle", "title", "position", "role", "job"),
    ("handle", "twitter", "twitterhandle", "xhandle", "username"),
    ("country", "countrycode", "countryname"),
    ("city", "town"),
)
PREFIXES = ("person", "contact", "lead", "prospect", "customer", "user", "primary", "work", "business")
PREFIXED = 100  # "Contact Email" ranks below every unprefixed spelling

How = Literal["given", "same name", "matched"]


@dataclass(frozen=True)
class InputSpec:
    """One input a waterfall, enrichment, flow or table takes."""

    name: str
    required: bool = False


@dataclass(frozen=True)
class ColumnMapping:
    used: Mapping[str, str]  # input name -> file column, in the inputs' order
    how: Mapping[str, How]
    unmapped: tuple[str, ...]  # optional inputs no column feeds (sent without them)
    ignored: tuple[str, ...]  # file columns no input reads (kept in the output file)

    def text(self) -> str:
        """The mapping in one line, for the answer: `email ← 'E-mail' (matched), ...`."""
        parts = [
            f"{i} ← {quoted(c)}" + ("" if self.how[i] == "same name" else f" ({self.how[i]})")
            for i, c in self.used.items()
        ]
        line = "Columns used: " + (", ".join(parts) or "none")
        if self.unmapped:
            line += f"; no column for optional {', '.join(self.unmapped)}"
        return line + "."


def compact(name: str) -> str:
    """'First Name', 'first_name', 'FirstName', 'FIRST-NAME' -> 'firstname'."""
    return NOT_ALNUM.sub("", name).casefold()


def spellings(input_name: str) -> tuple[str, ...]:
    """The compact header spellings that may feed this input, best first (its own name first)."""
    own = compact(input_name)
    kinds = [k for k in KINDS if own in k]
    if not kinds:
        return (own,)
    kind = min(kinds, key=lambda k: k.index(own))
    return (own, *(s for s in kind if s != own))


def rank(input_name: str, column: str) -> int | None:
    """How well `column` fits the input (0 the same name; lower is better), None when it does not."""
    col = compact(column)
    names = spellings(input_name)
    if col in names:
        return names.index(col)
    for prefix in PREFIXES:
        if col.startswith(prefix) and (rest := col[len(prefix) :]) in names:
            return PREFIXED + names.index(rest)
    return None


def _shown(columns: Sequence[str]) -> list[str]:
    return list(columns[:COLUMNS_SHOWN])


def _given_column(input_name: str, wanted: str, columns: Sequence[str], needed: str) -> str:
    if wanted in columns:
        return wanted
    folds: tuple[Callable[[str], str], ...] = (lambda c: c.strip().casefold(), compact)
    for fold in folds:  # "e-mail" is "E-mail"; then "E_Mail" is too
        close = [c for c in columns if fold(c) == fold(wanted)]
        if len(close) == 1:
            return close[0]
    raise MissingColumns(
        f"columns maps {input_name} to {quoted(wanted)}, which the file does not have. Its columns: "
        + ", ".join(quoted(c) for c in _shown(columns))
        + (" …" if len(columns) > COLUMNS_SHOWN else "")
        + f". Needed: {needed}.",
        details={"columns_found": _shown(columns), "column_count": len(columns), "unknown_column": wanted},
    )


def _needed(inputs: Sequence[InputSpec]) -> str:
    return ", ".join(f"{i.name} ({'required' if i.required else 'optional'})" for i in inputs) or "none"


def map_columns(
    columns: Sequence[str], inputs: Sequence[InputSpec], given: Mapping[str, str] | None = None
) -> ColumnMapping:
    """The column for each input: `given` (input name -> column) first, then matched by spelling.

    Raises MissingColumns when `given` names an unknown input or column, or a required input has no column;
    the message lists the file's columns and the inputs needed, so the next call can pass `columns`.
    """
    names = [i.name for i in inputs]
    needed = _needed(inputs)
    used: dict[str, str] = {}
    how: dict[str, How] = {}
    for input_name, wanted in (given or {}).items():
        if input_name not in names:
            raise MissingColumns(
                f"columns names {quoted(input_name)}, which is not an input here. Inputs: {needed}.",
                details={"inputs": names, "unknown_input": input_name},
            )
        used[input_name], how[input_name] = _given_column(input_name, wanted, columns, needed), "given"
    taken = set(used.values())
    candidates = sorted(  # required inputs choose first (the run needs them), each by best fit
        (not spec.required, r, i, j)
        for i, spec in enumerate(inputs)
        if spec.name not in used
        for j, column in enumerate(columns)
        if column not in taken and (r := rank(spec.name, column)) is not None
    )
    for _, r, i, j in candidates:
        name, column = inputs[i].name, columns[j]
        if name not in used and column not in taken:
            used[name], how[name] = column, ("same name" if r == 0 else "matched")
            taken.add(column)
    missing = [i.name for i in inputs if i.required and i.name not in used]
    if missing:
        raise MissingColumns(
            f"No column for required input(s) {', '.join(missing)}. The file's columns: "
            + ", ".join(quoted(c) for c in _shown(columns))
            + (" …" if len(columns) > COLUMNS_SHOWN else "")
            + f'. Needed: {needed}. Pass columns={{"{missing[0]}": "<column name>", ...}} to say which '
            "column holds each.",
            details={
                "missing_inputs": missing,
                "columns_found": _shown(columns),
                "column_count": len(columns),
                "inputs": [{"name": i.name, "required": i.required} for i in inputs],
                "mapped": dict(used),
            },
        )
    ordered = {n: used[n] for n in names if n in used}
    return ColumnMapping(
        used=ordered,
        how={n: how[n] for n in ordered},
        unmapped=tuple(n for n in names if n not in used),
        ignored=tuple(c for c in columns if c not in taken),
    )
