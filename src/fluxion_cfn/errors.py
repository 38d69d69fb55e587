"""The deploy and run-task commands' failures, by exit code.

Only ``__main__`` turns these into an exit code and one line on stderr; the modules raise them
with a message that says what to do next.
"""


class CommandError(Exception):
    """The command could not do its job (AWS refused, the stack failed): exit 1."""

    exit_code = 1


class UsageError(CommandError):
    """Bad arguments, found before anything was sent to AWS: exit 2."""

    exit_code = 2
