"""Local-emulation harness and cloud deployer for Step Functions + SageMaker pipelines."""

__version__ = "0.1.0"
