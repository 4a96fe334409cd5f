"""Session-wide guards for the processes tests start.

No test may reach (or start) an EPMD on the system port: tests pass their
private EPMD port explicitly; this default catches any call that forgets to,
so it lands on a private port instead of fighting a system ``epmd`` on 4369.
An ``erl`` that dies writes its crash dump to the temporary folder, never
into the checkout.
"""

from __future__ import annotations

import inspect
import os
import tempfile

import pytest

from tests.support.aio import run
from tests.support.otp import free_port

os.environ["ERL_EPMD_PORT"] = str(free_port())
os.environ["ERL_CRASH_DUMP"] = os.path.join(tempfile.gettempdir(),
                                            f"erldist-tests-{os.getpid()}-erl_crash.dump")


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run ``async def`` tests on a fresh event loop, under ``run``'s outer deadline."""
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    kwargs = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
    run(pyfuncitem.obj(**kwargs))
    return True
