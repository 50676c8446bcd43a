"""Where a study's report files go: one file name per study name, always inside the folder.

A study name is whatever Optuna stores (`../../evil`, `/tmp/x`, 300 characters, `v1.0`);
a file name is not. Every report file of a study is `<report-dir>/<stem><suffix>`, and
the stem follows one rule (`file_stem`):

- a name of at most 100 letters, digits, `.`, `_` and `-`, starting with a letter or a
  digit, is its own stem (`online-1a2b3c4d5e`, `v1.0-final`), unless it ends the way a
  changed name does;
- any other name is changed: each run of other characters becomes `_`, the result is
  cut to 60 characters, and `-` plus the first 16 hex digits of the SHA-256 of the whole
  name is appended (`.._.._evil` becomes `evil-<digest>`).

A kept name never ends like a changed one, so two names never share a stem (short of a
SHA-256 collision in 64 bits), and no stem holds a `/` or starts with a dot: the files
stay in the folder, hidden from no one. The suffix is appended to the stem, never put in
place of the part after its last dot (studies `v1.0-final` and `v1.1-final` once both
wrote `v1.json`).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

#: the report files of every study (server mode adds autotune.report.server_files')
JSON, MARKDOWN, ENV, HTML = ".json", ".md", ".env", ".html"
#: the longest study name kept as it is, and the readable part of a changed one
MAX_KEPT, MAX_READABLE = 100, 60
DIGEST_HEX = 16
_KEPT = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._-]{{0,{MAX_KEPT - 1}}}")
_CHANGED_TAIL = re.compile(rf"-[0-9a-f]{{{DIGEST_HEX}}}\Z")
_OTHER = re.compile(r"[^A-Za-z0-9._-]+")


def file_stem(study_name: str) -> str:
    """The file name (before its suffix) of the study `study_name`'s report files."""
    if _KEPT.fullmatch(study_name) and not _CHANGED_TAIL.search(study_name):
        return study_name
    readable = _OTHER.sub("_", study_name).strip("._-")[:MAX_READABLE].rstrip("._-")
    digest = hashlib.sha256(study_name.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{readable or 'study'}-{digest[:DIGEST_HEX]}"


def report_file(report_dir: Path, study_name: str, suffix: str) -> Path:
    """`<report_dir>/<stem><suffix>`: the study's file of that suffix."""
    return Path(report_dir) / f"{file_stem(study_name)}{suffix}"
