"""Add-on preferences: FLAME model file, device, landmark backend, texture size, output folder."""

from __future__ import annotations

import functools

import bpy
from bpy.props import EnumProperty, StringProperty

from ..inference.options import DEFAULTS, TEXTURE_SIZES

# The extension's own package (bl_ext.<repo>.facesmith, or facesmith in tests): preferences are keyed by it.
ADDON_ID = __package__.rpartition(".")[0]


def _update_status(self, context) -> None:
    import dataclasses

    from ..inference.pipeline import model_status

    preference = bpy.path.abspath(self.flame_path) if self.flame_path else ""
    self.model_status = model_status(dataclasses.replace(DEFAULTS, flame_preference=preference))


BACKEND_LABELS = {
    "auto": ("Auto", "The best backend installed here"),
    "dense": ("Dense (learned)", "Several hundred FLAME points with uncertainties, from Facesmith's network"),
    "mediapipe": ("MediaPipe", "478 points with irises"),
    "dlib": ("dlib", "68 points"),
    "face_alignment": ("face-alignment", "68 points; only with its weights already on disk"),
}


@functools.cache
def backend_items() -> tuple[tuple[str, str, str], ...]:
    """ "auto" and the backends installed in this Blender (MediaPipe has no Python 3.13 wheel). Cached: what
    is installed does not change while Blender runs, and Blender needs the item strings kept alive."""
    from ..inference.landmarks.detect import available_backends

    names = [DEFAULTS.landmarks, *(b for b in available_backends() if b != DEFAULTS.landmarks)]
    return tuple((n, *BACKEND_LABELS[n]) for n in names)


def _backend_items(self, context) -> tuple[tuple[str, str, str], ...]:
    return backend_items()


def available_providers() -> list[str]:
    """onnxruntime's execution providers on this machine (nothing is downloaded)."""
    try:
        import onnxruntime
    except ImportError:
        return []
    return list(onnxruntime.get_available_providers())


class FACESMITH_AddonPreferences(bpy.types.AddonPreferences):
    bl_idname = ADDON_ID

    flame_path: StringProperty(
        name="FLAME model",
        description="FLAME 2023 Open .pkl (or FLAME 2020 generic_model.pkl, or a Facesmith .npz), downloaded "
        "by you from the FLAME website",
        subtype="FILE_PATH",
        update=_update_status,
    )
    model_status: StringProperty(name="Status", default="")
    device: EnumProperty(
        name="Device",
        description="Where the dense-landmark network runs (onnxruntime)",
        items=[
            ("AUTO", "Auto", "CUDA when onnxruntime offers it, else CPU"),
            ("CPU", "CPU", ""),
            ("CUDA", "CUDA", "Needs an onnxruntime with the CUDA provider; otherwise the run stops and says so"),
        ],
        default="AUTO",
    )
    landmarks: EnumProperty(
        name="Landmarks",
        description="Landmark backend: only those installed in this Blender are offered",
        items=_backend_items,
    )
    texture_size: EnumProperty(
        name="Texture size", items=[(str(s), str(s), "") for s in TEXTURE_SIZES], default=str(DEFAULTS.texture_size)
    )
    output_dir: StringProperty(name="Output folder", description="Where exports go", subtype="DIR_PATH")

    def draw(self, context) -> None:
        layout = self.layout
        layout.prop(self, "flame_path")
        if not self.model_status:
            _update_status(self, context)
        layout.label(text=self.model_status, icon="INFO")
        row = layout.row()
        row.prop(self, "device")
        providers = available_providers()
        row.label(text=f"onnxruntime: {', '.join(providers) if providers else 'not installed'}")
        layout.prop(self, "landmarks")
        layout.prop(self, "texture_size")
        layout.prop(self, "output_dir")
        if not bpy.app.online_access:
            layout.label(text="Online access is off: Facesmith never downloads anything anyway.", icon="CHECKMARK")


def preferences(context) -> FACESMITH_AddonPreferences | None:
    addon = context.preferences.addons.get(ADDON_ID)
    return addon.preferences if addon else None
