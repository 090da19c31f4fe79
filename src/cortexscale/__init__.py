"""cortexscale: compute-optimal scaling studies of brain-encoding models.

The package is laid out by pipeline stage::

    data -> models / train -> features -> encoding -> study -> scaling -> report

Lower layers never import upper ones.
"""

__version__ = "0.1.0.dev0"
