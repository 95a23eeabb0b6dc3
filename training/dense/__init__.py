"""The dense-landmark network (issue H): data from `facesmith synth` shards, the CNN, headless training
(single process or torchrun/DDP) and ONNX export."""
