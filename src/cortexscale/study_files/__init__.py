"""Study files shipped with cortexscale: the default study that ``cortexscale demo`` runs."""

from pathlib import Path

DEFAULT_STUDY = Path(__file__).with_name("default.yaml")
"""The default study: the procedural game video, simulated subjects and a small grid of video GPTs."""

__all__ = ["DEFAULT_STUDY"]
