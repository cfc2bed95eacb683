"""Time each replica's /readyz from a process of its own, as haproxy's health check sees it (bench/replicas.py).

Sampled inside the bench's own process, the figure also held that process's event loop, busy with fifty agents'
clients and the sandbox: hundreds of milliseconds that were the bench's, not the replica's. Each request opens a
new connection, as haproxy's check does.

    python -m bench.readyz_probe --ports 8001,8002 --seconds 60 --out /tmp/readyz.json
"""

from __future__ import annotations

import argparse
import http.client
import json
import time
from pathlib import Path


def sample(ports: list[int], seconds: float, every_s: float = 0.25) -> dict[str, object]:
    took_ms: list[float] = []
    not_ready = 0
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        for port in ports:
            started = time.monotonic()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            try:
                conn.request("GET", "/readyz")
                status = conn.getresponse().status
            except OSError:
                continue  # a replica killed on purpose, or restarting
            finally:
                conn.close()
            took_ms.append((time.monotonic() - started) * 1000)
            not_ready += status != 200
        time.sleep(every_s)
    return {"ms": took_ms, "not_ready": not_ready}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ports", required=True, help="comma-separated replica ports on 127.0.0.1")
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    figures = sample([int(p) for p in args.ports.split(",")], args.seconds)
    args.out.write_text(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
