"""Encoders: images in [0, 1] to named features (VGG-19/16, HED's VGG-16), their layer names and weights files."""
