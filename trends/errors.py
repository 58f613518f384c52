"""Exceptions the CLI turns into short messages instead of tracebacks."""


class UserError(Exception):
    """Bad input from the user: the message says what is wrong and how to fix it (CLI exit code 2)."""


class RunInterrupted(Exception):
    """Ctrl-C arrived; the loop saved a checkpoint at a step boundary (CLI exit code 130)."""


class Diverged(Exception):
    """The loss became NaN or infinite."""

    def __init__(self, step: int, value: float):
        super().__init__(f"loss became {value} at step {step}; lower optim.lr or enable gradient clipping")
        self.step = step
