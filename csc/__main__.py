"""``python -m csc`` runs the ``csc`` command."""

import sys

from csc.cli.main import main

sys.exit(main())
