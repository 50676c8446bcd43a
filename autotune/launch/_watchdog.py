"""`python -m autotune.launch._watchdog TUNER_PID`: remove a dead tuner's containers.

The Docker launcher starts one per tuner, in its own session, with a pipe on its stdin
whose only writer is the tuner. The kernel closes that pipe when the tuner ends, however
it ends (SIGKILL included), so the watchdog wakes at once, with no polling, and removes
every container labelled with the tuner's pid, then exits. A tuner that ends normally
has removed its containers already; the watchdog then finds none and exits too.
"""

from __future__ import annotations

import sys

from autotune.launch.docker import OWNER, OWNER_LABEL, PID_LABEL, connect, remove_labelled


def main(argv: list[str]) -> int:
    (tuner_pid,) = argv
    sys.stdin.buffer.read()  # returns at EOF: the tuner has ended
    remove_labelled(connect(), {OWNER_LABEL: OWNER, PID_LABEL: tuner_pid})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
