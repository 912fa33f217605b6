"""The ``device`` key: auto, cpu, cuda, and clear errors."""

import pytest
import torch

from nst.app.device import check_precision, cpu_has_native_bf16, resolve_device
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


def test_bf16_on_a_cpu_without_native_bf16_is_refused_in_one_line(monkeypatch) -> None:
    """Such a CPU emulates bf16 ~100x slower than fp32: refuse, never run it silently. The support check is
    mocked both ways, so no bf16 work runs here."""
    import nst.app.device as device_module

    cpu = torch.device("cpu")
    monkeypatch.setattr(device_module, "cpu_has_native_bf16", lambda: False)
    for precision in ("bf16", "bf16-mixed", "bf16-true"):
        with pytest.raises(NSTError, match=rf"^precision={precision} on a CPU without native bf16 .*precision=fp32"):
            check_precision(cpu, precision)
    check_precision(cpu, "fp32")  # fp32 and other precisions are always fine
    check_precision(cpu, "32-true")
    monkeypatch.setattr(device_module, "cpu_has_native_bf16", lambda: True)
    check_precision(cpu, "bf16")


def test_native_bf16_probe_matches_onednn(monkeypatch) -> None:
    assert cpu_has_native_bf16() == bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True, raising=False)
    assert cpu_has_native_bf16() is True
