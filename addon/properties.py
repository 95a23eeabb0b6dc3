"""Per-scene settings of the Facesmith panel (one PropertyGroup at Scene.facesmith)."""

from __future__ import annotations

import bpy
from bpy.props import BoolProperty, CollectionProperty, FloatProperty, IntProperty, PointerProperty, StringProperty

from ..inference.options import DEFAULTS


class FACESMITH_PhotoItem(bpy.types.PropertyGroup):
    path: StringProperty(name="Photo", subtype="FILE_PATH")


class FACESMITH_SceneSettings(bpy.types.PropertyGroup):
    photos: CollectionProperty(type=FACESMITH_PhotoItem)
    image: PointerProperty(name="Image", type=bpy.types.Image, description="Or a photo already open in Blender")
    expression_keys: IntProperty(name="Expression keys", default=DEFAULTS.expression_keys, min=1, max=100)
    textures: BoolProperty(name="Photo textures", default=DEFAULTS.textures)
    colour_constancy: BoolProperty(
        name="Correct light colour", default=DEFAULTS.colour_constancy,
        description="Estimate the photo's white balance and exposure (from the eye whites, the skin and the scene) "
        "and divide them out of the albedo, so a warm or dim photo does not tint the skin",
    )  # fmt: skip
    displacement: BoolProperty(name="Displacement", default=True)
    detail_strength: FloatProperty(
        name="Detail strength", default=DEFAULTS.detail_strength, min=0.0, soft_max=2.0,
        description="Scale of the fine relief recovered from shading (0: none); lower it if creases age the face",
    )  # fmt: skip
    eyeballs: BoolProperty(name="Eyeballs", default=True)
    refine: BoolProperty(
        name="Refine by photo-consistency", default=True,
        description="With several photos: after the landmark fit, refine the shape until the photos agree on the "
        "colour of the skin (a second or so more)",
    )  # fmt: skip
    head: PointerProperty(name="Head", type=bpy.types.Object)
    fitted_as_arkit: BoolProperty(
        name="Fitted expression as ARKit", default=DEFAULTS.fitted_expression == "arkit",
        description="Show the photo's expression through the ARKit keys (jaw bone at rest) instead of FLAME's "
        "fitted_expression key and the jaw bone",
    )  # fmt: skip
    summary: StringProperty(name="Last result", default="")
    # One line per photo of the last head: its name and how well its skin agreed with the other photos'.
    agreement: StringProperty(name="Photo agreement", default="")
