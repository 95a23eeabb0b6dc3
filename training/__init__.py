"""Training of the coefficient regressor (torch). Never imports bpy."""
