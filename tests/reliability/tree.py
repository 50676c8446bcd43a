"""A folder's content, byte for byte, to prove that nothing in it changed."""

from __future__ import annotations

import hashlib
from pathlib import Path


def snapshot(folder: Path) -> dict[str, str]:
    """Every file and folder under `folder` (relative path -> SHA-256, or "dir")."""
    return {str(path.relative_to(folder)): "dir" if path.is_dir()
            else hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(folder.rglob("*"))}
