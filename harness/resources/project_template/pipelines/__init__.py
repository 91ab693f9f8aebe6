"""The project's pipelines (listed in mlharness.yaml)."""
