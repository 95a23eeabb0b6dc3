"""Photo -> FLAME reconstruction in numpy (and onnxruntime). Never imports bpy."""
