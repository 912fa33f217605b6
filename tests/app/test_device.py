"""The ``device`` key: auto, cpu, cuda, and clear errors; bf16 only where the CPU computes it natively."""


import pytest
import torch

from nst.app.device import resolve_device
from nst.errors import NSTError


def test_resolve_device() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(NSTError, match="unknown device 'gpu0'"):
        resolve_device("gpu0")
    with pytest.raises(NSTError, match="unsupported device 'meta'"):
        resolve_device("meta")
    if not torch.cuda.is_available():
        with pytest.raises(NSTError, match="no CUDA GPU"):
            resolve_device("cuda")


