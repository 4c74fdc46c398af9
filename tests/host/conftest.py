"""Host tests run without autograd: nothing here differentiates, and the session-cached tiny
models must not pick up graphs (nodes themselves run under inference mode, as in the host)."""
import pytest
import torch


@pytest.fixture(autouse=True)
def _no_grad():
    with torch.no_grad():
        yield
