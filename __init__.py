"""Facesmith Blender extension entry point: registration only.

The add-on module is imported inside register() so that importing the package (tests, CLI)
never needs bpy, and enabling stays fast.
"""


def register() -> None:
    from .addon import register as _register

    _register()


def unregister() -> None:
    from .addon import unregister as _unregister

    _unregister()
