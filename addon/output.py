"""Headless output: one `HeadResult` -> NAME.blend / .glb / .fbx and NAME_preview.png in a folder.

Used by the command line (`facesmith reconstruct|batch`, and Blender's `blender -b --python-expr ...`),
which stages, names and commits the files; this module only makes Blender data and writes it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import bpy
import numpy as np
from PIL import Image

from ..inference.files import EXPORT_FORMATS, writing
from ..inference.pipeline import HeadResult, check_cancel
from ..inference.preview import compose_preview
from .build_scene import configure_cpu_render, render_png, turned_view
from .head import build_head, export_scene

PREVIEW_TURN_DEGREES = 45.0  # the second preview view: the cheek and the texture's filled side


@dataclass(frozen=True)
class WrittenHead:
    files: tuple[Path, ...]
    drivers: int  # corrective shape-key drivers Blender created
    timings_ms: dict[str, float]


def reset_file() -> None:
    """An empty Blender file for each head, so heads never share data. The factory startup file, but the
    user's preferences stay: inside a Blender session the installed extensions stay enabled."""
    bpy.ops.wm.read_homefile(use_empty=True, use_factory_startup=True)
    bpy.context.preferences.filepaths.save_version = 0  # no .blend1 backups beside the outputs


def write_head(
    head: HeadResult, folder: Path, formats: Sequence[str] = EXPORT_FORMATS, preview: bool = True,
    cancel: threading.Event | None = None,
) -> WrittenHead:  # fmt: skip
    """Build the head in a fresh file and write FOLDER/NAME.<format> for each format, then the preview.

    `cancel` is looked at between Blender operators (each well under a few seconds): an exception raised
    inside one (by a signal handler, say) would be swallowed by Blender."""
    name = head.rig.name
    t0 = time.perf_counter()
    reset_file()
    built = build_head(head.rig, head.textures)
    configure_cpu_render(bpy.context.scene)  # the saved .blend renders on a CPU-only machine
    timings = {"build": 1000 * (time.perf_counter() - t0)}
    files: list[Path] = []
    t0 = time.perf_counter()
    for fmt in formats:
        check_cancel(cancel)
        files.append(export_scene(folder / name, [fmt])[fmt])
    timings["save"] = 1000 * (time.perf_counter() - t0)
    if preview:
        t0 = time.perf_counter()
        check_cancel(cancel)
        front = np.asarray(Image.open(render_png(folder / "front.png")).convert("RGBA"))
        check_cancel(cancel)
        with turned_view(built.camera, built.mesh, built.armature, PREVIEW_TURN_DEGREES):
            turned = np.asarray(Image.open(render_png(folder / "turned.png")).convert("RGBA"))
        check_cancel(cancel)
        path = folder / f"{name}_preview.png"
        outline = head.textures.occluded_pixels[0] if head.textures.occluded_pixels else None
        with writing(path):
            Image.fromarray(compose_preview(head.photo_rgb, front, turned, outline)).save(path)
        for scratch in ("front.png", "turned.png"):
            (folder / scratch).unlink()
        files.append(path)
        timings["preview"] = 1000 * (time.perf_counter() - t0)
    return WrittenHead(tuple(files), built.drivers, timings)
