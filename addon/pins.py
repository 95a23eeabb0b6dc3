"""A head's pins in the .blend: kept on the head mesh as the text of a pins file (README: "Correcting the head with
pins"; the photo as an index into the head's photos), so they travel with the file. `add_pin` / `remove_pin` edit
them, `head_pins` reads them back as `Pin`s for `Reconstructor.run(photos, pins=...)` (the Re-solve with Pins
operator). Every pin is checked as a pins file's is (inference/pins.parse_pin): one FacesmithError says what is wrong.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import bpy
import numpy as np

from ..inference.errors import FacesmithError
from ..inference.fit.targets import Pin
from ..inference.pins import Surface, parse_pin, parse_pins, pin_entry
from ..inference.result import pins_text
from .head import PHOTO_PROPERTY, PHOTOS_PROPERTY, PINS_PROPERTY


def head_photos(mesh: bpy.types.Object) -> list[str]:
    """The photos a head was fitted to (paths as recorded at build time, in the fit's order)."""
    if PHOTO_PROPERTY not in mesh:
        raise FacesmithError(f"{mesh.name} is not a head Facesmith built (it records no photo)")
    if PHOTOS_PROPERTY in mesh:
        return list(json.loads(mesh[PHOTOS_PROPERTY]))
    return [str(mesh[PHOTO_PROPERTY])]


def mesh_surface(mesh: bpy.types.Object) -> Surface:
    """The head mesh's triangles: FLAME's, in FLAME's order (build_mesh keeps them so), so face ids are the model's."""
    sides = np.empty(len(mesh.data.polygons), np.int32)
    mesh.data.polygons.foreach_get("loop_total", sides)
    corners = np.empty(len(mesh.data.loops), np.int32)
    mesh.data.loops.foreach_get("vertex_index", corners)
    if (sides != 3).any():
        raise FacesmithError(
            f"{mesh.name}: its mesh is no longer FLAME's triangles (edited?): pins cannot be put on it"
        )
    return Surface(corners.reshape(-1, 3), len(mesh.data.vertices))


def head_pins(mesh: bpy.types.Object) -> list[Pin]:
    """The pins kept on a head (none: an empty list)."""
    photos, surface = head_photos(mesh), mesh_surface(mesh)
    try:
        entries = json.loads(mesh.get(PINS_PROPERTY, "[]"))
    except (TypeError, json.JSONDecodeError) as exc:
        raise FacesmithError(f"{mesh.name}: its {PINS_PROPERTY} property is not a JSON pins list ({exc})") from None
    if not isinstance(entries, list):
        raise FacesmithError(f"{mesh.name}: its {PINS_PROPERTY} property is not a JSON list of pins")
    return list(parse_pins(entries, photos, surface, mesh.name))


def store_pins(mesh: bpy.types.Object, pins: Sequence[Pin], residuals_px: Sequence[float] = ()) -> None:
    """Keep `pins` on the head (replacing what it kept), with their residuals when they were solved."""
    mesh[PINS_PROPERTY] = pins_text(pins, residuals_px)


def add_pin(mesh: bpy.types.Object, photo: int | str, surface_point: int | tuple, xy: Sequence[float]) -> Pin:
    """Pin a point of the head's surface (a vertex id, or (face, (a, b, c)) barycentric) at pixel `xy` (x right,
    y down, the photo's original pixels) of `photo` (its index among the head's photos, or its file name or stem).
    The head is not re-solved: run Re-solve with Pins (facesmith.resolve_pins). Returns the pin as kept."""
    pins = head_pins(mesh)
    try:
        pin = parse_pin(pin_entry(photo, surface_point, xy), head_photos(mesh), mesh_surface(mesh))
    except ValueError as exc:
        raise FacesmithError(f"{mesh.name}: pin not added: {exc}") from None
    store_pins(mesh, [*pins, pin])  # residuals dropped: they were the old solve's
    return pin


def remove_pin(mesh: bpy.types.Object, index: int) -> Pin:
    """Take pin `index` (as head_pins lists them) off the head; returns it."""
    pins = head_pins(mesh)
    if isinstance(index, bool) or not isinstance(index, int | np.integer) or not -len(pins) <= index < len(pins):
        raise FacesmithError(f"{mesh.name}: no pin {index!r} to remove (it has {len(pins)})")
    removed = pins.pop(index)
    store_pins(mesh, pins)
    return removed
