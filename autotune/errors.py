"""The errors the tool reports to its user, each with the exit code it ends with.

The CLI turns an `AutotuneError` into its one-line message on stderr and its exit code;
any other exception is an internal error.
"""


class AutotuneError(Exception):
    """An error with a clear one-line message for the user."""

    exit_code = 1


class UsageError(AutotuneError):
    """Bad usage or bad input: the message says what is wrong and what to do."""

    exit_code = 2


class NoFeasibleTrialError(AutotuneError):
    """The study ended with no trial that met the accuracy floors."""

    exit_code = 3


class ServerStartError(AutotuneError):
    """A model server did not become AVAILABLE; the message carries its last log lines."""

    exit_code = 1


class MeasurementError(Exception):
    """One measurement failed (the server did not start, or stopped answering): the trial
    fails with this message as its reason and the study goes on. Not an `AutotuneError`:
    it never reaches the user as the run's outcome."""
