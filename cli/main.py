"""`facesmith` command line. Expected failures print one line naming the file and the reason; exit codes are
listed in cli/heads.py and README."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

import numpy as np

from ..inference.animate import Animator
from ..inference.errors import FacesmithError
from ..inference.files import EXPORT_FORMATS
from ..inference.flame.dev_model import build_dev_model
from ..inference.flame.io import save_model_npz
from ..inference.flame.model import FlameModel
from ..inference.flame.paths import default_dev_model_path
from ..inference.options import (
    ANIMATION_KEYS,
    BACKENDS,
    CAMERA_KINDS,
    DEFAULTS,
    DEVICES,
    FITTED_EXPRESSION_MODES,
    REFINE_MODES,
    TEXTURE_SIZES,
    AnimateOptions,
    PipelineOptions,
    TrackOptions,
)
from ..inference.pins import read_pins
from ..inference.pipeline import (
    CancelledError,
    Reconstructor,
    load_pipeline_model,
    model_choice,
)
from .console import Console, printable, quiet_output
from .heads import (
    EXIT_FAILED,
    EXIT_OK,
    Job,
    WriteOptions,
    batch_jobs,
    merge_reports,
    parse_shard,
    run_jobs,
    shard_jobs,
    write_report,
)
from .interrupt import Interrupt, Interrupted, exit_code
from .outputs import check_folder, check_json_path, check_name, head_lock, remove_stale, removed_if_empty


def _add_flame_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--flame", metavar="PATH", help="FLAME model (.pkl or .npz); default: $FACESMITH_FLAME")


class Parser(argparse.ArgumentParser):
    """argparse, with its own error line escaped as every other line (it quotes the argument: a file name)."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {printable(message)}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="facesmith", description="Photos of a face to a rigged FLAME head.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging and third-party output")
    sub = parser.add_subparsers(dest="command", required=True)

    model = sub.add_parser("model", help="inspect or build FLAME model files").add_subparsers(
        dest="model_command", required=True
    )
    info = model.add_parser("info", help="print the model's sizes and source")
    _add_flame_flag(info)
    info.add_argument("--json", action="store_true", help="print JSON")
    info.set_defaults(func=cmd_model_info)

    build = model.add_parser("build-dev", help="assemble the development model from staged FLAME parts")
    build.add_argument("--parts", required=True, type=Path, help="folder with the parts (../shared/flame)")
    build.add_argument("-o", "--output", type=Path, default=default_dev_model_path(), help="output .npz")
    build.set_defaults(func=cmd_model_build_dev)

    fit = sub.add_parser("fit", help="fit FLAME to one or more photos of one person")
    fit.add_argument("photos", nargs="+", type=Path, metavar="PHOTO")
    fit.add_argument("--json", type=Path, metavar="OUT.json", help="write the result as OUT.json (and OUT.npz)")
    _add_photo_options(fit)
    fit.set_defaults(func=cmd_fit)

    rec = sub.add_parser("reconstruct", help="one rigged head from photos of one person (.blend/.glb/.fbx)")
    rec.add_argument("photos", nargs="+", type=Path, metavar="PHOTO")
    rec.add_argument("-o", "--output", type=Path, required=True, metavar="OUTDIR")
    rec.add_argument("--name", help="output name (default: the first photo's name)")
    rec.add_argument(
        "--pins", type=Path, metavar="PINS.json",
        help='correct the head with pins: a JSON list of {"photo": NAME or INDEX, "face": F, "bary": [a, b, c], '
             '"xy": [x, y]} (or "vertex": V instead of face and bary); xy in the photo\'s pixels, x right, y down',
    )  # fmt: skip
    _add_output_options(rec)
    _add_photo_options(rec)
    rec.set_defaults(func=cmd_reconstruct)

    batch = sub.add_parser("batch", help="one rigged head per photo in a folder; carries on past bad files")
    batch.add_argument("input", type=Path, metavar="INDIR")
    batch.add_argument("output", type=Path, metavar="OUTDIR")
    batch.add_argument("--engine", choices=("local", "ray"), default="local", help="where heads are made")
    batch.add_argument("--address", help="Ray cluster address (default: a local Ray started for this run)")
    batch.add_argument("--workers", type=int, default=2, help="Ray workers (each keeps Blender and the models)")
    batch.add_argument(
        "--shard", metavar="I/N", help="only shard I of N (for Slurm arrays, render farms); see batch-merge"
    )
    _add_output_options(batch)
    _add_photo_options(batch)
    batch.set_defaults(func=cmd_batch)

    merge = sub.add_parser("batch-merge", help="combine the shard reports of a batch folder into batch_report.json")
    merge.add_argument("output", type=Path, metavar="OUTDIR")
    merge.set_defaults(func=cmd_batch_merge)

    synth = sub.add_parser("synth", help="synthetic labelled face images (needs training/; not in the add-on)")
    synth.add_argument("--n", type=int, required=True, help="number of images")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder for shards and manifest")
    synth.add_argument("--size", type=int, default=256, help="image side in pixels")
    synth.add_argument("--workers", type=int, default=2)
    synth.add_argument("--shard-size", type=int, default=250)
    synth.add_argument(
        "--noncommercial-cutouts", action="store_true",
        help="also paste UTKFace cut-outs as occluders (NON-COMMERCIAL data: experiments only; recorded in the manifest)",
    )  # fmt: skip
    _add_flame_flag(synth)
    synth.set_defaults(func=cmd_synth)

    train = sub.add_parser(
        "train", help="train the dense-landmark network on synth data (needs training/ and torch; torchrun for DDP)"
    )
    train.add_argument("--config", type=Path, required=True, help="TOML config (see training/configs/dense.toml)")
    train.add_argument("--out", type=Path, required=True, metavar="RUN_DIR", help="run folder; an existing one resumes")
    _add_flame_flag(train)
    train.set_defaults(func=cmd_train)

    video = sub.add_parser("animate", help="track a face in footage and key the performance onto a head's rig")
    video.add_argument(
        "footage", type=Path, metavar="VIDEO", help="a video file, or a folder of frames (sorted by name)"
    )
    video.add_argument(
        "--rig", type=Path, metavar="HEAD.blend",
        help="a head Facesmith wrote (default: a head reconstructed from frames of the footage itself)",
    )  # fmt: skip
    video.add_argument("--identity-frames", type=int, default=AnimateOptions.identity_frames,
                       help="without --rig: how many frames, spread over the footage, the head is built from")  # fmt: skip
    video.add_argument("-o", "--output", type=Path, required=True, metavar="OUT.blend")
    video.add_argument("--glb", action="store_true", help="also write OUT.glb with the animation")
    video.add_argument("--start", type=int, default=TrackOptions.start, help="first frame")
    video.add_argument("--end", type=int, help="one past the last frame (default: to the end)")
    video.add_argument("--stride", type=int, default=TrackOptions.stride, help="track every N-th frame")
    video.add_argument(
        "--smooth", type=int, default=TrackOptions.smooth_frames, help="smoothing window, frames (1: off)"
    )
    video.add_argument("--fps", type=float, default=TrackOptions.fps, help="frame rate of a folder of frames")
    video.add_argument(
        "--keys", choices=ANIMATION_KEYS, default=AnimateOptions.keys,
        help="animate FLAME's expression keys and the jaw bone, or the ARKit keys (jaw bone at rest)",
    )  # fmt: skip
    video.add_argument("--overwrite", action="store_true", help="replace OUT.blend if it exists")
    video.add_argument(
        "--device", choices=DEVICES, default=DEFAULTS.device, help="where the dense network runs (auto: CUDA if offered)"
    )  # fmt: skip
    _add_flame_flag(video)
    video.set_defaults(func=cmd_animate)

    animate = sub.add_parser(
        "animate-arkit", help="key a Live Link Face CSV (ARKit weights per frame) onto a head's ARKit shape keys"
    )
    animate.add_argument("csv", type=Path, metavar="CSV")
    animate.add_argument("--rig", type=Path, required=True, metavar="HEAD.blend", help="a head Facesmith wrote")
    animate.add_argument("-o", "--output", type=Path, required=True, metavar="OUT.blend")
    animate.add_argument("--capture-fps", type=float, help="the take's capture rate (default: from its timecodes)")
    animate.add_argument("--start", type=int, default=1, help="scene frame of the take's first row")
    animate.add_argument("--overwrite", action="store_true", help="replace OUT.blend if it exists")
    animate.set_defaults(func=cmd_animate_arkit)

    export = sub.add_parser("export-onnx", help="a trained run as an ONNX dense-landmark network (parity-checked)")
    export.add_argument("run", type=Path, metavar="RUN_DIR")
    export.add_argument("-o", "--output", type=Path, required=True, metavar="FILE.onnx")
    export.set_defaults(func=cmd_export_onnx)
    return parser


