"""`python -m autotune.serving [flags]`: run the embedded model server in the foreground.

Once the server has stopped gracefully there is nothing left to save, so the process
ends with `os._exit` instead of the interpreter's teardown: unwinding TensorFlow's
runtime took about 0.6 s, paid by every trial of a study that restarts the server.
"""

import os
import sys

from autotune.serving.server import main

exit_code = main(sys.argv[1:])
sys.stdout.flush()
sys.stderr.flush()
os._exit(exit_code)
