"""Datasets, stimuli and timing."""

from .alice import ALICE_ROIS, AliceData, load_alice
from .images import ImageFolder
from .paths import DATA_ENV_VAR, data_root
from .textgrid import read_textgrid, textgrid_tiers
from .timing import event_rate, scan_edges
