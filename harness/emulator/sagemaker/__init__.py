"""SageMaker for the local AWS: moto's shapes, jobs that really run in Docker."""
