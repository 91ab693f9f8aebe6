"""Pipeline definitions. They know nothing of targets: deploy-time values appear as
${Name} placeholders that the stack substitutes, run-time values come from the
execution input that each pipeline builds for itself."""

from pipelines import inference, training

PIPELINES = {"training": training, "inference": inference}
