"""Operators: reconstruct (worker thread + modal progress), expression helpers, material rebuild, export."""

from __future__ import annotations

import dataclasses
import queue
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import bpy
from bpy.props import CollectionProperty, EnumProperty, StringProperty

from ..inference.errors import FacesmithError
from ..inference.options import ANIMATION_KEYS, DEFAULTS, VIDEO_SUFFIXES, AnimateOptions, PipelineOptions
from .build_material import skin_material
from .build_mesh import show_fitted
from .head import Head, build_head, export_fbx, export_glb, head_identity, remove_head
from .preferences import preferences

if TYPE_CHECKING:
    from ..inference.animate import AnimationResult
    from ..inference.pipeline import HeadResult


def photo_paths(context) -> list[Path]:
    """Photos chosen in the panel, or the image picked there (it must exist as a file on disk)."""
    settings = context.scene.facesmith
    paths = [Path(bpy.path.abspath(p.path)) for p in settings.photos if p.path]
    if not paths and settings.image is not None:
        path = Path(bpy.path.abspath(settings.image.filepath)) if settings.image.filepath else None
        if path is None or not path.is_file():
            raise FacesmithError(f"image '{settings.image.name}' has no file on disk: save it first")
        paths = [path]
    if not paths:
        raise FacesmithError("no photo chosen: add photos or pick an image in the Facesmith panel")
    return paths


def pipeline_options(context) -> PipelineOptions:
    """The panel's settings and the preferences; what neither sets keeps the pipeline's default."""
    settings, prefs = context.scene.facesmith, preferences(context)
    options = dataclasses.replace(
        DEFAULTS, textures=settings.textures, colour_constancy=settings.colour_constancy,
        detail_strength=settings.detail_strength,
        expression_keys=settings.expression_keys,
        fit=dataclasses.replace(DEFAULTS.fit, refine=DEFAULTS.fit.refine if settings.refine else "off"),
        fitted_expression="arkit" if settings.fitted_as_arkit else "flame",
    )  # fmt: skip
    if prefs is None:
        return options
    return dataclasses.replace(
        options,
        flame_preference=bpy.path.abspath(prefs.flame_path) if prefs.flame_path else "",
        landmarks=prefs.landmarks or DEFAULTS.landmarks,  # empty: a stored backend no longer installed
        device=prefs.device.lower(),  # where the dense-landmark network runs
        texture_size=int(prefs.texture_size),
    )


def active_head(context) -> bpy.types.Object | None:
    head = context.scene.facesmith.head
    return head if head is not None and head.data.shape_keys is not None else None


class HeadOperatorMixin:
    """For operators that act on the head the panel last built."""

    @classmethod
    def poll(cls, context):
        return active_head(context) is not None


class ChooseFile:
    """For operators that ask for a file first (their `filepath` property gets it)."""

    def invoke(self, context, event):
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}


