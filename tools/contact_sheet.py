"""Before/after contact sheet: reconstruct photos with several Facesmith versions, one PNG to look at.

Each run is LABEL=PYTHON[:PYTHONPATH]: the Python that runs `-m facesmith.cli.main reconstruct PHOTO
-o OUT/LABEL/NAME --name NAME --no-fbx --overwrite` (PYTHONPATH, if given, is put in its environment, e.g.
a directory holding a `facesmith` link to an older worktree). A photo whose NAME_preview.png already
exists in a run's folder is not redone, so a rerun only composes. The sheet has a row per photo:
photo | render | turned 45° for every run (cut from the preview's 4 panels), the run's label over its
columns and the photo's file name at the left; panels are cut to the head (the photo to the first run's
render's box, as it is drawn at the photo's camera) unless --no-zoom; a failed reconstruction shows a grey panel with the
error's first line. More rows than --rows-per-sheet are split into SHEET_1.png, SHEET_2.png, ...

Usage:
    .venv/bin/python tools/contact_sheet.py PHOTO... --out /tmp/contact/runs --sheet /tmp/contact/sheet.png \
        --run before=/work/main/.venv/bin/python:/tmp/fsb-pkg --run after=/work/main/.venv/bin/python
    .venv/bin/python tools/contact_sheet.py --folder ../shared/data/train_faces --count 20 --seed 1 \
        --run now=.venv/bin/python --out /tmp/contact/runs --sheet /tmp/contact/sheet.png
    (--list FILE reads photo paths, one a line; --compose-only draws what exists without reconstructing.)
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageChops, ImageDraw

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}
NAME_WIDTH = 150
HEADER_HEIGHT = 22
GREY = (128, 128, 128)
BACKGROUND = (40, 40, 40)


@dataclass(frozen=True)
class Run:
    label: str
    python: str
    pythonpath: str | None


def parse_run(text: str) -> Run:
    label, sep, rest = text.partition("=")
    if not sep or not label or not rest:
        raise argparse.ArgumentTypeError(f"expected LABEL=PYTHON[:PYTHONPATH], got {text!r}")
    python, _, pythonpath = rest.partition(":")
    if os.sep in python:  # a path: absolute, since each reconstruction runs in its output folder
        python = os.path.abspath(python)
    return Run(label, python, os.path.abspath(pythonpath) if pythonpath else None)


def photo_name(photo: Path) -> str:
    """The output name: the file name up to its first dot (UTKFace's `X.jpg.chip.jpg` -> `X`)."""
    return photo.name.split(".")[0]


def reconstruct(run: Run, photo: Path, out: Path) -> Path:
    """The run's preview for the photo, reconstructing it unless it exists; the log sits beside it."""
    name = photo_name(photo)
    folder = out / run.label / name
    preview = folder / f"{name}_preview.png"
    if preview.exists():
        return preview
    folder.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    if run.pythonpath:
        env["PYTHONPATH"] = run.pythonpath
    command = [
        run.python,
        "-m",
        "facesmith.cli.main",
        "reconstruct",
        str(photo.resolve()),
        "-o",
        str(folder.resolve()),
        "--name",
        name,
        "--no-fbx",
        "--overwrite",
    ]
    print(f"[{run.label}] {name}", file=sys.stderr, flush=True)
    with open(out / run.label / f"{name}.log", "w") as log:
        subprocess.run(command, env=env, cwd=out, stdout=log, stderr=subprocess.STDOUT, check=False)
    return preview


def error_line(log: Path) -> str:
    """The first line of the run's error: the first line naming an error, else the log's last line."""
    if not log.exists():
        return "not run"
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    for line in lines:
        if "error" in line.lower() and not line.startswith("File "):
            return line
    return f"no preview, log ends: {lines[-1]}" if lines else "no preview, empty log"


def fit(image: Image.Image, size: int) -> Image.Image:
    """The image scaled to fit a size x size square, centred on the background colour."""
    image = image.convert("RGB")
    scale = size / max(image.size)
    scaled = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))), Image.LANCZOS)
    square = Image.new("RGB", (size, size), BACKGROUND)
    square.paste(scaled, ((size - scaled.width) // 2, (size - scaled.height) // 2))
    return square


def text_panel(text: str, size: int) -> Image.Image:
    panel = Image.new("RGB", (size, size), GREY)
    ImageDraw.Draw(panel).multiline_text((4, 4), "\n".join(textwrap.wrap(text, 30)[:12]), fill="black")
    return panel


def head_box(render: Image.Image, margin: float = 0.06) -> tuple[int, int, int, int]:
    """A square from the crown down around the render's head (the neck below is cut off); the
    background is the render's corner colour."""
    corner = render.getpixel((0, 0))
    diff = ImageChops.difference(render.convert("RGB"), Image.new("RGB", render.size, corner))
    box = diff.convert("L").point(lambda v: 255 if v > 6 else 0).getbbox()
    if box is None:
        return (0, 0, render.width, render.height)
    side = min(max(render.size), round((box[2] - box[0]) * (1 + 2 * margin) * 1.15))
    left = min(max(0, (box[0] + box[2] - side) // 2), max(0, render.width - side))
    top = min(max(0, box[1] - round(margin * side)), max(0, render.height - side))
    return (left, top, left + side, top + side)


def row_panels(photo: Path, runs: list[Run], out: Path, size: int, zoom: bool) -> list[Image.Image]:
    """photo | render | turned for every run; zoomed, the photo is cut to the first run's head box."""
    name = photo_name(photo)
    photo_panel: Image.Image | None = None
    panels: list[Image.Image] = []
    for run in runs:
        preview = out / run.label / name / f"{name}_preview.png"
        if preview.exists():
            sheet = Image.open(preview).convert("RGB")
            width = sheet.width // 4
            cut = [sheet.crop((k * width, 0, (k + 1) * width, sheet.height)) for k in range(4)]
            box = head_box(cut[1]) if zoom else (0, 0, width, sheet.height)
            if photo_panel is None:
                photo_panel = fit(cut[0].crop(box), size)
            turned = cut[3].crop(head_box(cut[3])) if zoom else cut[3]
            panels += [fit(cut[1].crop(box), size), fit(turned, size)]
        else:
            failed = text_panel(f"{run.label} failed: {error_line(out / run.label / f'{name}.log')}", size)
            panels += [failed, failed]
    return [photo_panel or fit(Image.open(photo), size)] + panels


def compose(photos: list[Path], runs: list[Run], out: Path, size: int, zoom: bool) -> Image.Image:
    columns = 1 + 2 * len(runs)
    sheet = Image.new("RGB", (NAME_WIDTH + columns * size, HEADER_HEIGHT + len(photos) * size), "white")
    draw = ImageDraw.Draw(sheet)
    headers = ["photo"] + [f"{run.label}: {kind}" for run in runs for kind in ("render", "turned 45°")]
    for k, header in enumerate(headers):
        draw.text((NAME_WIDTH + k * size + 4, 5), header, fill="black")
    for row, photo in enumerate(photos):
        y = HEADER_HEIGHT + row * size
        draw.multiline_text((4, y + 4), "\n".join(textwrap.wrap(photo.name, 22)), fill="black")
        for k, panel in enumerate(row_panels(photo, runs, out, size, zoom)):
            sheet.paste(panel, (NAME_WIDTH + k * size, y))
    return sheet


def choose_photos(args: argparse.Namespace) -> list[Path]:
    photos = [Path(p) for p in args.photos]
    if args.list:
        photos += [Path(line.strip()) for line in args.list.read_text().splitlines() if line.strip()]
    if args.folder:
        pool = sorted(p for p in args.folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        photos += random.Random(args.seed).sample(pool, min(args.count, len(pool)))
    return photos


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("photos", nargs="*", help="photo paths")
    parser.add_argument("--list", type=Path, help="a file of photo paths, one a line")
    parser.add_argument("--folder", type=Path, help="draw photos from this folder")
    parser.add_argument("--count", type=int, default=16, help="how many photos to draw from --folder")
    parser.add_argument("--seed", type=int, default=0, help="seed for drawing from --folder")
    parser.add_argument(
        "--run",
        dest="runs",
        type=parse_run,
        action="append",
        required=True,
        help="LABEL=PYTHON[:PYTHONPATH], repeatable; columns in this order",
    )
    parser.add_argument("--out", type=Path, required=True, help="per-run output folders go under here")
    parser.add_argument("--sheet", type=Path, required=True, help="the PNG to write")
    parser.add_argument("--height", type=int, default=192, help="panel size in pixels")
    parser.add_argument("--rows-per-sheet", type=int, default=12, help="split into SHEET_1, _2 beyond this")
    parser.add_argument("--no-zoom", action="store_true", help="whole panels, not cut to the head")
    parser.add_argument("--compose-only", action="store_true", help="do not reconstruct, draw what exists")
    args = parser.parse_args(argv)

    photos = choose_photos(args)
    if not photos:
        parser.error("no photos: give paths, --list or --folder")
    args.out = args.out.resolve()  # each reconstruction runs with the output folder as its working directory
    args.out.mkdir(parents=True, exist_ok=True)
    if not args.compose_only:
        for photo in photos:  # photo by photo, so that the first rows are complete early
            for run in args.runs:
                reconstruct(run, photo, args.out)
    args.sheet.parent.mkdir(parents=True, exist_ok=True)
    compose(photos, args.runs, args.out, args.height, not args.no_zoom).save(args.sheet)
    print(args.sheet)
    if len(photos) > args.rows_per_sheet:
        for part, start in enumerate(range(0, len(photos), args.rows_per_sheet), 1):
            path = args.sheet.with_name(f"{args.sheet.stem}_{part}{args.sheet.suffix}")
            compose(
                photos[start : start + args.rows_per_sheet], args.runs, args.out, args.height, not args.no_zoom
            ).save(path)
            print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
