"""Training images for the fast style network (Johnson 2016): COCO, Visual Genome or any folder.

Johnson et al. train on ~80k COCO images resized to 256 px; we serve square crops of any size as
(B, 3, S, S) float tensors in [0, 1]. A dataset that big always holds a few broken files, so a
broken image is skipped with a warning instead of killing a run hours in.
"""

from __future__ import annotations

import os
import random
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import lightning as L
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import v2

from nst.errors import NSTError
from nst.io.image import MIN_SIDE, open_rgb

SOURCES = ("coco", "visual_genome", "folder")
#: What ``data=folder`` picks up (matched case-insensitively); COCO and Visual Genome ship jpgs only.
FOLDER_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
COCO_SPLITS = ("train2014", "train2017")
VG_PARTS = ("VG_100K", "VG_100K_2")

# What PIL raises on a file it cannot identify or decode (UnidentifiedImageError is an OSError).
_DECODE_ERRORS = (NSTError, OSError, SyntaxError, ValueError, Image.DecompressionBombError)


def image_files(source: str, root: str | Path) -> list[Path]:
    """The sorted image files of a dataset ``source`` under ``root``; sorted so splits are reproducible.

    ``coco``: a train2014/train2017 folder of jpgs, or a folder containing one (train2014 wins if both).
    ``visual_genome``: a folder containing VG_100K and/or VG_100K_2. ``folder``: any folder, recursive.
    """
    _check_source(source)
    root = Path(root).expanduser()
    if not root.is_dir():
        raise NSTError(_no_data_message(source, root, "folder not found"))
    if source == "coco":
        splits = [root / s for s in COCO_SPLITS if (root / s).is_dir()]
        files = _files_in(splits[0] if splits else root, (".jpg", ".jpeg"), recursive=False)
    elif source == "visual_genome":
        parts = [root / p for p in VG_PARTS if (root / p).is_dir()]
        if not parts:
            raise NSTError(_no_data_message(source, root, f"neither {' nor '.join(VG_PARTS)} is in it"))
        files = [f for part in parts for f in _files_in(part, (".jpg", ".jpeg"), recursive=False)]
    else:
        files = _files_in(root, FOLDER_SUFFIXES, recursive=True)
    if not files:
        raise NSTError(_no_data_message(source, root, "no image files in it"))
    return sorted(files)


def _check_source(source: str) -> None:
    if source not in SOURCES:
        raise NSTError(f"unknown data source {source!r}; pick data=coco, data=visual_genome or data=folder")


def _files_in(folder: Path, suffixes: Sequence[str], recursive: bool) -> list[Path]:
    paths = folder.rglob("*") if recursive else folder.iterdir()
    return [p for p in paths if p.suffix.lower() in suffixes and p.is_file()]


def _no_data_message(source: str, root: Path, why: str) -> str:
    return (
        f"no training images for data={source} at {root} ({why}): "
        "for COCO download train2014.zip from https://cocodataset.org, extract it and point data.root at the "
        "train2014 folder; for Visual Genome point data.root at the folder holding VG_100K and VG_100K_2; "
        "or train on any folder of images with data=folder data.root=PATH"
    )


def readable_images(files: Sequence[Path]) -> tuple[list[Path], list[Path]]:
    """Split ``files`` into (readable, unreadable) by reading headers only, so it is cheap even for COCO.

    Files that are corrupt past the header pass here and are caught at load time by :class:`ImageDataset`.
    """
    with ThreadPoolExecutor(max_workers=8) as pool:  # header reads wait on the disk, not the CPU
        ok = list(pool.map(_header_ok, files))
    return [f for f, good in zip(files, ok) if good], [f for f, good in zip(files, ok) if not good]


def _header_ok(path: Path) -> bool:
    try:
        with Image.open(path) as img:
            return img.width > 0 and img.height > 0
    except _DECODE_ERRORS:
        return False


class ImageDataset(Dataset):
    """Square crops of image files as (3, S, S) float tensors in [0, 1].

    The short side is resized to ``image_size``, then cropped: at random for training (augmentation),
    at the centre for validation (the same pixels every epoch). A file that fails to decode is
    replaced by the next readable one and reported once per process, naming the file.
    """

    def __init__(self, files: Sequence[Path], image_size: int, train: bool = True) -> None:
        self.files = list(files)
        self.image_size = image_size
        crop = v2.RandomCrop(image_size) if train else v2.CenterCrop(image_size)
        self.transform = v2.Compose(
            [v2.ToImage(), v2.Resize(image_size, antialias=True), crop, v2.ToDtype(torch.float32, scale=True)]
        )
        self._bad: set[int] = set()

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> torch.Tensor:
        n = len(self.files)
        for step in range(n):
            i = (index + step) % n
            if i in self._bad:
                continue
            try:
                image = open_rgb(self.files[i])
            except _DECODE_ERRORS as exc:
                self._bad.add(i)
                warnings.warn(f"skipping unreadable image {self.files[i]}: {exc}", stacklevel=2)
                continue
            return self.transform(image).as_subclass(torch.Tensor)  # a plain tensor, not a tv_tensors.Image
        raise NSTError(f"none of the {n} images could be read (first tried: {self.files[index % n]}); check data.root")


