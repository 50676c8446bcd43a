"""`python -m autotune.serving [flags]`: run the embedded model server in the foreground."""

import sys

from autotune.serving.server import main

sys.exit(main(sys.argv[1:]))
