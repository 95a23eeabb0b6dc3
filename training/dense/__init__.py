"""The dense-landmark network (inference/landmarks/dense.py): data from `facesmith synth` shards, the CNN, headless training
(single process or torchrun/DDP) and ONNX export."""
