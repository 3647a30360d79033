"""``python -m argalign.cli``."""

from argalign.cli import main

raise SystemExit(main())
