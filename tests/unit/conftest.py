import pytest


@pytest.fixture(autouse=True)
def no_scratch_home(monkeypatch):
    """The test kit's session fixture points MLHARNESS_HOME at a scratch folder for the whole
    session; unit tests check where a project keeps its state when nothing overrides it."""
    monkeypatch.delenv("MLHARNESS_HOME", raising=False)
