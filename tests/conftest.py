"""Session-wide guard: no test may reach (or start) an EPMD on the system port.

Tests pass their private EPMD port explicitly; this default catches any call
that forgets to, so it lands on a private port instead of fighting a system
``epmd`` on 4369.
"""

from __future__ import annotations

import os

from tests.support.otp import free_port

os.environ["ERL_EPMD_PORT"] = str(free_port())
