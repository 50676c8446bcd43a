"""The result of a study: the best feasible settings, how sure we are, and how to run them.

One module per job: `data` builds the report dict from the study storage (the JSON
contract), `markdown`, `terminal` and `html` render it, `publish` writes the files and
the dashboard note, `server_files` names the files server mode adds, `commands` is
`autotune report` and `dashboard` is `autotune dashboard`. The `docker run` line comes
from the Docker launcher (autotune.launch.docker), which knows the mounts, environment
and CPU pinning. A new renderer is a module here that reads the report dict (see
docs/DESIGN.md).
"""

from autotune.report.commands import print_stored_report
from autotune.report.data import build_report
from autotune.report.publish import publish_report, write_report_files

__all__ = ["build_report", "print_stored_report", "publish_report", "write_report_files"]
