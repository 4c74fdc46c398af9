"""Host tests run without autograd: nothing here differentiates, and the session-cached tiny
models must not pick up graphs (nodes themselves run under inference mode, as in the host)."""
import os

import pytest
import torch


@pytest.fixture(autouse=True)
def _no_grad():
    with torch.no_grad():
        yield


@pytest.fixture(scope="session", autouse=True)
def early_references(request) -> dict:
    """The slowest reference runs started at the first host test, so that they run on the machine's
    second core while the other tests run on the first (the suite uses one torch thread). A test
    module asks for it with a function ``start_reference_early(request)`` that starts its run
    (``reference_run.start``) and returns what its own fixture then waits on, or None where the
    reference is absent (its fixture then skips loudly). Returns {module name: that value}.
    Under pytest-xdist (``PYTEST_XDIST_WORKER``: the suite's two workers take both cores) nothing
    starts early: a worker does not know which modules it will be given, and each module's own
    fixture starts its run when its tests come."""
    started: dict = {}
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return started
    modules = {item.module for item in request.session.items if getattr(item, "module", None) is not None}
    for module in sorted(modules, key=lambda m: m.__name__):
        start = getattr(module, "start_reference_early", None)
        if start is not None:
            started[module.__name__] = start(request)
    return started
