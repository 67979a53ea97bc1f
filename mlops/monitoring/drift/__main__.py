"""``python -m mlops.monitoring.drift --model ... --reference ... --capture ... --out ...`` (see the package doc)."""

import sys

from mlops.monitoring.drift.cli import main

sys.exit(main())
