"""The error the CLI reports as one line and a non-zero exit."""


class HarnessError(RuntimeError):
    pass
