"""Entry scripts that run inside the job image (or as plain processes, for the benchmark floor)."""
