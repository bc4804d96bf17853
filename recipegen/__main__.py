"""``python -m recipegen``."""

from recipegen.cli import main

raise SystemExit(main())
