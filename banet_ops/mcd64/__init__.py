"""MCD64A1 burned area: HDF4/GeoTIFF readers, the sinusoidal grid, synthetic tiles and the label cube."""
