"""``python -m iterselect``: the ``iterselect`` command."""
import sys

from .cli import main

sys.exit(main())
