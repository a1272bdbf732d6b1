"""`python -m bridge` is the same as the `evbridge` command."""

from bridge.cli import main

raise SystemExit(main())
