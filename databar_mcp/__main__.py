from databar_mcp.cli import main

raise SystemExit(main())
