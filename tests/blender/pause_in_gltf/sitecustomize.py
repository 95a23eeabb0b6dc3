"""Start-up code for a command-line run that tests/blender/test_runs.py starts with this folder first on PYTHONPATH
(Python imports `sitecustomize` at start-up): it makes "the run is inside the glTF export" a state a test can wait
for, without a hook in Facesmith itself.

- Blender's glTF exporter, once it has written the .glb, pauses inside the export operator (up to PAUSE_S, in
  time.sleep, which a signal interrupts): a signal's exception raised there comes out of bpy as the operator's
  RuntimeError, as it does for a user whose Ctrl-C lands in the exporter.
- Each Python signal handler that returns (does not raise) is logged, so a test sends its second signal only
  once the first has been handled: two signals sent before Python runs its handler are handled once.

Events ("gltf paused", "handled SIGINT") go one per line to the file named by FACESMITH_TEST_EVENTS.
"""

from __future__ import annotations

import importlib.machinery
import os
import signal
import sys
import time
from collections.abc import Callable
from types import FrameType, ModuleType

EXPORTER = "io_scene_gltf2.blender.exp.export"  # its save() runs inside bpy.ops.export_scene.gltf
PAUSE_S = 60.0  # longer than a test waits: a run that is never signalled finishes late, and the test fails


def log_event(text: str) -> None:
    with open(os.environ["FACESMITH_TEST_EVENTS"], "a") as f:
        f.write(text + "\n")


def pausing(save: Callable) -> Callable:
    def save_then_pause(*args: object, **kwargs: object) -> object:
        result = save(*args, **kwargs)
        log_event("gltf paused")
        time.sleep(PAUSE_S)
        return result

    return save_then_pause


class PauseInExporter:
    """A meta path finder that only finds EXPORTER (as the normal path finder does) and wraps its `save` once
    the module has run: the add-on imports it inside the operator, at the first export."""

    def find_spec(self, name: str, path: object = None, target: ModuleType | None = None):
        if name != EXPORTER:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_and_wrap(module: ModuleType) -> None:
            exec_module(module)
            module.save = pausing(module.save)

        spec.loader.exec_module = exec_and_wrap
        return spec


def logging_handler(handler: Callable) -> Callable:
    def handle(signum: int, frame: FrameType | None) -> None:
        handler(signum, frame)
        log_event(f"handled {signal.Signals(signum).name}")

    return handle


def install_logging_handlers() -> None:
    install = signal.signal

    def signal_logged(signum: int, handler: object) -> object:
        return install(signum, logging_handler(handler) if callable(handler) else handler)

    signal.signal = signal_logged


if os.environ.get("FACESMITH_TEST_EVENTS"):
    sys.meta_path.insert(0, PauseInExporter())
    install_logging_handlers()
