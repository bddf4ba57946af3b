"""`python -m gpt2_scratch.cli COMMAND ...`, the same as the `gpt2-scratch` console script."""

import sys

from . import main

sys.exit(main())
