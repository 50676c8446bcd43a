"""`autotune --mode`: refusals come before any work, as one line and exit code 2."""

from autotune.cli import main
from autotune.host.lock import HostLock


def test_unusable_options_are_refused(capsys):
    assert main(["--mode", "online", "--min-hr", "1.5", "--confirm-budget", "-1",
                 "--precision", "2"]) == 2
    error = capsys.readouterr().err
    assert "--min-hr 1.5 is not within [0, 1]" in error
    assert "--confirm-budget -1.0 is negative" in error
    assert "--precision 2.0 is not within [0, 1)" in error


def test_a_study_name_longer_than_a_storage_keeps_is_refused(capsys):
    assert main(["--mode", "online", "--study-name", "s" * 513]) == 2
    assert "--study-name is longer than the 512 characters" in capsys.readouterr().err


def test_a_second_tuner_on_the_host_is_refused(capsys):
    with HostLock():
        assert main(["--mode", "batch"]) == 2
    assert "another tuner" in capsys.readouterr().err


def test_a_p99_bound_that_is_not_positive_is_refused(capsys):
    assert main(["--mode", "server", "--p99-ms", "0"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "--p99-ms 0 must be > 0" in error
