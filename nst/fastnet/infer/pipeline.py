"""A video through a fast network, file to file: decoding, inference and encoding overlap.

Three stages joined by bounded queues (``depth`` batches each, so memory stays flat however long the video):
a decode thread reads frames through :mod:`nst.io.video`, resizes them if asked and stacks them into batches
(pinned memory when the engine runs on CUDA, so the copy to the GPU is asynchronous); the calling thread runs
the engine; an encode thread writes the results. FFmpeg and the network release the GIL, so the three run at
once: on a GPU the network never waits for the codec, on a CPU the codecs take little time beside it.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Sequence

import cv2
import numpy as np
import torch

from nst.fastnet.infer.engines import FrameEngine
from nst.io.media import VideoReader, VideoWriter

_END = object()
_POLL_S = 0.1


def batches(
    arrays: Iterator[np.ndarray], batch_size: int, size: tuple[int, int] | None = None, pin: bool = False
) -> Iterator[np.ndarray | torch.Tensor]:
    """uint8 (B, H, W, 3) batches of up to ``batch_size`` frames, resized (area filter) to ``size`` = (W, H)."""
    pending: list[np.ndarray] = []
    for array in arrays:
        if size is not None and (array.shape[1], array.shape[0]) != size:
            array = cv2.resize(array, size, interpolation=cv2.INTER_AREA)
        pending.append(array)
        if len(pending) == batch_size:
            yield _stack(pending, pin)
            pending = []
    if pending:
        yield _stack(pending, pin)


def _stack(arrays: list[np.ndarray], pin: bool) -> np.ndarray | torch.Tensor:
    batch = np.stack(arrays)
    return torch.from_numpy(batch).pin_memory() if pin else batch


class _Stage(threading.Thread):
    """A daemon thread that keeps the exception its work raised, for the main thread to re-raise."""

    def __init__(self, work: Callable[[], None], name: str) -> None:
        super().__init__(name=name, daemon=True)
        self.work, self.error = work, None

    def run(self) -> None:
        try:
            self.work()
        except BaseException as exc:  # handed to the main thread
            self.error = exc


def _put(q: queue.Queue, item: object, stop: threading.Event) -> bool:
    """Put ``item`` unless ``stop`` is set first; False when stopped."""
    while not stop.is_set():
        try:
            q.put(item, timeout=_POLL_S)
            return True
        except queue.Full:
            continue
    return False


def _get(q: queue.Queue, producer: threading.Thread, stop: threading.Event) -> object:
    """The next item, or ``_END`` once the producer has finished (or ``stop`` is set) and the queue is empty."""
    while True:
        try:
            return q.get(timeout=_POLL_S)
        except queue.Empty:
            if stop.is_set() or not producer.is_alive():
                try:
                    return q.get_nowait()
                except queue.Empty:
                    return _END


def run_pipeline(
    source: Iterator[np.ndarray | torch.Tensor],
    engine: FrameEngine,
    sink: Callable[[np.ndarray, np.ndarray], None],
    depth: int = 2,
    on_batch: Callable[[int], None] | None = None,
) -> int:
    """Feed ``source`` batches (decode thread) through ``engine`` (this thread) into ``sink(inputs, outputs)``
    (encode thread); returns the number of frames. An error in any stage stops all three and is raised here."""
    stop = threading.Event()
    decoded: queue.Queue = queue.Queue(depth)
    stylized: queue.Queue = queue.Queue(depth)

    def decode() -> None:
        try:
            for batch in source:
                if not _put(decoded, batch, stop):
                    return
        finally:
            close = getattr(source, "close", None)
            if close is not None:
                close()  # a generator: closes the file it reads

    def encode() -> None:
        while (item := _get(stylized, main, stop)) is not _END:
            sink(*item)

    main = threading.current_thread()
    reader, writer = _Stage(decode, "nst-decode"), _Stage(encode, "nst-encode")
    frames = 0
    reader.start()
    writer.start()
    try:
        while (batch := _get(decoded, reader, stop)) is not _END:
            if writer.error is not None:
                break
            out = engine(batch)
            inputs = batch.numpy() if isinstance(batch, torch.Tensor) else batch
            if not _put(stylized, (inputs, out), stop) or writer.error is not None:
                break
            frames += len(out)
            if on_batch is not None:
                on_batch(len(out))
        _put(stylized, _END, stop)
        writer.join()
    finally:
        stop.set()
        writer.join()
        reader.join()
    for stage in (reader, writer):
        if stage.error is not None:
            raise stage.error
    return frames


def write_to(writers: Sequence[VideoWriter], side_by_side: VideoWriter | None = None) -> Callable:
    """A ``sink`` writing the outputs to ``writers`` and input | output to ``side_by_side``."""

    def sink(inputs: np.ndarray, outputs: np.ndarray) -> None:
        for writer in writers:
            writer.write(outputs)
        if side_by_side is not None:
            side_by_side.write(np.concatenate([inputs, outputs], axis=2))

    return sink


def stylize_video(
    engine: FrameEngine, reader: VideoReader, writer: VideoWriter, batch_size: int = 4,
    size: tuple[int, int] | None = None, side_by_side: VideoWriter | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> int:
    """Stylize every frame of ``reader`` into ``writer`` (sized ``size`` = (W, H), or the reader's size)."""
    pin = getattr(engine, "device", torch.device("cpu")).type == "cuda"
    target = None if size == (reader.width, reader.height) else size
    source = batches(reader.arrays(), batch_size, target, pin)
    return run_pipeline(source, engine, write_to([writer], side_by_side), on_batch=on_batch)
