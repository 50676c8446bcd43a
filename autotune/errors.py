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


class BoundMissedError(MeasurementError):
    """Server mode: no rate down to the lowest one tried met the p99 bound without errors.

    The trial fails, but as a finding about this configuration on this host, not as a
    broken measurement: it does not count towards the failures in a row that end a study
    (a host whose every configuration misses a tight bound still gets its report, and the
    run's error says which bound it could meet). `p99_ms` is the p99 at the lowest rate,
    `rates_tried` every run of the search (`RunResult.row()`s), kept with the trial.
    """

    def __init__(self, message: str, p99_ms: float,
                 rates_tried: list[dict[str, object]] | None = None) -> None:
        super().__init__(message)
        self.p99_ms = p99_ms
        self.rates_tried = rates_tried or []
