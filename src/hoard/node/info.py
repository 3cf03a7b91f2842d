"""Version and source revision."""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path


@functools.cache
def version() -> str:
    from importlib import metadata  # loaded on first use: it is slow to import

    try:
        return "v" + metadata.version("hoard")
    except metadata.PackageNotFoundError:
        return "untagged build"


@functools.cache
def revision() -> str:
    """The short git hash of the checkout hoard runs from, or "unknown" outside one."""
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).parent,
                             capture_output=True, text=True, timeout=5, check=True)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"
