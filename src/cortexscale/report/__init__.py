"""The report: a static HTML page of a study's scaling curves, fits with bands, frontier, effects and data."""

from .build import depth_rows, model_points, write_report
from .html import Figure, Page, Section, Table

__all__ = ["Figure", "Page", "Section", "Table", "depth_rows", "model_points", "write_report"]
