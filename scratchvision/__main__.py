"""``python -m scratchvision``: see ``scratchvision.cli``."""
import sys

from scratchvision.cli import main

sys.exit(main())
