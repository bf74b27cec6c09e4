"""``python -m waitress_like``: the same as the ``waitress-like-serve`` command."""

import sys

from .cli import main

sys.exit(main())
