"""`facesmith export-onnx RUN_DIR -o FILE.onnx`: the trained network as ONNX, its DenseSpec in the metadata,
checked against torch on the same inputs (max abs difference of every output)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ...inference.landmarks.dense import METADATA_KEY, DenseSpec
from .train import CHECKPOINT, build_net, config_from_dict, load_checkpoint

OPSET = 17
OUTPUTS = ("points", "log_sigma", "shape")
PARITY_LIMIT = 1e-4


def load_run(run_dir: Path) -> tuple[torch.nn.Module, DenseSpec, dict]:
    path = Path(run_dir) / CHECKPOINT
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir}: no {CHECKPOINT} (train first: facesmith train --out {run_dir})")
    ck = load_checkpoint(path)
    cfg = config_from_dict(ck["config"], str(path))
    spec = DenseSpec.from_json(ck["spec"])
    net = build_net(spec, cfg)
    net.load_state_dict(ck.get("ema", ck["model"]))  # the moving average where the run kept one
    net.eval()
    return net, spec, ck


def export(run_dir: Path, out: Path, inputs: np.ndarray | None = None) -> dict:
    """Write the .onnx (atomically) and return {"steps", "parity_max_abs", "bytes"}; raise if parity fails."""
    import onnx

    net, spec, ck = load_run(run_dir)
    size = spec.input_size
    example = torch.rand(2, 3, size, size)
    tmp = Path(out).with_name(Path(out).name + ".tmp")
    with torch.no_grad():
        torch.onnx.export(
            net, (example,), str(tmp), input_names=["image"], output_names=list(OUTPUTS), opset_version=OPSET,
            dynamic_axes={"image": {0: "batch"}, **{k: {0: "batch"} for k in OUTPUTS}}, dynamo=False,
        )  # fmt: skip
    proto = onnx.load(str(tmp))
    spec = DenseSpec(**{**spec.__dict__, "trained_on": f"{spec.trained_on}; {ck['step']} steps"})
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, spec.to_json()
    proto.producer_name = "facesmith"
    onnx.checker.check_model(proto)
    onnx.save(proto, str(tmp))
    diff = parity(net, tmp, inputs if inputs is not None else np.random.default_rng(0).random((4, 3, size, size)))
    if diff >= PARITY_LIMIT:
        tmp.unlink()
        raise RuntimeError(f"onnxruntime and torch differ by {diff:.2e} (limit {PARITY_LIMIT:.0e}); not written")
    tmp.replace(out)
    return {"steps": int(ck["step"]), "parity_max_abs": diff, "bytes": Path(out).stat().st_size}


def parity(net: torch.nn.Module, onnx_path: Path, inputs: np.ndarray) -> float:
    """Largest absolute difference between torch and onnxruntime (CPU) over every output."""
    import onnxruntime as ort

    x = np.asarray(inputs, np.float32)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = session.run(list(OUTPUTS), {"image": x})
    with torch.no_grad():
        want = net(torch.from_numpy(x))
    return max(float(np.abs(g - w.numpy()).max()) if g.size else 0.0 for g, w in zip(got, want, strict=True))
