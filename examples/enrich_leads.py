#!/usr/bin/env python3
"""Find work emails for a CSV of leads: the demo, as a script.

The demo ships inside the package (`databar-mcp demo` runs it; its source is databar_mcp/app/demo.py, written to
be copied and adapted). This script runs the same code with the same flags:

    python examples/enrich_leads.py --input my.csv --output out.csv --wait-seconds 20 --quiet
    DATABAR_API_KEY=... python examples/enrich_leads.py --real        # spends credits, asks first
"""

import sys

from databar_mcp.app.demo import run_demo

if __name__ == "__main__":
    sys.exit(run_demo())
