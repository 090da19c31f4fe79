"""Where the shared data live: one setting, the ``CORTEXSCALE_DATA`` environment variable."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["DATA_ENV_VAR", "data_root"]

DATA_ENV_VAR = "CORTEXSCALE_DATA"
DEFAULT_DATA_DIR = Path("..") / "shared" / "data"


def _project_root() -> Path:
    """The checkout holding ``src/cortexscale/data/paths.py``."""
    return Path(__file__).resolve().parents[3]


def _candidates() -> list[Path]:
    configured = os.environ.get(DATA_ENV_VAR)
    if configured:
        return [Path(configured).expanduser().resolve()]
    return [(Path.cwd() / DEFAULT_DATA_DIR).resolve(), (_project_root() / DEFAULT_DATA_DIR).resolve()]


def data_root() -> Path:
    """Directory that holds the shared datasets (e.g. ``<root>/alice``).

    ``$CORTEXSCALE_DATA`` when it is set; otherwise ``../shared/data`` relative
    to the current directory, then relative to the project checkout.

    Raises
    ------
    FileNotFoundError
        If no candidate directory exists; the message names the variable and
        every path tried.
    """
    tried = _candidates()
    for path in tried:
        if path.is_dir():
            return path
    source = f"${DATA_ENV_VAR}" if os.environ.get(DATA_ENV_VAR) else f"the default (${DATA_ENV_VAR} is not set)"
    raise FileNotFoundError(
        f"no data directory found from {source}; tried: {', '.join(str(p) for p in tried)}. "
        f"Set {DATA_ENV_VAR} to the directory that holds the shared datasets (e.g. .../shared/data)."
    )
