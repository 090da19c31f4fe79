"""Datasets, stimuli and timing."""

from .alice import ALICE_ROIS, AliceData, alice_dataset, load_alice
from .audio import audio_info, audio_steps, read_audio
from .bids import bids_dataset
from .datasets import DATASETS, Dataset, Run, Stimulus, load_dataset, register_dataset
from .events import (
    SILENCE_LABELS,
    check_events,
    events_from_textgrid,
    frame_events,
    read_events_tsv,
    shift_events,
)
from .generic import generic_dataset
from .huth import huth_dataset
from .images import ImageFolder
from .paths import DATA_ENV_VAR, data_root
from .procedural import ProceduralGame, write_video
from .simulated import SimulatedDataset, SimulationSettings, simulated_dataset
from .subsets import NestedSubsets, held_out_blocks, nested_subsets, trainable_frames
from .textgrid import read_textgrid, textgrid_tiers
from .timing import event_rate, scan_edges
from .video import ClipDataset, FrameStore
