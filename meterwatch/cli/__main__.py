"""``python -m meterwatch.cli``: the same as the ``meterwatch`` console script."""

import sys

from meterwatch.cli import main

if __name__ == "__main__":
    sys.exit(main())
