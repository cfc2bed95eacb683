"""When a running task will finish, from the progress counts seen so far (pure arithmetic, no I/O).

A bulk task's rows finish one after another: row i (from 0) ends at b + i * r, b seconds after the task was
sent and r seconds apart (the sandbox's model, and a fair one of Databar's). A poll that shows f rows
finished says row f-1 had ended by its answer and row f had not when it was sent: two straight-line
constraints on (b, r). All the polls together cut out a small polygon of the (b, r) that fit everything seen,
and the last row's end
E = b + (n-1) r lies between the polygon's lowest and highest E: the window the next poll aims at.

Before any row has finished nothing bounds the window, so the pace of an earlier task of the same kind (same
endpoint and provider mix) is the prior: this task is assumed to be that one stretched in time by a factor s
(a slower provider day slows every row alike), which one progress count pins to within a row.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

# Coordinates beyond this are "unbounded" (a box keeps the polygon finite).
_BIG = 1e7
# The shortest row interval considered (rows never finish faster than this apart).
_R_MIN = 1e-6
_EPS = 1e-9
# A finished task's polygon is summed up from this many of its polls (the first moving one and the latest).
KEPT_SAMPLES = 12


@dataclass(frozen=True)
class Pace:
    """How a task ran: the first row ended `base_s` after it was sent, then one row every `row_s` seconds."""

    base_s: float
    row_s: float
    spread_s: float = math.inf  # how far off its end may be (half the window it was learnt from)

    def end(self, rows: int) -> float:
        """Seconds after sending at which a task of `rows` rows at this pace finishes."""
        return self.base_s + max(0, rows - 1) * self.row_s


@dataclass(frozen=True)
class Sample:
    """A poll answered at `t` (seconds after sending): `finished` rows were done; `done` when the task was
    terminal. The API counted at some instant between the poll's sending (`asked`, when known) and `t`."""

    t: float
    finished: int
    done: bool = False
    asked: float | None = None

    @property
    def counted_after(self) -> float:
        return self.t if self.asked is None else min(self.asked, self.t)


# a*b + c*r <= d
Constraint = tuple[float, float, float]


def constraints(samples: list[Sample], total: int, *, sent: bool) -> list[Constraint]:
    """The half-planes in (b, r) that the samples allow; `sent`: times are measured from the task's sending."""
    out: list[Constraint] = [(0.0, -1.0, -_R_MIN), (0.0, 1.0, _BIG), (1.0, 0.0, _BIG)]
    out.append((-1.0, 0.0, 0.0) if sent else (-1.0, 0.0, _BIG))
    for s in samples:
        finished = total if s.done else min(s.finished, total)
        if finished >= 1:
            out.append((1.0, finished - 1.0, s.t))  # row finished-1 had ended by t
        if finished < total:
            out.append((-1.0, -float(finished), -s.counted_after))  # row `finished` had not, when counted
    return out


def _vertices(cons: list[Constraint]) -> list[tuple[float, float]]:
    points: list[tuple[float, float]] = []
    for (a1, c1, d1), (a2, c2, d2) in itertools.combinations(cons, 2):
        det = a1 * c2 - a2 * c1
        if abs(det) < _EPS:
            continue
        b = (d1 * c2 - d2 * c1) / det
        r = (a1 * d2 - a2 * d1) / det
        if all(a * b + c * r <= d + _EPS * max(1.0, abs(d)) for a, c, d in cons):
            points.append((b, r))
    return points


def informative(samples: list[Sample]) -> list[Sample]:
    """The samples that bound the polygon most: the latest with nothing finished, the first with rows
    finished, and the latest few (a long task's middle polls add little once later ones are known)."""
    zeros = [s for s in samples if s.finished == 0 and not s.done]
    moving = [s for s in samples if s.finished > 0 or s.done]
    kept = zeros[-1:] + moving[:2] + moving[2:][-(KEPT_SAMPLES - 3) :]
    return sorted(set(kept), key=lambda s: s.t)


def feasible(samples: list[Sample], total: int, *, sent: bool) -> list[tuple[float, float]]:
    """The polygon's corners (b, r); empty when no straight-line pace fits every sample."""
    return _vertices(constraints(informative(samples), total, sent=sent))


@dataclass(frozen=True)
class Window:
    """The earliest and latest time the last row can end (hi may be inf), and the likeliest row interval."""

    lo: float
    hi: float
    row_s: float


def window(samples: list[Sample], total: int, *, sent: bool) -> Window | None:
    """Where the end lies, from the samples alone; None when they fit no pace.

    Real tasks are not perfectly steady: when all samples fit no straight line, only the latest three are used."""
    for used in (samples, samples[-3:]):
        corners = feasible(used, total, sent=sent)
        if corners:
            ends = [b + (total - 1) * r for b, r in corners]
            hi = max(ends)
            row = sum(r for _, r in corners) / len(corners)
            return Window(min(ends), math.inf if hi >= _BIG / 2 else hi, row)
    return None


def stretched(samples: list[Sample], total: int, prior: Pace) -> Window | None:
    """The window for the end if this task runs at the prior's pace stretched by one factor; None if no
    stretch fits the samples (the prior does not describe this task)."""
    s_lo, s_hi = 0.0, math.inf
    for a, c, d in constraints(informative(samples), total, sent=True):
        k = a * prior.base_s + c * prior.row_s
        if abs(k) < _EPS:
            if d < -_EPS:
                return None
        elif k > 0:
            s_hi = min(s_hi, d / k)
        else:
            s_lo = max(s_lo, d / k)
    if s_lo > s_hi or math.isinf(s_hi):
        return None
    end = prior.end(total)
    return Window(s_lo * end, s_hi * end, (s_lo + s_hi) / 2 * prior.row_s)


def learned(samples: list[Sample], total: int) -> Pace | None:
    """The pace a finished task ran at (the centre of the paces its polls allow), for the next of its kind."""
    corners = feasible(samples, total, sent=True)
    if not corners:
        return None
    b = sum(c[0] for c in corners) / len(corners)
    r = sum(c[1] for c in corners) / len(corners)
    if b >= _BIG / 2 or r >= _BIG / 2:
        return None
    ends = [cb + (total - 1) * cr for cb, cr in corners]
    end = b + (total - 1) * r
    return Pace(base_s=b, row_s=r, spread_s=max(max(ends) - end, end - min(ends)))
