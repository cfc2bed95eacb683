"""A file cut into parts, each sent as one bulk run, each with a fingerprint that outlives the process.

Parts are fixed ranges of data-row positions (never of valid rows, which would shift when a row is fixed),
so the same file, mapping and target always cut the same way. A part's fingerprint hashes the file's
content, its range, the mapping and what it runs against: a job resumed after a crash, a timeout or in a new
conversation finds each part it already handed to Databar by fingerprint and never sends it again.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from databar_mcp import config
from databar_mcp.core.files.checks import params_of, row_problems
from databar_mcp.core.files.columns import ColumnMapping, InputSpec
from databar_mcp.core.files.problems import FileProblem
from databar_mcp.core.files.source import InputFile, InputRow, iter_rows
from databar_mcp.core.fingerprint import canonical_json


@dataclass(frozen=True)
class Part:
    number: int  # 0-based
    start: int  # the data-row position of its first row
    stop: int  # one past its last
    fingerprint: str

    @property
    def rows(self) -> int:
        return self.stop - self.start


def part_fingerprint(*, file_sha256: str, start: int, stop: int, mapping: Mapping[str, str], target: object) -> str:
    """sha256 over the content, the range, the mapping (input -> column) and the target (e.g. the endpoint,
    the providers, whether bad rows are skipped): anything that changes what the part sends changes it."""
    material = canonical_json({"file": file_sha256, "range": [start, stop], "mapping": dict(mapping), "target": target})
    return hashlib.sha256(material.encode()).hexdigest()


def split_parts(
    total_rows: int,
    *,
    file_sha256: str,
    mapping: Mapping[str, str],
    target: object,
    part_rows: int = config.FILE_PART_ROWS,
) -> Iterator[Part]:
    """Parts of at most `part_rows` rows covering positions 0..total_rows, in order."""
    if part_rows < 1:
        raise ValueError("part_rows must be at least 1")
    for number, start in enumerate(range(0, total_rows, part_rows)):
        stop = min(start + part_rows, total_rows)
        fp = part_fingerprint(file_sha256=file_sha256, start=start, stop=stop, mapping=mapping, target=target)
        yield Part(number, start, stop, fp)


def rows_of(source: InputFile, part: Part) -> Iterator[InputRow]:
    """The part's rows, read from the file (the rows before it are read and dropped, one at a time)."""
    return itertools.islice(iter_rows(source), part.start, part.stop)


@dataclass(frozen=True)
class PartParams:
    params: list[dict[str, str]]  # what the bulk run sends, in order (Databar's results come back aligned)
    positions: list[int]  # the data-row position each entry of params came from
    skipped: list[int]  # file row numbers of bad rows left out


def part_params(
    source: InputFile,
    part: Part,
    mapping: ColumnMapping,
    inputs: Sequence[InputSpec],
    *,
    skip_bad: bool,
    max_chars: int = config.FILE_VALUE_MAX_CHARS,
) -> PartParams:
    """The inputs one part sends. A bad row is left out when `skip_bad`; otherwise it is an error (the rows
    were checked before the job started, so the file must have changed)."""
    required = frozenset(i.name for i in inputs if i.required)
    out = PartParams([], [], [])
    for row in rows_of(source, part):
        if problems := row_problems(row, mapping, required, max_chars=max_chars):
            if not skip_bad:
                raise FileProblem(
                    f"{source.name}: row {row.number} cannot be sent ({'; '.join(problems)}).",
                    details={"file": source.name, "row": row.number},
                )
            out.skipped.append(row.number)
            continue
        out.params.append(params_of(row, mapping))
        out.positions.append(row.position)
    return out
