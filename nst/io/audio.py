"""Audio passthrough: the source video's sound goes into the stylized video, cut to its frames and in sync.

The audio is read from the source file by its own demuxer and muxed into the output as the video frames
are written (interleaved, so memory stays flat). Packets are copied without re-encoding where the output
container takes the codec (AAC, MP3, AC-3, ALAC, Opus, FLAC into mp4; Opus, Vorbis into webm; most codecs into
mov and mkv); otherwise they are decoded, cut to the sample and encoded as AAC (mp4 mov mkv) or Opus (webm),
more than two channels mixed down to stereo.

Timing: output time 0 is source time ``start`` (the first selected frame, :attr:`VideoReader.start_time`);
audio between ``start`` and ``start + frames written / fps`` is kept. Copied packets are whole (AAC: 1024
samples, about 21 ms), so a copied cut can end up to one packet late; one packet before ``start`` is kept as
the decoder's pre-roll, as a stream copy must.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

#: Copied into mp4 as they are. The muxer takes PCM and Vorbis too, but few players play them there: encoded.
_MP4_COPY = frozenset({"aac", "mp3", "ac3", "eac3", "alac", "opus", "flac"})
_AAC_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000, 88200, 96000)


class AudioPassthrough:
    """Copies (or re-encodes) the first audio stream of ``source`` from source time ``start`` into ``output``.

    Create it before the first packet is muxed (the output header lists every stream); call
    :meth:`write_until` as video is written and :meth:`finish` once at the end.
    """

    def __init__(self, source: Path, start: float, output: av.container.OutputContainer) -> None:
        self._input = av.open(str(source), metadata_errors="ignore")
        try:
            self._in = self._input.streams.audio[0]
            self._tb = self._in.time_base
            self._offset = round(start / self._tb)  # source pts at output time 0
            self._start = start
            self._encoding = output.format.name == "mp4" and self._in.codec_context.name not in _MP4_COPY
            if not self._encoding:
                try:
                    self._out = output.add_stream_from_template(self._in)
                except ValueError:  # the container does not take this codec
                    self._encoding = True
            if self._encoding:
                self._out = self._add_encoder(output)
            if start > 0:  # a second early, for the pre-roll; where seeking fails, packets are skipped instead
                with contextlib.suppress(av.FFmpegError):
                    self._input.seek(max(0, self._offset - round(1 / self._tb)), stream=self._in, backward=True)
            demuxed = self._input.demux(self._in)
            self._packets: Iterator[av.Packet] = (p for p in demuxed if p.size and p.pts is not None)
            self._pending: av.Packet | None = None
            self._preroll: av.Packet | None = None
            self._next_sample: int | None = None  # encoding: output sample index of the next resampled sample
        except BaseException:
            self._input.close()
            raise

    @property
    def copied(self) -> bool:
        """Whether packets are copied as they are (True) or re-encoded (False)."""
        return not self._encoding

    def _add_encoder(self, output: av.container.OutputContainer) -> av.AudioStream:
        codec = "aac" if "aac" in output.supported_codecs else "libopus"
        rate = self._in.codec_context.sample_rate
        if codec == "libopus" or rate not in _AAC_RATES:
            rate = 48000
        layout = "mono" if self._in.codec_context.channels == 1 else "stereo"
        stream = output.add_stream(codec, rate=rate, layout=layout)
        self._resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate)
        self._rate, self._layout = rate, layout
        return stream

    def write_until(self, end: float, output: av.container.OutputContainer, final: bool = False) -> None:
        """Mux the audio packets that end before output time ``end`` seconds (``final``: that start before it)."""
        end_pts = self._offset + round(end / self._tb)
        while True:
            packet = self._pending if self._pending is not None else next(self._packets, None)
            self._pending = None
            if packet is None:
                return
            if packet.pts >= end_pts or (not final and packet.pts + (packet.duration or 0) > end_pts):
                self._pending = packet
                return
            if packet.pts + (packet.duration or 0) <= self._offset:
                self._preroll = packet  # entirely before start: only the last one is kept, as pre-roll
                continue
            self._take(packet, end if final else None, output)

    def _take(self, packet: av.Packet, end: float | None, output: av.container.OutputContainer) -> None:
        for pkt in (self._preroll, packet):
            if pkt is None:
                continue
            if self._encoding:  # the pre-roll is decoded too, and its samples cut off by _encode
                for frame in pkt.decode():
                    self._encode(frame, end, output)
                continue
            pkt.pts -= self._offset
            if pkt.dts is not None:
                pkt.dts -= self._offset
            pkt.stream = self._out
            output.mux(pkt)
        self._preroll = None

    def _encode(self, frame: av.AudioFrame | None, end: float | None, output: av.container.OutputContainer) -> None:
        """Resample to planar float, cut to [0, end) in output samples, encode. ``None`` flushes."""
        if frame is not None and self._next_sample is None:
            self._next_sample = round((float(frame.time) - self._start) * self._rate)
        last = round(end * self._rate) if end is not None else None
        for part in self._resampler.resample(frame):
            samples = part.to_ndarray()
            first = self._next_sample
            self._next_sample += samples.shape[1]
            lo, hi = max(0, -first), samples.shape[1] if last is None else min(samples.shape[1], last - first)
            if hi <= lo:
                continue
            piece = np.ascontiguousarray(samples[:, lo:hi])
            cut = av.AudioFrame.from_ndarray(piece, format="fltp", layout=self._layout)
            cut.sample_rate, cut.pts, cut.time_base = self._rate, first + lo, Fraction(1, self._rate)
            for pkt in self._out.encode(cut):
                output.mux(pkt)

    def finish(self, end: float, output: av.container.OutputContainer) -> None:
        """Mux the rest of the audio up to output time ``end`` seconds, flush the encoder, close the source."""
        try:
            self.write_until(end, output, final=True)
            if self._encoding:
                if self._next_sample is not None:
                    self._encode(None, end, output)
                for pkt in self._out.encode(None):
                    output.mux(pkt)
        finally:
            self.close()

    def close(self) -> None:
        self._input.close()
