"""The ``device`` key: auto, cpu, cuda, and clear errors; bf16 only where the CPU computes it natively."""

import warnings

import pytest
import torch

from nst.app.device import check_precision, check_trainer_precision, cpu_has_native_bf16, resolve_device
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




@pytest.mark.parametrize("native", [True, False], ids=["native-bf16", "avx2"])
def test_bf16_on_a_cpu_only_where_onednn_has_it(monkeypatch: pytest.MonkeyPatch, native: bool) -> None:
    """Both answers of oneDNN's probe, on any CPU: bf16 is run where native, refused (optimize) or replaced
    by 32-true with a warning (train) where not."""
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: native)
    cpu = torch.device("cpu")
    assert cpu_has_native_bf16() is native
    check_precision(cpu, "fp32")
    assert check_trainer_precision("cpu", 32) == "32"
    if native:
        check_precision(cpu, "bf16")
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert check_trainer_precision("cpu", "bf16-mixed") == "bf16-mixed"
    else:
        with pytest.raises(NSTError, match="precision=bf16 on a CPU without native bf16"):
            check_precision(cpu, "bf16")
        with pytest.warns(UserWarning, match="training in 32-true instead"):
            assert check_trainer_precision("cpu", "bf16-mixed") == "32-true"


@pytest.mark.parametrize("avx512_bf16", [True, False])
def test_without_the_onednn_probe_the_cpu_flags_answer(monkeypatch: pytest.MonkeyPatch, avx512_bf16: bool) -> None:
    def missing() -> bool:
        raise RuntimeError("no such op")

    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", missing)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16, raising=False)
    assert cpu_has_native_bf16() is avx512_bf16
