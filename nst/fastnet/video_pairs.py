"""Consecutive frame pairs of real videos with their backward flow and reliability mask, cached on disk.

Ruder et al. 2018 train the temporal term of their feed-forward network on Hollywood2 clips mixed with COCO;
ReCoNet (Gao et al. 2018) on Monkaa/FlyingThings and Huang et al. 2017 on video frames too. Here any folder of
video files (mp4 mov mkv avi webm gif) or frame folders (DAVIS ``JPEGImages/480p/<clip>``, Sintel
``training/final/<clip>``) serves. Each video is prepared once (:func:`cache_clip`):

* its frames are decoded by the one reader (:func:`nst.io.video.open_video`), scaled so their short side is the
  training crop size, and written as a numbered PNG frame folder (:class:`nst.io.frames.FrameFolderWriter`);
* the backward and forward flows of every consecutive pair are computed by the foundation's estimator and
  cached by :class:`nst.flow.cache.VideoFlows` (float16 ``.npy`` per pair, keyed by estimator and size).

A second run (or epoch) with the same cache folder reads both back and computes nothing. A pair is served as a
dict (:data:`nst.fastnet.motion.PAIR_KEYS`): the current frame ``image``, the ``previous`` frame, the backward
``flow`` of the current frame and its ``mask`` (:func:`nst.flow.reliability_mask`; 0 where the crop window cuts
the flow off), all cropped by one window, as :class:`~nst.fastnet.motion.VideoMotion` expects.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from nst.errors import NSTError
from nst.flow import FlowEstimator, out_of_frame
from nst.flow.cache import VideoFlows
from nst.io.files import atomic_path
from nst.io.frames import has_images, list_images
from nst.io.image import open_rgb, pil_to_tensor
from nst.io.video import VIDEO_SUFFIXES, open_video, open_writer

DONE = "frames.json"  #: written (atomically) when a clip's frames are all in its cache folder


def video_sources(root: str | os.PathLike, skip: str | os.PathLike | None = None) -> list[Path]:
    """The videos under ``root``, sorted: video files and folders holding images, searched recursively
    (``root`` itself may be one video). ``skip``: a folder to leave out (the cache, if it lies inside)."""
    root = Path(root).expanduser()
    if root.is_file():
        return [root] if root.suffix.lower() in VIDEO_SUFFIXES else []
    if not root.is_dir():
        raise NSTError(f"data.root: no such folder {root}; give a folder of video files or frame folders")
    skip_dir = Path(skip).resolve() if skip else None
    candidates = [root, *root.rglob("*")]
    found = []
    for path in candidates:
        if skip_dir is not None and (path.resolve() == skip_dir or skip_dir in path.resolve().parents):
            continue
        if (path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES) or (path.is_dir() and has_images(path)):
            found.append(path)
    return sorted(found)


@dataclass(frozen=True)
class CachedClip:
    """A video prepared for training: its frames as PNGs at the training scale, and its flows' cache."""

    source: Path
    folder: Path
    frames: int

    def frame(self, index: int) -> torch.Tensor:
        """Frame ``index`` as (1, 3, H, W) in [0, 1]."""
        return pil_to_tensor(open_rgb(self.folder / "frames" / f"frame_{index:06d}.png"))

    def flows(self, estimator: FlowEstimator) -> VideoFlows:
        """The flow cache of this clip (a new object: its worker thread starts in the process that uses it)."""
        return VideoFlows(self.frame, estimator, self.folder / "flow")


def clip_key(source: Path, short_side: int, every: int, max_frames: int | None) -> str:
    """A cache folder name for a source video and the frame selection: changes when the file changes."""
    stat = source.stat()
    stamp = [str(source.resolve()), stat.st_mtime_ns, stat.st_size, short_side, every, max_frames]
    if source.is_dir():
        stamp.append([(p.name, p.stat().st_mtime_ns) for p in list_images(source)])
    return f"{source.stem}-{hashlib.sha1(json.dumps(stamp).encode()).hexdigest()[:12]}"


def cache_clip(
    source: Path, cache_dir: Path, short_side: int, every: int = 1, max_frames: int | None = None
) -> CachedClip:
    """Decode ``source`` once into ``cache_dir/<key>/frames`` at a short side of ``short_side`` px (aspect kept).

    The frames are written into a private temporary folder renamed into place when complete, so several processes
    (DDP ranks) preparing the same video never see each other's half-written frames; the first rename wins.
    """
    folder = cache_dir / clip_key(source, short_side, every, max_frames)
    if not (folder / DONE).is_file():
        staging = cache_dir / f".{folder.name}.{os.getpid()}.tmp"
        shutil.rmtree(staging, ignore_errors=True)
        _decode_frames(source, staging, short_side, every, max_frames)
        if folder.is_dir() and not (folder / DONE).is_file():
            shutil.rmtree(folder, ignore_errors=True)  # an unfinished folder of an older layout
        try:
            os.rename(staging, folder)
        except OSError:  # another process finished first: use its frames
            shutil.rmtree(staging, ignore_errors=True)
    return CachedClip(source, folder, int(json.loads((folder / DONE).read_text())["frames"]))


