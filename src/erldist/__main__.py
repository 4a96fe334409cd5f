"""``python -m erldist``: the same command as the ``erldist`` script."""

from erldist.cli import main

raise SystemExit(main())
