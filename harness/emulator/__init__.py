"""The local AWS: moto plus SageMaker jobs that really run in Docker.

Imports nothing from the rest of `harness`.
"""

from harness.emulator.options import DEFAULT_PORT, Options, default_state_dir
from harness.emulator.server import EmulatorError, LocalAWS

__all__ = ["DEFAULT_PORT", "EmulatorError", "LocalAWS", "Options", "default_state_dir"]
