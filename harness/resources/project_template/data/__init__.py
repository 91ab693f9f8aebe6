"""The project's example data."""
