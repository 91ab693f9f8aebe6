"""Pipeline definitions. They know nothing of targets: deploy-time values appear as
${Name} placeholders that the stack substitutes, run-time values come from the
execution input that each pipeline builds for itself (see pipelines/contract.py).

To add a pipeline, write a module that defines `PIPELINE = Pipeline(...)` and add
it to MODULES (or name it in a configuration's `pipeline_modules`).
"""

MODULES = (
    "pipelines.training",
    "pipelines.inference",
    "pipelines.endpoint",
)
