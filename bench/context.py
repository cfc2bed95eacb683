"""What a scenario is given: the sizes to run, whether Databar's server is usable, and a scratch folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench.profile import Profile
from bench.reference.databar import Availability


@dataclass(frozen=True)
class Context:
    profile: Profile
    databar: Availability
    workdir: Path  # scratch space (ledgers, exports) removed after the run

    def scratch(self, name: str) -> Path:
        path = self.workdir / name
        path.mkdir(parents=True, exist_ok=True)
        return path
