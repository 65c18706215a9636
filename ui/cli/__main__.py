"""`python -m ui.cli`: the same as the `citewise` command."""

import sys

from ui.cli.main import main

sys.exit(main())
