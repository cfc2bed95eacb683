"""What this server attached to tables: the providers and verifier of each table waterfall.

Databar lists a table's waterfalls as `{id, waterfall_name}` only, so the price of one row of a run is
otherwise known only as the waterfall's worst case (every provider it offers). Remembering the providers
chosen when the waterfall was attached here prices the run as they will bill. One small JSON file in the
state dir, written atomically; a missing or unreadable file means "not remembered", never an error.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, cast

import anyio.to_thread

FILE_NAME = "table_waterfalls.json"
_LOCK = threading.Lock()  # one writer at a time in this process (the file is replaced atomically)


@dataclass(frozen=True)
class AttachedWaterfall:
    waterfall: str
    providers: tuple[int, ...]
    email_verifier: int | None


class Attachments:
    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / FILE_NAME

    @staticmethod
    def _key(table_uuid: str, table_enrichment_id: int) -> str:
        return f"{table_uuid}/{table_enrichment_id}"

    def _read(self) -> dict[str, Any]:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return cast(dict[str, Any], raw) if isinstance(raw, dict) else {}

    async def remember(self, table_uuid: str, table_enrichment_id: int, attached: AttachedWaterfall) -> None:
        def work() -> None:
            with _LOCK:
                data = self._read()
                data[self._key(table_uuid, table_enrichment_id)] = asdict(attached)
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".attached-", suffix=".tmp")
                try:
                    with os.fdopen(fd, "w", encoding="utf-8") as handle:
                        handle.write(json.dumps(data))  # json.dump encodes in pure Python
                    os.replace(tmp, self.path)
                except OSError:
                    Path(tmp).unlink(missing_ok=True)

        await anyio.to_thread.run_sync(work)

    async def recall(self, table_uuid: str, table_enrichment_id: int) -> AttachedWaterfall | None:
        def work() -> AttachedWaterfall | None:
            with _LOCK:
                raw = self._read().get(self._key(table_uuid, table_enrichment_id))
            if not isinstance(raw, dict):
                return None
            entry = cast(dict[str, Any], raw)
            try:
                return AttachedWaterfall(
                    waterfall=str(entry["waterfall"]),
                    providers=tuple(int(p) for p in entry["providers"]),
                    email_verifier=None if entry.get("email_verifier") is None else int(entry["email_verifier"]),
                )
            except (KeyError, TypeError, ValueError):
                return None

        return await anyio.to_thread.run_sync(work)
