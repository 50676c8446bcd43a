"""`python -m autotune.launch._watchdog LAUNCHER_ID`: remove a dead tuner's containers.

The Docker launcher starts one, in its own session, with a pipe on its stdin whose only
writer is the tuner. The kernel closes that pipe when the tuner ends, however it ends
(SIGKILL included), or when the launcher is closed, so the watchdog wakes at once, with
no polling, removes every container labelled with its launcher's id, and exits. A
launcher closed normally has removed its containers already: the watchdog finds none,
and never touches another launcher's, even in the same process.
"""

from __future__ import annotations

import sys

from autotune.launch.docker import LAUNCHER_LABEL, OWNER, OWNER_LABEL, connect, remove_labelled


def main(argv: list[str]) -> int:
    (launcher_id,) = argv
    sys.stdin.buffer.read()  # returns at EOF: the tuner has ended, or closed the launcher
    remove_labelled(connect(), {OWNER_LABEL: OWNER, LAUNCHER_LABEL: launcher_id})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
