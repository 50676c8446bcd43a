"""Which model servers a test left running."""

import psutil


def serving_processes() -> list[psutil.Process]:
    """Model servers started by this test process that are still alive."""
    alive = []
    for child in psutil.Process().children(recursive=True):
        try:
            if "autotune.serving" in " ".join(child.cmdline()) and child.is_running():
                alive.append(child)
        except psutil.NoSuchProcess:
            continue
    return alive
