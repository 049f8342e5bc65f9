"""``python -m hybrid`` runs the ``wanmeter`` CLI."""

import sys

from hybrid.cli import main

sys.exit(main())
