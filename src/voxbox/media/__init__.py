"""The audio pipeline: probe, remux/transcode to Ogg/Opus, duration, waveform, limits.

Pure and synchronous: files in, files out, plain dataclasses; nothing from the rest of voxbox.
The server calls it from a worker thread (`anyio.to_thread.run_sync` / a job).
"""

from voxbox.media.errors import DecodeTimeout, InvalidMedia, MediaError, NotAudio, TooLong
from voxbox.media.limits import MediaLimits
from voxbox.media.pipeline import (
    MPEG_AUDIO,
    OGG_OPUS,
    ProcessedAudio,
    process,
    refuse_claimed_duration,
    render_mp3,
)
from voxbox.media.probe import Probe, probe
from voxbox.media.recording import AnalyzerCache, StreamingOpusAnalyzer
from voxbox.media.waveform import WAVEFORM_BARS

__all__ = [
    "MPEG_AUDIO",
    "OGG_OPUS",
    "WAVEFORM_BARS",
    "AnalyzerCache",
    "DecodeTimeout",
    "InvalidMedia",
    "MediaError",
    "MediaLimits",
    "NotAudio",
    "Probe",
    "ProcessedAudio",
    "StreamingOpusAnalyzer",
    "TooLong",
    "probe",
    "process",
    "refuse_claimed_duration",
    "render_mp3",
]
