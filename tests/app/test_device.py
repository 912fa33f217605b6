"""The ``device`` key: auto, cpu, cuda, and clear errors; bf16 only where the CPU computes it natively."""

import warnings

import pytest
import torch

import nst.app.device
from nst.app.device import check_trainer_precision, cpu_has_native_bf16, resolve_device
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


def test_cpu_bf16_support_is_what_onednn_reports() -> None:
    assert cpu_has_native_bf16() == torch.ops.mkldnn._is_mkldnn_bf16_supported()


@pytest.mark.parametrize("accelerator", ["cpu", "auto"])
def test_bf16_on_a_cpu_without_native_bf16_falls_back_to_fp32_with_a_warning(monkeypatch, accelerator) -> None:
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    monkeypatch.setattr(nst.app.device, "cpu_has_native_bf16", lambda: False)
    for precision in ("bf16-mixed", "bf16-true", "bf16"):
        with pytest.warns(UserWarning, match=f"trainer.precision={precision} .*~200x slower.*32-true instead"):
            assert check_trainer_precision(accelerator, precision) == "32-true"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_trainer_precision(accelerator, "32-true") == "32-true"
        assert check_trainer_precision(accelerator, 32) == "32"
        assert check_trainer_precision("gpu", "bf16-mixed") == "bf16-mixed"  # a GPU: nothing to check
        monkeypatch.setattr(nst.app.device, "cpu_has_native_bf16", lambda: True)
        assert check_trainer_precision(accelerator, "bf16-mixed") == "bf16-mixed"  # AVX512-BF16 / AMX
