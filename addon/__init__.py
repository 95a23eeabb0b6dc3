"""Blender side of Facesmith: the only package that imports bpy."""


def register() -> None:
    """Nothing to register yet: panels and operators arrive with the add-on issue."""


def unregister() -> None:
    """Mirror of register()."""