def photo_batch(paths: Sequence[str | Path], image_size: int) -> torch.Tensor:
    """The user's own photos as (N, 3, S, S) in [0, 1], resized and centre-cropped like the validation images;
    a folder stands for the images in it. A missing or unreadable photo is an :class:`NSTError`."""
    files: list[Path] = []
    for entry in paths:
        path = Path(entry).expanduser()
        files += image_files("folder", path) if path.is_dir() else [path]
    transform = ImageDataset(files, image_size, train=False).transform
    return torch.stack([transform(open_rgb(f)).as_subclass(torch.Tensor) for f in files])


def default_workers() -> int:
    """DataLoader workers when ``data.num_workers`` is null: the CPU cores this process may use, at most 8
    (decoding and cropping a 512 px COCO image takes a few ms; more workers only cost memory)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(8, cores))


class StyleDataModule(L.LightningDataModule):
    """Training and fixed validation images for a fast style network, from COCO, Visual Genome or a folder.

    ``num_val`` images (never more than half) are set aside by a seeded draw from the sorted file
    list, so every run with the same files and seed validates and logs the same pictures.
    ``num_workers=None`` uses :func:`default_workers` (the machine's cores, at most 8).
    """

    def __init__(
        self,
        source: str,
        root: str,
        image_size: int = 512,
        batch_size: int = 2,
        num_workers: int | None = None,
        num_val: int = 4,
        verify_images: bool = True,
        seed: int = 0,
    ) -> None:
        super().__init__()
        _check_source(source)
        if image_size < MIN_SIDE:
            raise NSTError(f"data.image_size={image_size} is too small; VGG (19 or 16) needs at least {MIN_SIDE}")
        self.num_workers = default_workers() if num_workers is None else num_workers
        if batch_size < 1 or self.num_workers < 0 or num_val < 0:
            raise NSTError(
                f"data.batch_size={batch_size} must be >= 1, data.num_workers={num_workers} and "
                f"data.num_val={num_val} must be >= 0; fix the data config"
            )
        self.save_hyperparameters()
        self.train_set: ImageDataset | None = None
        self.val_set: ImageDataset | None = None

    def setup(self, stage: str | None = None) -> None:
        """List, check and split the images; runs once even if Lightning calls it for several stages."""
        if self.train_set is not None:
            return
        hp = self.hparams
        files = image_files(hp.source, hp.root)
        if hp.verify_images:
            files, bad = readable_images(files)
            if bad:
                warnings.warn(
                    f"skipped {len(bad)} of {len(files) + len(bad)} images that could not be read: first one: {bad[0]}",
                    stacklevel=2,
                )
            if not files:
                raise NSTError(_no_data_message(hp.source, Path(hp.root), "none of its images could be read"))
        val_idx = set(random.Random(hp.seed).sample(range(len(files)), min(hp.num_val, len(files) // 2)))
        self.train_set = ImageDataset([f for i, f in enumerate(files) if i not in val_idx], hp.image_size, train=True)
        self.val_set = ImageDataset([files[i] for i in sorted(val_idx)], hp.image_size, train=False)

    def train_dataloader(self) -> DataLoader:
        """Shuffled batches of random crops; the last short batch is dropped so batch statistics stay even."""
        train_set = self._require(self.train_set)
        return self._loader(train_set, shuffle=True, drop_last=len(train_set) >= self.hparams.batch_size)

    def val_dataloader(self) -> DataLoader:
        """The fixed validation images, centre-cropped, in a fixed order."""
        return self._loader(self._require(self.val_set), shuffle=False, drop_last=False)

    def val_images(self) -> torch.Tensor:
        """The validation images stacked as (N, 3, S, S), for callbacks that log stylized samples."""
        val_set = self._require(self.val_set)
        if len(val_set) == 0:
            return torch.empty(0, 3, self.hparams.image_size, self.hparams.image_size)
        return torch.stack([val_set[i] for i in range(len(val_set))])

    def _loader(self, dataset: ImageDataset, shuffle: bool, drop_last: bool) -> DataLoader:
        return batch_loader(dataset, self.hparams.batch_size, self.num_workers, shuffle=shuffle, drop_last=drop_last)

    @staticmethod
    def _require(dataset: ImageDataset | None) -> ImageDataset:
        if dataset is None:
            raise RuntimeError("StyleDataModule.setup() must run before asking for data")
        return dataset


def batch_loader(
    dataset: Dataset, batch_size: int, workers: int, *, shuffle: bool, drop_last: bool, sampler: object = None
) -> DataLoader:
    """The DataLoader of both DataModules: workers kept alive between epochs, pinned memory when a GPU is there."""
    return DataLoader(
        dataset, batch_size=batch_size, shuffle=shuffle, sampler=sampler, drop_last=drop_last, num_workers=workers,
        persistent_workers=workers > 0, pin_memory=torch.cuda.is_available(),
    )