class BackgroundWork:
    """For operators whose work runs in a thread (progress in the status bar, Esc cancels) and whose result is
    turned into Blender data on the main thread by `finish`; headless (no event loop) the work runs in place.
    Subclasses give `compute(progress, cancel)` (the thread's work: no Blender data) and `finish(context, result)`."""

    _thread: threading.Thread | None = None
    _timer = None

    def run_work(self, context):
        if bpy.app.background:
            try:
                return self.finish(context, self.compute(lambda f, m: None, threading.Event()))
            except FacesmithError as exc:
                self.report({"ERROR"}, str(exc))
                return {"CANCELLED"}
        self._messages: queue.Queue = queue.Queue()
        self._cancel = threading.Event()
        self._outcome: list = []
        self._thread = threading.Thread(target=self.work, daemon=True)
        self._thread.start()
        wm = context.window_manager
        self._timer = wm.event_timer_add(0.1, window=context.window)
        wm.progress_begin(0, 100)
        wm.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def work(self) -> None:
        """Worker thread: only computes and queues; Blender data is touched on the main thread alone."""
        try:
            self._outcome.append(self.compute(lambda f, m: self._messages.put((f, m)), self._cancel))
        except FacesmithError as exc:
            self._outcome.append(exc)

    def modal(self, context, event):
        if event.type == "ESC":
            self._cancel.set()
        if event.type != "TIMER":
            return {"RUNNING_MODAL"}
        while not self._messages.empty():
            fraction, message = self._messages.get()
            context.window_manager.progress_update(int(100 * fraction))
            context.workspace.status_text_set(f"Facesmith: {message} (Esc cancels)")
        if self._thread.is_alive():
            return {"RUNNING_MODAL"}
        self.cleanup(context)
        outcome = self._outcome[0] if self._outcome else FacesmithError("the work stopped unexpectedly")
        if self._cancel.is_set():
            self.report({"INFO"}, "Facesmith: cancelled")
            return {"CANCELLED"}
        if isinstance(outcome, FacesmithError):
            self.report({"ERROR"}, str(outcome))
            return {"CANCELLED"}
        return self.finish(context, outcome)

    def cleanup(self, context) -> None:
        wm = context.window_manager
        wm.event_timer_remove(self._timer)
        wm.progress_end()
        context.workspace.status_text_set(None)


class FACESMITH_OT_reconstruct(BackgroundWork, bpy.types.Operator):
    bl_idname = "facesmith.reconstruct"
    bl_label = "Reconstruct"
    bl_description = "Fit FLAME to the photos and build a rigged, textured head"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        try:
            self._photos = photo_paths(context)
        except FacesmithError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        self._options = pipeline_options(context)
        return self.run_work(context)

    def compute(self, progress, cancel) -> HeadResult:
        from ..inference.pipeline import reconstruct

        return reconstruct(self._photos, self._options, progress, cancel)

    def finish(self, context, output: HeadResult):
        head = show_head(self, context, output)
        self.report({"INFO"}, f"Facesmith: built {head.mesh.name}")
        return {"FINISHED"}


def show_head(operator: bpy.types.Operator, context, output: HeadResult) -> Head:
    """Build `output` in the scene as the panel's head, with the panel's summary; report its warnings."""
    settings = context.scene.facesmith
    head = build_head(output.rig, output.textures, context.scene, settings.eyeballs, take_over_scene=False)
    if not settings.displacement:
        unlink_displacement(head.mesh.data.materials[0])
    settings.head = head.mesh
    photo = output.fit.photos[0]
    settings.summary = (f"{head.mesh.name}: {len(output.fit.photos)} photo(s), landmark RMS "
                        f"{photo.landmark_rms_px:.1f} px, {photo.backend}")  # fmt: skip
    settings.agreement = "\n".join(
        f"{Path(p.path).name}: agreement {p.agreement:.2f}" for p in output.fit.photos if p.agreement is not None
    )
    for warning in output.warnings:
        operator.report({"WARNING"}, warning)
    return head


