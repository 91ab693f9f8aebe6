"""The local AWS: moto plus SageMaker jobs that really run in Docker.

Imports nothing from the rest of `harness`.
"""

from harness.emulator.server import DEFAULT_PORT, EmulatorError, LocalAWS, default_state_dir

__all__ = ["DEFAULT_PORT", "EmulatorError", "LocalAWS", "default_state_dir"]
