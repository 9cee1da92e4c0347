"""``python -m csc`` runs the ``csc`` command."""

import sys

from .cli import main

sys.exit(main())