def _add_photo_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--landmarks", choices=("auto", *BACKENDS), default=DEFAULTS.landmarks, help="landmark backend (auto: best installed)"
    )  # fmt: skip
    parser.add_argument(
        "--device", choices=DEVICES, default=DEFAULTS.device, help="where the dense network runs (auto: CUDA if offered)"
    )  # fmt: skip
    parser.add_argument("--no-fallback", action="store_true", help="do not try another backend when none finds a face")
    parser.add_argument("--face-index", type=int, default=DEFAULTS.face_index, help="which face, by size (0 = largest)")
    parser.add_argument("--camera", choices=CAMERA_KINDS, default=DEFAULTS.fit.camera)
    parser.add_argument(
        "--refine", choices=REFINE_MODES, default=DEFAULTS.fit.refine,
        help="several photos: refine the shape until the photos agree on the skin's colours (auto: with 2 or more)",
    )  # fmt: skip
    _add_flame_flag(parser)


def _strength(text: str) -> float:
    """A finite, non-negative scale (argparse type)."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (np.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number ≥ 0")
    return value


def _add_output_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-fbx", action="store_true", help="skip the .fbx")
    parser.add_argument("--no-preview", action="store_true", help="skip the preview render")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs (default: keep them)")
    parser.add_argument(
        "--texture-size", type=int, default=DEFAULTS.texture_size, choices=TEXTURE_SIZES, help="UV texture size"
    )
    parser.add_argument("--flat-texture", action="store_true", help="a flat skin colour instead of the photo texture")
    parser.add_argument(
        "--detail-strength", type=_strength, default=DEFAULTS.detail_strength, metavar="X",
        help=f"scale of the fine relief recovered from shading: 0 none, 1 as measured (default {DEFAULTS.detail_strength:g})",
    )  # fmt: skip
    parser.add_argument(
        "--keep-photo-colour", action="store_true",
        help="keep the photo's white balance and exposure in the albedo (default: estimated and divided out)",
    )  # fmt: skip
    parser.add_argument(
        "--fitted-expression", choices=FITTED_EXPRESSION_MODES, default=DEFAULTS.fitted_expression,
        help="the head shows the photo's expression with FLAME's key and jaw bone, or as ARKit weights",
    )  # fmt: skip


def pipeline_options(args: argparse.Namespace) -> PipelineOptions:
    options = dataclasses.replace(
        DEFAULTS,
        flame_path=args.flame or "",
        landmarks=args.landmarks,
        device=args.device,
        fallback=not args.no_fallback,
        face_index=args.face_index,
        fit=dataclasses.replace(DEFAULTS.fit, camera=args.camera, refine=args.refine),
    )
    if hasattr(args, "flat_texture"):
        options = dataclasses.replace(options, textures=not args.flat_texture, texture_size=args.texture_size,
                                      fitted_expression=args.fitted_expression,
                                      colour_constancy=not args.keep_photo_colour,
                                      detail_strength=args.detail_strength)  # fmt: skip
    return options


def write_options(args: argparse.Namespace) -> WriteOptions:
    formats = tuple(f for f in EXPORT_FORMATS if not (f == "fbx" and args.no_fbx))
    return WriteOptions(formats, not args.no_preview, args.overwrite)


def _model(args: argparse.Namespace, console: Console) -> tuple[PipelineOptions, FlameModel]:
    """The options and the model they name; a bad model fails here, before any head; its warnings print once."""
    options = pipeline_options(args)
    model = load_pipeline_model(options)
    for warning in model.warnings:
        console.warn(warning)
    return options, model


def _reconstructor(args: argparse.Namespace, console: Console) -> Reconstructor:
    return Reconstructor(*_model(args, console))


def cmd_model_info(args: argparse.Namespace, console: Console, interrupt: Interrupt) -> int:
    options = dataclasses.replace(DEFAULTS, flame_path=args.flame or "")
    model = load_pipeline_model(options)
    info = {**model.info(), "origin": model_choice(options).origin}
    for warning in model.warnings:
        console.warn(warning)
    if args.json:
        console.line(json.dumps(info, indent=2))
    else:
        for key, value in info.items():
            console.line(f"{key:24s} {value}")
    return EXIT_OK


def cmd_model_build_dev(args: argparse.Namespace, console: Console, interrupt: Interrupt) -> int:
    model = build_dev_model(args.parts)
    path = save_model_npz(model, args.output)
    console.line(f"wrote {path}: {model.description}, {model.n_vertices} vertices")
    return EXIT_OK


def cmd_fit(args: argparse.Namespace, console: Console, interrupt: Interrupt) -> int:
    if args.json:
        check_json_path(args.json)
    with _reconstructor(args, console) as reconstructor:
        result = reconstructor.fit(args.photos, cancel=interrupt.cancel)
    for warning in result.warnings:
        if warning not in reconstructor.model.warnings:
            console.warn(warning)
    for p in result.photos:
        console.line(
            f"{p.path}: landmark RMS {p.landmark_rms_px:.2f} px ({p.backend}, {p.n_faces} face(s)), "
            f"fit {result.timings_ms['fit']:.0f} ms"
        )
    if args.json:
        npz, _ = result.save(args.json.with_suffix(""))
        console.line(f"wrote {args.json} and {npz.name}")
    return EXIT_OK


def cmd_reconstruct(args: argparse.Namespace, console: Console, interrupt: Interrupt) -> int:
    name = check_name(args.name if args.name is not None else args.photos[0].stem)
    check_folder(args.output)
    remove_stale(args.output)
    if args.output.is_dir():
        with head_lock(args.output, name):  # another run writing this head: say so before any work
            pass
    with removed_if_empty(args.output), _reconstructor(args, console) as reconstructor:
        pins = () if args.pins is None else read_pins(args.pins, args.photos, reconstructor.model)  # before any work
        jobs = [Job(name, tuple(args.photos), pins)]
        outcomes, stopped = run_jobs(
            reconstructor, jobs, args.output, write_options(args), interrupt.cancel, console,
            reconstructor.model.warnings,
        )  # fmt: skip
    if stopped:
        return exit_code(interrupt.signum)
    outcome = outcomes[0]
    if outcome.status == "failed":
        console.error(outcome.message)
        return EXIT_FAILED
    console.line(f"{name}: {outcome.status} {outcome.message}")
    for path in outcome.outputs:
        console.line(f"  {path}")
    return EXIT_OK


def cmd_batch(args: argparse.Namespace, console: Console, interrupt: Interrupt) -> int:
    shard = parse_shard(args.shard) if args.shard else None
    jobs, notes = batch_jobs(args.input, args.output)
    if shard is not None:
        jobs = shard_jobs(jobs, *shard)
    check_folder(args.output)
    remove_stale(args.output)
    for note in notes:
        console.warn(note)
    outcomes, stopped = [], False
    try:
        if args.engine == "ray":
            outcomes, stopped = _batch_on_ray(args, jobs, console, interrupt)
        else:
            with _reconstructor(args, console) as reconstructor:
                outcomes, stopped = run_jobs(
                    reconstructor, jobs, args.output, write_options(args), interrupt.cancel, console,
                    reconstructor.model.warnings,
                )  # fmt: skip
    finally:  # also when stopped, or interrupted twice: the report lists what finished
        report = write_report(args.output, args.input, jobs, outcomes, stopped or interrupt.cancel.is_set(), shard)
    failed = [o for o in outcomes if o.status == "failed"]
    ok = sum(o.status == "ok" for o in outcomes)
    skipped = len(outcomes) - ok - len(failed)
    summary = f"{ok} converted, {skipped} skipped, {len(failed)} failed"
    if stopped:
        summary += f", {len(jobs) - len(outcomes)} not run (stopped)"
    console.line(f"{summary}; report: {report}")
    for o in failed:
        console.line(f"  failed: {o.name}: {o.message}")
    if stopped:
        return exit_code(interrupt.signum)
    return EXIT_FAILED if failed else EXIT_OK


def _batch_on_ray(args: argparse.Namespace, jobs: list[Job], console: Console, interrupt: Interrupt):
    from .ray_engine import run_jobs_on_ray

    if args.workers < 1:
        raise FacesmithError("--workers must be at least 1")
    options, model = _model(args, console)  # each worker loads its own copy
    return run_jobs_on_ray(
        jobs, args.output.resolve(), options, write_options(args), interrupt.cancel, console, args.address,
        args.workers, model.warnings,
    )  # fmt: skip


def cmd_batch_merge(args: argparse.Namespace, console: Console, interrupt: Interrupt) -> int:
    path = merge_reports(args.output)
    report = json.loads(path.read_text())
    console.line(f"{report['ok']} converted, {report['skipped']} skipped, {report['failed']} failed; report: {path}")
    return EXIT_FAILED if report["failed"] else EXIT_OK


def cmd_synth(args: argparse.Namespace, console: Console, interrupt: Interrupt) -> int:
    try:
        from ..training.synth.shards import build_engine, generate
    except ImportError as exc:  # the Blender extension ships without training/
        console.error(f"`synth` needs the training/ package of a source checkout ({exc})")
        return EXIT_FAILED
    if args.n < 1 or args.size < 32 or args.workers < 1 or args.shard_size < 1:
        console.error("--n, --workers and --shard-size must be positive and --size at least 32")
        return EXIT_FAILED
    check_folder(args.out)
    model = load_pipeline_model(dataclasses.replace(DEFAULTS, flame_path=args.flame or ""))
    for warning in model.warnings:
        console.warn(warning)
    engine, sources = build_engine(model, args.size, args.noncommercial_cutouts, log=console.line)
    manifest = generate(engine, args.n, args.seed, args.out, args.workers, args.shard_size, sources, console.line)
    console.line(
        f"wrote {args.n} images in {len(manifest['shards'])} shard(s) to {args.out} "
        f"({manifest['images_per_second']:.2f} images/s); manifest.json, grid.png"
    )
    return EXIT_OK


def _training(console: Console, what: str):
    """training.dense, or None (with one line saying why) where this install has no training/ or no torch."""
    try:
        from ..training.dense import export, train
    except ImportError as exc:  # the Blender extension ships without training/ and torch
        console.error(f"`{what}` needs the training/ package of a source checkout and torch ({exc})")
        return None
    return train, export


def cmd_train(args: argparse.Namespace, console: Console, interrupt: Interrupt) -> int:
    mods = _training(console, "train")
    if mods is None:
        return EXIT_FAILED
    train, _ = mods
    try:
        cfg = train.load_config(args.config)
    except (OSError, ValueError) as exc:  # both name the file
        console.error(str(exc))
        return EXIT_FAILED
    model = load_pipeline_model(dataclasses.replace(DEFAULTS, flame_path=args.flame or ""))
    try:
        result = train.train(
            cfg, args.out, model, args.config.read_text(), console.line, interrupt.cancel.is_set, console.err
        )
    except (OSError, ValueError) as exc:
        console.error(str(exc))
        return EXIT_FAILED
    if interrupt.cancel.is_set():
        return exit_code(interrupt.signum)
    console.line(f"trained {args.out} to step {result['step']}; " + ", ".join(
        f"{k} {v:.4g}" for k, v in result.items() if k.startswith("val_")))  # fmt: skip
    return EXIT_OK


def _blend_output(rig: Path | None, output: Path, overwrite: bool) -> None:
    """--rig (if given) is an existing .blend; -o a .blend path that may be written; checked before any work."""
    from .outputs import OutputError

    if rig is not None and (not rig.is_file() or rig.suffix.lower() != ".blend"):
        raise OutputError(f"{rig}: --rig takes an existing .blend file (a head Facesmith wrote)")
    if output.suffix.lower() != ".blend":
        raise OutputError(f"{output}: -o takes a .blend file path")
    if output.exists() and not overwrite:
        raise OutputError(f"{output}: exists (--overwrite replaces it)")
    check_folder(output.parent)


def animate_options(args: argparse.Namespace) -> AnimateOptions:
    track = TrackOptions(args.start, args.end, max(1, args.stride), args.smooth, fps=args.fps)
    return AnimateOptions(track, args.keys, args.identity_frames)


def open_rig(rig: Path) -> tuple[object, np.ndarray]:
    """The head of the .blend at `rig` (opened in place of bpy's current file) and its identity (β); an error
    names the file."""
    from ..addon.animate import open_head
    from ..addon.head import head_identity

    try:
        head = open_head(rig)
        return head, head_identity(head)
    except FacesmithError as exc:
        raise FacesmithError(f"{rig}: {exc}") from None


def cmd_animate(args: argparse.Namespace, console: Console, interrupt: Interrupt) -> int:
    """Footage -> tracked performance (inference/animate.py) -> keyframes on the rig (HEAD.blend's, or a head built
    from the footage) -> OUT.blend. Inputs are checked before any work; a stopped or failed run leaves nothing
    behind."""
    import tempfile

    from ..inference.progress import ProgressBar
    from ..inference.track import footage_frames

    options = animate_options(args)
    _, count, _ = footage_frames(args.footage, options.track)  # the footage checked before any work
    _blend_output(args.rig, args.output, args.overwrite)
    if args.rig is not None:  # its identity checked before the model loads
        head, shape = open_rig(args.rig)
    pipeline = dataclasses.replace(DEFAULTS, flame_path=args.flame or "", device=args.device)
    animator = Animator(pipeline, load_pipeline_model(pipeline), options)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".facesmith-animate-", dir=args.output.parent) as staging:
        if args.rig is None:  # the identity from the footage: a head reconstructed from frames spread over it
            head, shape = open_rig(staged_head(args, animator, Path(staging), console, interrupt))
        bar = ProgressBar(count, 0, console.err)
        animation = animator.run(args.footage, shape, lambda f, m: bar.update(round(f * count), m), interrupt.cancel)
        bar.close()
        for warning in animation.warnings:
            console.warn(warning)
        from ..addon.animate import write_animation

        keyed, written = write_animation(head, animation, args.output, args.glb)
    console.line(f"{args.output}: {keyed} frames of {args.footage.name} at {animation.tracked.fps:g} fps on "
                 f"{head.name}")  # fmt: skip
    for path in written[1:]:
        console.line(f"  {path}")
    return EXIT_OK


def staged_head(
    args: argparse.Namespace, animator: Animator, staging: Path, console: Console, interrupt: Interrupt
) -> Path:
    """The .blend, in `staging`, of a head reconstructed from frames of the footage (Animator.head_from_footage)."""
    from ..addon.output import write_head

    head, tried = animator.head_from_footage(args.footage, args.output.stem, staging, interrupt.cancel)
    written = write_head(head, staging, ("blend",), preview=False, cancel=interrupt.cancel)
    for warning in head.warnings:  # e.g. a frame without a face, skipped: named as the user's file and frame
        console.warn(warning)
    console.note(f"{args.footage.name}: head built from {len(head.fit.photos)} of {tried} frames")
    return next(p for p in written.files if p.suffix == ".blend")


def cmd_animate_arkit(args: argparse.Namespace, console: Console, interrupt: Interrupt) -> int:
    """Open HEAD.blend, key the take on its head, save OUT.blend (atomically); inputs checked before bpy starts."""
    from ..inference.arkit_csv import read_live_link_csv

    take = read_live_link_csv(args.csv, args.capture_fps)
    for warning in take.warnings:
        console.warn(warning)
    _blend_output(args.rig, args.output, args.overwrite)
    from ..addon.animate import write_take_animation

    name, frames, missing, scene = write_take_animation(args.rig, take, args.output, args.start)
    if missing:
        console.warn(take.missing_message(name, missing))
    console.line(f"{args.output}: {frames} frames of {args.csv.name} (captured at {take.capture_fps:g} fps) on "
                 f"{name}, {scene}")  # fmt: skip
    return EXIT_OK


def cmd_export_onnx(args: argparse.Namespace, console: Console, interrupt: Interrupt) -> int:
    mods = _training(console, "export-onnx")
    if mods is None:
        return EXIT_FAILED
    _, export = mods
    try:
        info = export.export(args.run, args.output)
    except (OSError, RuntimeError) as exc:
        console.error(str(exc))
        return EXIT_FAILED
    console.line(f"wrote {args.output} ({info['bytes'] / 1e6:.1f} MB, step {info['steps']}); onnxruntime vs torch "
                 f"max abs difference {info['parity_max_abs']:.1e}")  # fmt: skip
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command. Without `argv`: the arguments after `--` when Blender passes them, else sys.argv."""
    if argv is None:
        argv = sys.argv[sys.argv.index("--") + 1 :] if "--" in sys.argv else sys.argv[1:]
    args = build_parser().parse_args(list(argv))
    with Interrupt() as interrupt, quiet_output(not args.verbose) as console:
        try:
            return args.func(args, console, interrupt)
        except CancelledError:
            return exit_code(interrupt.signum)
        except Interrupted as stop:
            return exit_code(stop.signum)
        except FacesmithError as exc:
            console.error(str(exc))
            return EXIT_FAILED
        except OSError as exc:  # the file system refused (a full disk, permissions): the file and the reason
            console.error(f"{exc.filename}: {exc.strerror}" if exc.filename and exc.strerror else str(exc))
            return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
