"""One confirmation, one run: a sealed request state is spent the first time a call brings it back.

In the 2026-07-28 protocol a question (the spend guard's, an export's) travels as an `input_required` result
whose `requestState` the SDK seals; the client calls again with the answer and that state. The seal proves the
state is ours, unaltered and under 10 minutes old, but not that it is used once: replaying the confirmed
round of a `force` run billed a run per replay. Each state's digest is recorded here in the ledger, in one
transaction keyed by the digest, so a second use is refused on every replica that shares the ledger. Digests are
kept until the state could no longer be accepted anyway, then deleted.
"""

from __future__ import annotations

import hashlib
import time

from databar_mcp.core.ledger.backend import LedgerConn
from databar_mcp.core.ledger.store import Ledger


def digest_of(sealed: str) -> str:
    """What is recorded of a sealed state: its hash (the state itself never reaches the ledger)."""
    return hashlib.sha256(sealed.encode("utf-8", "surrogatepass")).hexdigest()


async def spend_round(ledger: Ledger, digest: str, *, keep_s: float) -> bool:
    """True the first time `digest` is spent; False when it was spent before (a replay). Atomic across replicas:
    the row's primary key decides, under the digest's lock."""
    now = time.time()

    async def work(conn: LedgerConn) -> bool:
        await conn.begin(f"round:{digest}")
        try:
            await conn.execute("DELETE FROM spent_rounds WHERE expires_at < ?", (now,))
            row = await conn.one(
                """INSERT INTO spent_rounds (digest, expires_at) VALUES (?, ?)
                   ON CONFLICT (digest) DO NOTHING RETURNING digest""",
                (digest, now + keep_s),
            )
            await conn.commit()
        except BaseException:
            await conn.rollback()
            raise
        return row is not None

    return await ledger.call(work)
