"""3D Viewport › Sidebar › Facesmith."""

from __future__ import annotations

import bpy

from ..inference.errors import FacesmithError


class FACESMITH_PT_main(bpy.types.Panel):
    bl_idname = "FACESMITH_PT_main"
    bl_label = "Facesmith"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Facesmith"

    def draw(self, context) -> None:
        layout = self.layout
        settings = context.scene.facesmith
        box = layout.box()
        box.label(text="Photos of one person", icon="IMAGE_DATA")
        for item in settings.photos:
            box.label(text=bpy.path.basename(item.path))
        row = box.row(align=True)
        row.operator("facesmith.add_photos", icon="FILEBROWSER")
        row.operator("facesmith.clear_photos", text="", icon="X")
        box.prop(settings, "image")
        col = layout.column(align=True)
        col.prop(settings, "expression_keys")
        col.prop(settings, "textures")
        sub = col.row()
        sub.active = settings.textures
        sub.prop(settings, "colour_constancy")
        col.prop(settings, "displacement")
        sub = col.row()
        sub.active = settings.textures and settings.displacement
        sub.prop(settings, "detail_strength")
        col.prop(settings, "eyeballs")
        col.prop(settings, "refine")
        col.prop(settings, "fitted_as_arkit")
        from ..inference.landmarks.detect import resolve_backends
        from ..inference.options import DEFAULTS
        from .preferences import preferences

        prefs = preferences(context)
        try:
            active, _, _ = resolve_backends((prefs.landmarks if prefs else None) or DEFAULTS.landmarks)
        except FacesmithError as exc:
            active = str(exc)
        layout.label(text=f"Landmarks: {active}", icon="SHADERFX")
        layout.operator("facesmith.reconstruct", icon="USER")
        if settings.head is not None:
            box = layout.box()
            box.label(text=settings.summary or settings.head.name, icon="CHECKMARK")
            for line in filter(None, settings.agreement.split("\n")):  # after a photo-consistency refinement
                box.label(text=line, icon="IMAGE_DATA")
            row = box.row(align=True)
            row.operator("facesmith.set_expression", text="Neutral").mode = "NEUTRAL"
            row.operator("facesmith.set_expression", text="Fitted").mode = "FITTED"
            box.operator("facesmith.rebuild_material", icon="MATERIAL")
            # Pins are put from Python for now (addon/pins.py add_pin); the operator re-solves with what the head keeps.
            box.operator("facesmith.resolve_pins", icon="PINNED")
            row = box.row(align=True)
            row.operator("facesmith.export", text="Export .glb").format = "GLB"
            row.operator("facesmith.export", text="Export .fbx").format = "FBX"
            row = box.row(align=True)
            row.operator("facesmith.import_arkit", icon="ANIM")
            row.operator("facesmith.animate_video", icon="FILE_MOVIE")