def _decode_frames(source: Path, folder: Path, short_side: int, every: int, max_frames: int | None) -> None:
    with open_video(source, every=every, max_frames=max_frames) as reader:
        scale = short_side / min(reader.width, reader.height)
        width, height = max(short_side, round(reader.width * scale)), max(short_side, round(reader.height * scale))
        with open_writer(folder / "frames", fps=reader.fps, width=width, height=height) as writer:
            for frame in reader:
                if frame.shape[-2:] != (height, width):
                    frame = F.interpolate(frame, (height, width), mode="bilinear", antialias=True, align_corners=False)
                writer.write(frame.clamp(0, 1))
            count = writer.frames_written
    with atomic_path(folder / DONE) as tmp:
        tmp.write_text(json.dumps({"source": str(source), "frames": count, "width": width, "height": height}))


def compute_flows(clip: CachedClip, estimator: FlowEstimator) -> int:
    """Make sure the backward and forward flow of every consecutive pair is cached; return how many were computed."""
    with clip.flows(estimator) as flows:
        pairs = [(t, t - 1) for t in range(1, clip.frames)]
        flows.prefetch(pairs, masks=True)
        for t, s in pairs:
            flows.flow(t, s), flows.flow(s, t)
        return flows.computed


class VideoPairs(Dataset):
    """Pairs (t-1, t) of cached clips as dicts of ``image``, ``previous``, ``flow``, ``mask``, cropped to
    ``crop`` x ``crop``: at random for training, at the centre for validation (the same pixels every epoch).

    ``pairs``: (clip index, t) of the pairs to serve. Flows and masks come from each clip's
    :class:`~nst.flow.cache.VideoFlows` (read from disk; computed there only if missing).
    """

    def __init__(
        self,
        clips: Sequence[CachedClip],
        pairs: Sequence[tuple[int, int]],
        estimator: FlowEstimator,
        crop: int,
        train: bool = True,
    ) -> None:
        self.clips, self.pairs, self.estimator = list(clips), list(pairs), estimator
        self.crop, self.train = crop, train
        self._flows: dict[int, VideoFlows] = {}
        self._pid = os.getpid()

    @property
    def flows_computed(self) -> int:
        """Flows this dataset had to compute (not read from the cache), in this process."""
        return sum(flows.computed for flows in self._flows.values())

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        c, t = self.pairs[index]
        clip, flows = self.clips[c], self._clip_flows(c)
        frames = torch.cat([clip.frame(t), clip.frame(t - 1)])
        flow, mask = flows.flow(t, t - 1), flows.mask(t, t - 1)
        h, w = frames.shape[-2:]
        if min(h, w) < self.crop:
            raise NSTError(f"cached frames of {clip.source} are {w}x{h}, smaller than the {self.crop} px crop")
        if self.train:
            top, left = random.randint(0, h - self.crop), random.randint(0, w - self.crop)
        else:
            top, left = (h - self.crop) // 2, (w - self.crop) // 2
        window = (..., slice(top, top + self.crop), slice(left, left + self.crop))
        flow, mask = flow[window].contiguous(), mask[window]
        mask = mask * (~out_of_frame(flow)).float()  # the crop window cuts off flow that left it
        return {"image": frames[0][window], "previous": frames[1][window], "flow": flow[0], "mask": mask[0]}

    def _clip_flows(self, c: int) -> VideoFlows:
        if self._pid != os.getpid():  # a forked DataLoader worker: the parent's worker threads are not here
            self._flows, self._pid = {}, os.getpid()
        if c not in self._flows:
            self._flows[c] = self.clips[c].flows(self.estimator)
        return self._flows[c]


class StillsAsPairs(Dataset):
    """Still images in the pair format, for ``data.mix``: previous = image, zero flow, zero mask (no temporal
    signal, style and content only)."""

    def __init__(self, images: Dataset) -> None:
        self.images = images

    def __len__(self) -> int:
        return len(self.images)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        image = self.images[index]
        zeros = torch.zeros_like(image[:1])
        return {"image": image, "previous": image, "flow": torch.cat([zeros, zeros]), "mask": zeros}


class CurrentFrames(Dataset):
    """Only the current frames of a :class:`VideoPairs`, as plain tensors (validation images)."""

    def __init__(self, pairs: VideoPairs) -> None:
        self.pairs_dataset = pairs

    def __len__(self) -> int:
        return len(self.pairs_dataset)

    def __getitem__(self, index: int) -> torch.Tensor:
        c, t = self.pairs_dataset.pairs[index]
        frame, crop = self.pairs_dataset.clips[c].frame(t)[0], self.pairs_dataset.crop  # no flow needed
        top, left = (frame.shape[-2] - crop) // 2, (frame.shape[-1] - crop) // 2
        return frame[:, top : top + crop, left : left + crop].contiguous()
