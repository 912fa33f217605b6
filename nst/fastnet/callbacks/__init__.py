"""What watches a training run (Lightning): sample grids, consistency probes, checkpoints and run files, loggers."""
