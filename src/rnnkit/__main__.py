"""``python -m rnnkit``: the ``rnnkit`` command, e.g. ``torchrun --nproc_per_node=2 -m rnnkit forecast``."""
import sys

from rnnkit_launcher import main

sys.exit(main())
