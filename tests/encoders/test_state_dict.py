"""The one reader of weights files: a missing, empty, text or binary file is one line that says which, in words."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from nst.encoders.state_dict import read_state_dict, read_torch_file, save_torch_file
from nst.errors import NSTError
from nst.fastnet.weights import load_weights


@pytest.mark.parametrize(("content", "why"), [
    (b"", "the file is empty"),
    (b"hello, I am a note\n", "a text file, not PyTorch weights"),
    (b"\x00\xff\xfe binary junk \x80", "not a PyTorch file of plain tensors"),
])
def test_a_file_that_is_not_weights_says_what_it_is(tmp_path: Path, content: bytes, why: str) -> None:
    path = tmp_path / "style.pt"
    path.write_bytes(content)
    with pytest.raises(NSTError) as info:
        read_torch_file(path, "weights", "pass train.py's .pt")
    assert str(info.value) == f"weights: cannot read {path}: {why}; pass train.py's .pt"
    with pytest.raises(NSTError) as info:  # what infer.py prints: no exception name such as (IndexError)
        load_weights(path)
    assert why in str(info.value) and "Error" not in str(info.value) and str(info.value).count(str(path)) == 1


def test_round_trip_and_a_state_dict_of_tensors(tmp_path: Path) -> None:
    path = save_torch_file({"state_dict": {"w": torch.ones(2)}}, tmp_path / "sub" / "w.pt")
    assert torch.equal(read_state_dict(path, "vgg.weights", "hint")["w"], torch.ones(2))
    assert not list((tmp_path / "sub").glob(".*"))  # no temporary file left
    torch.save({"w": "text"}, path)
    with pytest.raises(NSTError, match="does not hold a state dict of tensors"):
        read_state_dict(path, "vgg.weights", "hint")
    with pytest.raises(NSTError, match="vgg.weights: no such file"):
        read_state_dict(tmp_path / "missing.pth", "vgg.weights", "hint")
