"""The result of a study: the best feasible settings, how sure we are, and how to run them.

One module per job: `data` builds the report dict from the study storage (the JSON
contract), `markdown`, `terminal` and `html` render it, `publish` writes the files and
the dashboard note, `env_file` writes the `.env` of the best settings and reads one
back, `warm_start` says what other host classes gave the study, `server_files` names
the files server mode adds, `commands` is `autotune report` (and finds a stored study)
and `dashboard` is `autotune dashboard`. The `docker run` line comes
from the Docker launcher (autotune.launch.docker), which knows the mounts, environment
and CPU pinning. A new renderer is a module here that reads the report dict (see
docs/DESIGN.md).
"""

from autotune.report.commands import print_stored_report, stored_study
from autotune.report.data import build_report
from autotune.report.env_file import env_file_text, read_env_file
from autotune.report.publish import publish_report, write_report_files

__all__ = ["build_report", "env_file_text", "print_stored_report", "publish_report",
           "read_env_file", "stored_study", "write_report_files"]
