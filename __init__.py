"""Facesmith Blender extension entry point: registration, and `pin` for scripts inside Blender.

The add-on module is imported inside the functions so that importing the package (tests, CLI)
never needs bpy, and enabling stays fast.
"""


def register() -> None:
    from .addon import register as _register

    _register()


def unregister() -> None:
    from .addon import unregister as _unregister

    _unregister()


def pin(head, photo, surface_point, xy):
    """Pin a point of a Facesmith head's surface (a vertex id, or (face, bary)) at pixel `xy` of one of its photos
    (index, file name or stem); Re-solve with Pins (bpy.ops.facesmith.resolve_pins) then refits. Blender only:
    addon/pins.py add_pin, which says more."""
    from .addon.pins import add_pin

    return add_pin(head, photo, surface_point, xy)
