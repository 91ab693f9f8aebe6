"""Lambda functions that really run: Python functions, from a .zip package or an image,
each invocation in an execution environment (a container) of the local AWS's.

- `service`: invocations, the warm pool, the invocation's answer and log;
- `environments`: one environment's container, Runtime API and output;
- `runtime_api`: the Runtime API an environment's runtime takes events from;
- `packages`: .zip packages and layers unpacked, safely, once per digest.
moto keeps the functions' configuration; patches/awslambda.py hands invocations here.
"""
