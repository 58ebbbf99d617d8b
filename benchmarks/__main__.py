"""``python -m benchmarks``: run the suite from a source checkout (same as ``python -m benchmarks.run``)."""

import sys

from benchmarks.run import main

sys.exit(int(main() or 0))
