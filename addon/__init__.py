"""Blender side of Facesmith: the only package that imports bpy.

Heavy modules (numpy pipeline, MediaPipe, onnxruntime) load when an operator runs, not at register.
"""

from __future__ import annotations

import bpy

from . import operators, panels, preferences, properties

CLASSES = (
    preferences.FACESMITH_AddonPreferences,
    properties.FACESMITH_PhotoItem,
    properties.FACESMITH_SceneSettings,
    operators.FACESMITH_OT_reconstruct,
    operators.FACESMITH_OT_add_photos,
    operators.FACESMITH_OT_clear_photos,
    operators.FACESMITH_OT_set_expression,
    operators.FACESMITH_OT_rebuild_material,
    operators.FACESMITH_OT_resolve_pins,
    operators.FACESMITH_OT_export,
    operators.FACESMITH_OT_import_arkit,
    operators.FACESMITH_OT_animate_video,
    panels.FACESMITH_PT_main,
)


def register() -> None:
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    bpy.types.Scene.facesmith = bpy.props.PointerProperty(type=properties.FACESMITH_SceneSettings)


def unregister() -> None:
    del bpy.types.Scene.facesmith
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
