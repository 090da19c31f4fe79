"""Test-session settings shared by every test file."""

import atexit
import os
import shutil
import tempfile

import torch

# Studies and extractions cache their features; the tests' go to a folder of their own, removed at the end, not
# to the user's ~/.cache/cortexscale (a cache the user set stays theirs).
if "CORTEXSCALE_CACHE" not in os.environ:
    os.environ["CORTEXSCALE_CACHE"] = tempfile.mkdtemp(prefix="cortexscale-tests-")
    atexit.register(shutil.rmtree, os.environ["CORTEXSCALE_CACHE"], ignore_errors=True)

# pytest-xdist runs one process per core; each torch process defaulting to one thread per core would
# oversubscribe the machine, and OpenMP threads spinning on a busy core slow large products many-fold.
workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if workers > 1:
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))

import pytest  # noqa: E402

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
"""Devices the device-parametrised tests run on: the CPU always, CUDA where present."""


@pytest.fixture(params=DEVICES)
def device(request):
    """Each device of :data:`DEVICES` in turn."""
    return request.param