class FACESMITH_OT_resolve_pins(BackgroundWork, HeadOperatorMixin, bpy.types.Operator):
    bl_idname = "facesmith.resolve_pins"
    bl_label = "Re-solve with Pins"
    bl_description = (
        "Rebuild the head from its photos with the pins it keeps: a new fit, rig, shape keys and textures in place "
        "of the old head (same name and collection); the panel's settings apply"
    )
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        from .pins import head_photos, head_pins

        head = active_head(context)
        try:
            self._pins = head_pins(head)  # checked before any work: a bad pin leaves the head as it is
            self._photos = [Path(bpy.path.abspath(p)) for p in head_photos(head)]
            missing = [str(p) for p in self._photos if not p.is_file()]
            if missing:
                raise FacesmithError(f"{head.name}: its photo {missing[0]} is missing: put it back there to re-solve")
        except FacesmithError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        self._head_name = head.name
        self._options = pipeline_options(context)
        return self.run_work(context)

    def compute(self, progress, cancel) -> HeadResult:
        from ..inference.pipeline import reconstruct

        return reconstruct(self._photos, self._options, progress, cancel, name=self._head_name, pins=self._pins)

    def finish(self, context, output: HeadResult):
        old = bpy.data.objects.get(self._head_name)
        parents = remove_head(old) if old is not None else ()
        head = show_head(self, context, output)
        for parent in parents:  # where the old head's collection was: the new one takes its place
            if head.collection.name not in parent.children:
                parent.children.link(head.collection)
        if parents and context.scene.collection not in parents:
            context.scene.collection.children.unlink(head.collection)
        residuals = ", ".join(f"{r:.1f}" for r in output.fit.pin_residuals_px)
        self.report({"INFO"}, f"Facesmith: re-solved {head.mesh.name} with {len(output.fit.pins)} pin(s)"
                              + (f" (residuals {residuals} px)" if residuals else ""))  # fmt: skip
        return {"FINISHED"}


def unlink_displacement(material: bpy.types.Material) -> None:
    output = next(n for n in material.node_tree.nodes if n.bl_idname == "ShaderNodeOutputMaterial")
    for link in list(output.inputs["Displacement"].links):
        material.node_tree.links.remove(link)


class FACESMITH_OT_add_photos(bpy.types.Operator):
    bl_idname = "facesmith.add_photos"
    bl_label = "Add Photos"
    bl_description = "Choose one or several photos of one person"

    files: CollectionProperty(type=bpy.types.OperatorFileListElement)
    directory: StringProperty(subtype="DIR_PATH")
    filter_image: bpy.props.BoolProperty(default=True, options={"HIDDEN"})

    def invoke(self, context, event):
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def execute(self, context):
        for f in self.files:
            context.scene.facesmith.photos.add().path = str(Path(self.directory) / f.name)
        return {"FINISHED"}


class FACESMITH_OT_clear_photos(bpy.types.Operator):
    bl_idname = "facesmith.clear_photos"
    bl_label = "Clear Photos"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        context.scene.facesmith.photos.clear()
        return {"FINISHED"}


class FACESMITH_OT_set_expression(HeadOperatorMixin, bpy.types.Operator):
    bl_idname = "facesmith.set_expression"
    bl_label = "Set Expression"
    bl_description = "Neutral: every expression key at 0; Fitted: the expression seen in the photo"
    bl_options = {"REGISTER", "UNDO"}

    mode: EnumProperty(items=[("NEUTRAL", "Neutral", ""), ("FITTED", "Fitted", "")])

    def execute(self, context):
        show_fitted(active_head(context), self.mode == "FITTED")
        return {"FINISHED"}


class FACESMITH_OT_rebuild_material(HeadOperatorMixin, bpy.types.Operator):
    bl_idname = "facesmith.rebuild_material"
    bl_label = "Rebuild Material"
    bl_description = "Recreate the skin material from the head's packed albedo and displacement images"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        head = active_head(context)
        albedo = bpy.data.images.get(f"{head.name}_albedo")
        height = bpy.data.images.get(f"{head.name}_displacement")
        if albedo is None or height is None:
            self.report({"ERROR"}, f"{head.name}: its texture images are gone; reconstruct again")
            return {"CANCELLED"}
        settings = context.scene.facesmith
        mat = skin_material(head.name, albedo, height, float(head.get("facesmith_displacement_range", 1e-4)),
                            settings.displacement)  # fmt: skip
        head.data.materials[0] = mat
        return {"FINISHED"}


