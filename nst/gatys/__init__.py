"""Gatys et al. 2016 by optimisation of pixels, without a training framework: the loop, stills, its callbacks."""
