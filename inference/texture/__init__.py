"""UV textures from photos: the UV raster, de-lit albedo, displacement from shading, and the maps."""
