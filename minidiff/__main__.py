"""``python -m minidiff``: the same as the ``minidiff`` command."""

import sys

from minidiff.cli import main

if __name__ == "__main__":
    sys.exit(main())
