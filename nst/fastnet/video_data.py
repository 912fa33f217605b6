"""``data=video``: training on consecutive frame pairs of real videos, optionally mixed with still images.

The Lightning DataModule around :mod:`nst.fastnet.video_pairs` (a Lightning file of its own: ``data.py`` holds the
still-image module and is near the size limit). ``setup`` prepares every video once (frames at the training
scale, flows by the foundation's estimator, both cached on disk); batches are dicts for
:class:`~nst.fastnet.motion.VideoMotion` (``temporal=video``). Still images mix in with ``stills`` and ``mix``,
as Ruder et al. 2018 mixed COCO into Hollywood2; they carry no temporal signal (a zero mask).
"""

from __future__ import annotations

import random
import warnings
from pathlib import Path

import lightning as L
import torch
from torch.utils.data import ConcatDataset, DataLoader, Dataset, WeightedRandomSampler

from nst.errors import NSTError
from nst.fastnet.data import ImageDataset, batch_loader, image_files
from nst.fastnet.video_pairs import CurrentFrames, StillsAsPairs, VideoPairs, cache_clip, compute_flows, video_sources
from nst.flow import FlowEstimator
from nst.flow.opencv import DISFlow
from nst.io.image import MIN_SIDE


class VideoDataModule(L.LightningDataModule):
    """Frame pairs of the videos under ``root`` (video files and frame folders, searched recursively).

    Args:
        root: a folder of videos (or one video file).
        image_size: frames are scaled so their short side is this, then cropped to a square of it.
        batch_size, num_workers: as ``data=folder``.
        num_val: pairs held out (seeded draw, at most half); their current frames are the validation images.
        cache_dir: where frames and flows are cached (shared by runs: a second run computes nothing).
        flow: the flow estimator (default OpenCV DIS ``medium``).
        every, max_frames: keep every n-th frame, at most ``max_frames`` per video (long videos).
        stills: an optional folder of still images to mix in; ``mix`` is their share of training samples.
        seed: picks the validation pairs and seeds the mixing sampler; independent of the training seed.
    """

    def __init__(
        self,
        root: str,
        image_size: int = 256,
        batch_size: int = 2,
        num_workers: int = 2,
        num_val: int = 4,
        cache_dir: str | None = None,
        flow: FlowEstimator | None = None,
        every: int = 1,
        max_frames: int | None = None,
        stills: str | None = None,
        mix: float = 0.0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if image_size < MIN_SIDE or batch_size < 1 or num_workers < 0 or num_val < 0 or every < 1:
            raise NSTError(
                f"data: image_size={image_size} must be >= {MIN_SIDE}, batch_size={batch_size} and every={every} "
                f">= 1, num_workers={num_workers} and num_val={num_val} >= 0"
            )
        if not 0 <= mix < 1 or (mix > 0 and not stills):
            raise NSTError(f"data.mix={mix} must be in [0, 1) and needs data.stills (a folder of images) when > 0")
        self.save_hyperparameters(ignore=["flow"])
        self.root = Path(root).expanduser()
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir else self.root / ".nst_cache"
        self.flow = flow or DISFlow()
        self.flows_computed = 0  #: flows computed (not read from the cache) by setup()
        self.train_set: Dataset | None = None
        self.val_set: CurrentFrames | None = None
        self._weights: list[float] | None = None

    def setup(self, stage: str | None = None) -> None:
        """Cache every video's frames and flows (once; later runs read them), then split the pairs."""
        if self.train_set is not None:
            return
        hp = self.hparams
        sources = video_sources(self.root, skip=self.cache_dir)
        if not sources:
            raise NSTError(f"no videos under data.root={self.root}: put video files (mp4 mov mkv avi webm gif) "
                           "or folders of frames there, e.g. DAVIS or Sintel clips")
        clips = []
        for source in sources:
            clip = cache_clip(source, self.cache_dir, hp.image_size, hp.every, hp.max_frames)
            if clip.frames < 2:
                warnings.warn(f"skipping {source}: it has fewer than 2 frames", stacklevel=2)
                continue
            self.flows_computed += compute_flows(clip, self.flow)
            clips.append(clip)
        pairs = [(c, t) for c, clip in enumerate(clips) for t in range(1, clip.frames)]
        if not pairs:
            raise NSTError(f"no video under data.root={self.root} has 2 frames or more")
        val_idx = set(random.Random(hp.seed).sample(range(len(pairs)), min(hp.num_val, len(pairs) // 2)))
        train = VideoPairs(clips, [p for i, p in enumerate(pairs) if i not in val_idx], self.flow, hp.image_size)
        self.val_set = CurrentFrames(VideoPairs(clips, [pairs[i] for i in sorted(val_idx)], self.flow, hp.image_size,
                                                train=False))
        self.train_set = train
        if hp.stills and hp.mix > 0:
            stills = StillsAsPairs(ImageDataset(image_files("folder", hp.stills), hp.image_size, train=True))
            self.train_set = ConcatDataset([train, stills])
            share = [(1 - hp.mix) / len(train)] * len(train) + [hp.mix / len(stills)] * len(stills)
            self._weights = share

    def train_dataloader(self) -> DataLoader:
        """Shuffled pairs; with ``mix`` a seeded weighted draw giving stills that share of each epoch."""
        dataset = self._require(self.train_set)
        sampler = None
        if self._weights is not None:
            n = round(len(self._require(self.train_set).datasets[0]) / (1 - self.hparams.mix))  # type: ignore[attr-defined]
            gen = torch.Generator().manual_seed(self.hparams.seed)
            sampler = WeightedRandomSampler(self._weights, num_samples=n, replacement=True, generator=gen)
        return self._loader(dataset, shuffle=sampler is None, sampler=sampler,
                            drop_last=len(dataset) >= self.hparams.batch_size)

    def val_dataloader(self) -> DataLoader:
        """The current frames of the held-out pairs, centre-cropped, in a fixed order."""
        return self._loader(self._require(self.val_set), shuffle=False, drop_last=False)

    def val_images(self) -> torch.Tensor:
        """The validation frames stacked as (N, 3, S, S), for the sample grid."""
        val_set = self._require(self.val_set)
        size = self.hparams.image_size
        return torch.stack([val_set[i] for i in range(len(val_set))]) if len(val_set) else torch.empty(0, 3, size, size)

    def _loader(self, dataset: Dataset, shuffle: bool, drop_last: bool, sampler: object = None) -> DataLoader:
        return batch_loader(dataset, self.hparams.batch_size, self.hparams.num_workers, shuffle=shuffle,
                            drop_last=drop_last, sampler=sampler)

    @staticmethod
    def _require(dataset: Dataset | None) -> Dataset:
        if dataset is None:
            raise RuntimeError("VideoDataModule.setup() must run before asking for data")
        return dataset