class FACESMITH_OT_export(HeadOperatorMixin, bpy.types.Operator):
    bl_idname = "facesmith.export"
    bl_label = "Export Head"
    bl_description = "Write the head (mesh, rig, shape keys) as .glb or .fbx"

    format: EnumProperty(items=[("GLB", "glTF binary (.glb)", ""), ("FBX", "FBX (.fbx)", "")])
    filepath: StringProperty(subtype="FILE_PATH")

    def invoke(self, context, event):
        prefs = preferences(context)
        folder = bpy.path.abspath(prefs.output_dir) if prefs and prefs.output_dir else "//"
        self.filepath = str(Path(folder) / f"{active_head(context).name}.{self.format.lower()}")
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def execute(self, context):
        head = active_head(context)
        for obj in context.view_layer.objects:
            obj.select_set(False)
        rig = head.parent
        for obj in [head, rig, *[c for c in rig.children if c.type == "MESH"]]:
            obj.select_set(True)
        path = Path(bpy.path.abspath(self.filepath))
        (export_glb if self.format == "GLB" else export_fbx)(path, use_selection=True)
        self.report({"INFO"}, f"Facesmith: wrote {path}")
        return {"FINISHED"}


class FACESMITH_OT_import_arkit(ChooseFile, HeadOperatorMixin, bpy.types.Operator):
    bl_idname = "facesmith.import_arkit"
    bl_label = "Import ARKit Take"
    bl_description = "Key a Live Link Face CSV (ARKit blendshape weights per frame) onto the head's ARKit shape keys"
    bl_options = {"REGISTER", "UNDO"}

    filepath: StringProperty(subtype="FILE_PATH")
    filter_glob: StringProperty(default="*.csv", options={"HIDDEN"})

    def execute(self, context):
        from ..inference.arkit_csv import read_live_link_csv
        from .animate import key_take

        head = active_head(context)
        try:
            take = read_live_link_csv(bpy.path.abspath(self.filepath))
            frames, missing = key_take(head, take, context.scene, context.scene.frame_start)
        except FacesmithError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        for warning in take.warnings:
            self.report({"WARNING"}, warning)
        if missing:
            self.report({"WARNING"}, take.missing_message(head.name, missing))
        self.report({"INFO"}, f"Facesmith: keyed {frames} frames of {Path(self.filepath).name} on {head.name}")
        return {"FINISHED"}


class FACESMITH_OT_animate_video(BackgroundWork, ChooseFile, HeadOperatorMixin, bpy.types.Operator):
    bl_idname = "facesmith.animate_video"
    bl_label = "Animate from Video"
    bl_description = "Track the face in a video (or a folder of frames) and key the performance onto the head"
    bl_options = {"REGISTER", "UNDO"}

    filepath: StringProperty(subtype="FILE_PATH")
    filter_glob: StringProperty(default=";".join(f"*{s}" for s in VIDEO_SUFFIXES), options={"HIDDEN"})
    keys: EnumProperty(
        name="Keys",
        items=[(key, *shown) for key, shown in zip(ANIMATION_KEYS, (
            ("FLAME", "FLAME's expression keys and the jaw bone"),
            ("ARKit", "The head's ARKit keys (the jaw bone at rest: jawOpen holds the jaw)"),
        ), strict=True)],
        default=AnimateOptions.keys,
    )  # fmt: skip

    def execute(self, context):
        head = active_head(context)
        try:
            self._shape = head_identity(head)
        except FacesmithError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        self._options = pipeline_options(context)
        self._source = Path(bpy.path.abspath(self.filepath))
        return self.run_work(context)

    def compute(self, progress, cancel) -> AnimationResult:
        from ..inference.animate import Animator
        from ..inference.pipeline import load_pipeline_model

        animator = Animator(self._options, load_pipeline_model(self._options), AnimateOptions(keys=self.keys))
        return animator.run(self._source, self._shape, progress, cancel)

    def finish(self, context, animation: AnimationResult):
        from .animate import key_animation

        head = active_head(context)
        frames = key_animation(head, animation, context.scene)
        for warning in animation.warnings:
            self.report({"WARNING"}, warning)
        self.report({"INFO"}, f"Facesmith: keyed {frames} frames of {self._source.name} on {head.name}")
        return {"FINISHED"}
