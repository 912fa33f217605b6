"""What the command-line entry points share: Hydra wiring, config helpers, device choice, run records."""
