"""`facesmith` command line. Expected failures print one line and exit non-zero."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from .camera import CAMERA_KINDS
from .detect import BACKENDS
from .dev_model import build_dev_model
from .errors import FacesmithError
from .files import atomic_write
from .fit import FitOptions
from .flame_io import save_model_npz
from .flame_model import FlameModel
from .model_paths import default_dev_model_path, load_model, resolve_flame_path
from .pipeline import PipelineOptions, default_embedding, fit_photos

log = logging.getLogger("facesmith")


def _add_flame_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--flame", metavar="PATH", help="FLAME model (.pkl or .npz); default: $FACESMITH_FLAME")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="facesmith", description="Photos of a face to a rigged FLAME head.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
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
    fit.add_argument("--json", type=Path, metavar="OUT", help="write the result as JSON (and OUT.npz beside it)")
    _add_photo_options(fit)
    fit.set_defaults(func=cmd_fit)

    rec = sub.add_parser("reconstruct", help="one rigged head from photos of one person (.blend/.glb/.fbx)")
    rec.add_argument("photos", nargs="+", type=Path, metavar="PHOTO")
    rec.add_argument("-o", "--output", type=Path, required=True, metavar="OUTDIR")
    rec.add_argument("--name", help="output name (default: the first photo's name)")
    _add_output_options(rec)
    _add_photo_options(rec)
    rec.set_defaults(func=cmd_reconstruct)

    batch = sub.add_parser("batch", help="one rigged head per photo in a folder; carries on past bad files")
    batch.add_argument("input", type=Path, metavar="INDIR")
    batch.add_argument("output", type=Path, metavar="OUTDIR")
    _add_output_options(batch)
    _add_photo_options(batch)
    batch.set_defaults(func=cmd_batch)
    return parser


def _add_photo_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--landmarks", choices=BACKENDS, default="mediapipe", help="landmark backend")
    parser.add_argument("--no-fallback", action="store_true", help="do not try dlib when the backend finds no face")
    parser.add_argument("--face-index", type=int, default=0, help="which face, by size (0 = largest)")
    parser.add_argument("--camera", choices=CAMERA_KINDS, default="orthographic")
    _add_flame_flag(parser)


def _add_output_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-fbx", action="store_true", help="skip the .fbx")
    parser.add_argument("--no-preview", action="store_true", help="skip the preview render")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs (default: keep them)")
    parser.add_argument("--texture-size", type=int, default=1024, choices=(512, 1024, 2048), help="UV texture size")
    parser.add_argument("--flat-texture", action="store_true", help="a flat skin colour instead of the photo texture")


def _pipeline_options(args: argparse.Namespace) -> PipelineOptions:
    return PipelineOptions(
        landmarks=args.landmarks,
        fallback=None if args.no_fallback else "dlib",
        face_index=args.face_index,
        fit=FitOptions(camera=args.camera),
    )


def _load_model(args: argparse.Namespace) -> FlameModel:
    choice = resolve_flame_path(args.flame, os.environ, dev_model=default_dev_model_path())
    return load_model(choice, donor=default_dev_model_path())


def cmd_model_info(args: argparse.Namespace) -> int:
    choice = resolve_flame_path(args.flame, os.environ, dev_model=default_dev_model_path())
    model = load_model(choice, donor=default_dev_model_path())
    info = {**model.info(), "origin": choice.origin}
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        for key, value in info.items():
            print(f"{key:24s} {value}")
    return 0


def cmd_fit(args: argparse.Namespace) -> int:
    model = _load_model(args)
    result = fit_photos(args.photos, model, _pipeline_options(args), embedding=default_embedding(model))
    for warning in result.warnings:
        if warning not in model.warnings:  # those were logged when the model loaded
            log.warning(warning)
    for p in result.photos:
        print(
            f"{p.path}: landmark RMS {p.landmark_rms_px:.2f} px ({p.backend}, {p.n_faces} face(s)), "
            f"fit {result.timings_ms['fit']:.0f} ms"
        )
    if args.json:
        result.save(args.json.with_suffix(""))
        if args.json.suffix != ".json":  # keep the exact name the user asked for
            atomic_write(args.json, lambda f: f.write(json.dumps(result.to_json(), indent=1).encode()))
        print(f"wrote {args.json}")
    return 0


def _convert_options(args: argparse.Namespace):
    # Blender-side code is imported only by the commands that build heads: the rest never needs bpy.
    from ..addon.batch import ConvertOptions
    from ..addon.head import EXPORT_FORMATS

    formats = tuple(f for f in EXPORT_FORMATS if not (f == "fbx" and args.no_fbx))
    return ConvertOptions(
        formats,
        not args.no_preview,
        args.overwrite,
        _pipeline_options(args),
        textures=not args.flat_texture,
        texture_size=args.texture_size,
    )


def cmd_reconstruct(args: argparse.Namespace) -> int:
    from ..addon.batch import Resources, convert

    model = _load_model(args)
    name = args.name or args.photos[0].stem
    resources = Resources(embedding=default_embedding(model))
    outcome = convert(args.photos, args.output, name, model, _convert_options(args), resources)
    print(f"{name}: {outcome.status} {outcome.message}")
    for path in outcome.outputs:
        print(f"  {path}")
    return 0 if outcome.status == "ok" else 1


def cmd_batch(args: argparse.Namespace) -> int:
    from ..addon.batch import run_batch

    if not args.input.is_dir():
        raise FacesmithError(f"{args.input}: not a folder")
    model = _load_model(args)
    outcomes = run_batch(args.input, args.output, model, _convert_options(args), default_embedding(model))
    failed = [o for o in outcomes if o.status == "failed"]
    ok = sum(o.status == "ok" for o in outcomes)
    print(
        f"{ok} converted, {len(outcomes) - ok - len(failed)} skipped, {len(failed)} failed; report: "
        f"{args.output / 'batch_report.json'}"
    )
    for o in failed:
        print(f"  failed: {o.message}")
    return 1 if failed else 0


def cmd_model_build_dev(args: argparse.Namespace) -> int:
    model = build_dev_model(args.parts)
    path = save_model_npz(model, args.output)
    print(f"wrote {path}: {model.description}, {model.n_vertices} vertices")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING, format="facesmith: %(levelname)s: %(message)s"
    )
    try:
        return args.func(args)
    except FacesmithError as exc:
        print(f"facesmith: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
