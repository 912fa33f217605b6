"""The evaluation report of evaluate.py: every method scored on one clip, as a table, plots and a grid video."""
