import pytest

from harness.emulator.sagemaker.runner import JobRunner, StopSignal


def test_an_incomplete_runner_cannot_be_made():
    class RunsOnly(JobRunner):
        def run(self, spec, log, stop):
            raise NotImplementedError

    with pytest.raises(TypeError):
        RunsOnly()


def test_stop_signal_keeps_the_first_reason():
    stop = StopSignal()
    assert not stop.is_set()
    stop.set("MaxRuntimeExceeded")
    stop.set("StopTrainingJob")
    assert stop.is_set() and stop.reason == "MaxRuntimeExceeded"
