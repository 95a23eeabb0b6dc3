"""Footage -> a performance ready to key on a head: the one animate flow behind `facesmith animate` and the add-on's
Animate from Video (numpy only; addon/animate.key_animation keys the result).

The two differ only in where the head comes from and where the keys go: the command line opens HEAD.blend (or
builds a head from frames of the footage, `Animator.head_from_footage`), the add-on takes the head in its scene.
Either reads the head's identity (β) with addon/head.head_identity and hands it to `Animator.run`, with the same
defaults (options.AnimateOptions). An ARKit take needs no tracking: arkit_csv.read_live_link_csv is its flow and
`ArkitTake` its result, keyed by addon/animate.key_take.
"""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import NoFaceError
from .flame.model import FlameModel
from .options import AnimateOptions, PipelineOptions
from .pipeline import HeadResult, Reconstructor
from .track import Progress, Tracked, footage_frames, keyed_curves, track_footage


@dataclass(frozen=True)
class AnimationResult:
    """A tracked performance, ready to key on a head (addon/animate.key_animation)."""

    tracked: Tracked  # one row per tracked frame: expression, pose, translation, eyelids, the take's camera
    arkit: dict[str, np.ndarray] | None  # ARKit name -> (N,) weights when keyed on the ARKit keys, else None
    first_frame: int  # the footage's frame number keyed at the scene's first frame
    # The video to show behind the head's camera, frame for frame; None for a folder of frames, or a stride above 1
    # (a movie clip plays at its own rate: its frames would not match the keys).
    background: Path | None
    warnings: tuple[str, ...] = ()  # frames without a face (interpolated), named as the footage's


def footage_frame_label(footage: Path, number: int) -> str:
    """How messages name a frame of the user's footage (numbers count from 0, as TrackOptions.start and end do)."""
    return f"{footage}, frame {number}"


def relabelled(message: str, labels: dict[str, str]) -> str:
    """`message` with each internal path in `labels` replaced by what the user knows it as."""
    for internal, label in labels.items():
        message = message.replace(internal, label)
    return message


class Animator:
    """Footage tracked on a head's identity with one model and one set of options."""

    def __init__(self, pipeline: PipelineOptions, model: FlameModel, options: AnimateOptions | None = None) -> None:
        self.pipeline, self.model = pipeline, model
        self.options = options if options is not None else AnimateOptions()

    def head_from_footage(
        self, footage: Path, name: str, staging: Path, cancel: threading.Event | None = None
    ) -> tuple[HeadResult, int]:
        """A head named `name` reconstructed from `identity_frames` frames spread over the footage (several photos
        of one person: shared β, photo-consistency refinement), the frames staged as PNGs in `staging`. Its errors
        and warnings name the user's file and frame, and it records the footage as its photo (the staged frames
        are the caller's to delete). Returns the head and the frames it was tried on."""
        from PIL import Image

        wanted = max(1, self.options.identity_frames)
        track = self.options.track
        _, count, _ = footage_frames(footage, track)
        spread = dataclasses.replace(track, stride=track.stride * max(1, count // wanted))
        _, _, frames = footage_frames(footage, spread)
        paths, labels = [], {}
        for number, rgb in list(frames)[: self.options.identity_frames]:
            paths.append(staging / f"frame_{number:06d}.png")
            labels[str(paths[-1])] = labels[paths[-1].name] = footage_frame_label(footage, number)
            Image.fromarray(rgb).save(paths[-1])
        with Reconstructor(self.pipeline, self.model) as reconstructor:
            try:
                head = reconstructor.run(paths, name, cancel=cancel)
            except NoFaceError as exc:  # it names a staged frame, deleted by the caller: name the user's file and frame
                raise NoFaceError(relabelled(str(exc), labels)) from None
        rig = dataclasses.replace(head.rig, photo_path=str(footage.resolve()), photo_paths=(str(footage.resolve()),))
        warnings = tuple(relabelled(w, labels) for w in head.warnings)  # e.g. a frame without a face, skipped
        return dataclasses.replace(head, rig=rig, warnings=warnings), len(paths)

    def run(
        self, footage: Path, shape: np.ndarray, progress: Progress | None = None, cancel: threading.Event | None = None
    ) -> AnimationResult:
        """Footage (a video file or a folder of frames) tracked with the identity `shape` (track.track_footage),
        as the curves the options' keys take."""
        track = self.options.track
        tracked = track_footage(footage, shape, self.model, self.pipeline, track, progress, cancel)
        arkit = keyed_curves(self.model, tracked, self.options.keys)
        background = footage if footage.is_file() and track.stride == 1 else None
        lost = tracked.lost_message(footage.name)
        return AnimationResult(tracked, arkit, track.start, background, (lost,) if lost else ())
