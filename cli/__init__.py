"""The command line, Facesmith's entry layer: `facesmith ...`, `python -m facesmith.cli ...`, and inside Blender

    blender -b --python-expr "import sys; from bl_ext.user_default.facesmith.cli import main; sys.exit(main())" -- ARGS

It may import `inference/` and `addon/`; nothing imports it back.
"""

from .main import main

__all__ = ["main"]
