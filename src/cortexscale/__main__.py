"""``python -m cortexscale``: the command line (see :mod:`cortexscale.cli`)."""

from .cli import entry

entry()
