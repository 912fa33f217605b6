"""Frame conversions between uint8 arrays and float tensors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from nst.io.image import pil_to_tensor
from nst.io.media import array_to_tensor, frames_to_arrays


def test_array_to_tensor_matches_pil_to_tensor() -> None:
    array = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    tensor = array_to_tensor(array)
    assert tensor.shape == (1, 3, 5, 7) and tensor.dtype == torch.float32 and tensor.is_contiguous()
    assert torch.equal(tensor, pil_to_tensor(Image.fromarray(array)))
    on_meta = array_to_tensor(array, "meta")  # another device: moved as uint8, converted there
    assert on_meta.device.type == "meta" and on_meta.shape == (1, 3, 5, 7) and on_meta.dtype == torch.float32


def test_frames_to_arrays_accepts_every_layout_and_rounds() -> None:
    image = torch.tensor([0.0, 0.5, 1.2, -0.1]).view(1, 1, 2, 2).expand(2, 3, 2, 2)
    arrays = frames_to_arrays(image, 2, 2)
    assert len(arrays) == 2 and arrays[0].dtype == np.uint8 and arrays[0].flags.c_contiguous
    assert arrays[0][..., 0].tolist() == [[0, 128], [255, 0]]  # clamped, rounded
    assert len(frames_to_arrays(image[0], 2, 2)) == 1
    assert len(frames_to_arrays(np.zeros((3, 2, 2, 3), np.uint8), 2, 2)) == 3
    assert frames_to_arrays(torch.full((1, 3, 2, 2), 7, dtype=torch.uint8))[0].max() == 7
    with pytest.raises(ValueError, match="uint8"):
        frames_to_arrays(np.zeros((2, 2, 3), np.float32))
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        frames_to_arrays(torch.zeros(1, 4, 2, 2))
