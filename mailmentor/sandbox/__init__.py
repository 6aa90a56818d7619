"""Real local servers (IMAP, SMTP) for `mailmentor demo`, `mailmentor run` with no mail
accounts configured, and the test suite.

They need pymap and aiosmtpd, the optional ``demo`` extra: a production image has real mail
servers and leaves them out. Nothing here imports them at import time; `require_demo_servers`
says in one line what to install, or what to set instead.
"""

from __future__ import annotations

import importlib.util

from mailmentor.errors import ConfigError

#: How to install the demo servers.
INSTALL_DEMO = "pip install 'mailmentor[demo]'"
#: The package each local server needs.
_NEEDS = {"the demo mailbox": "pymap", "the local SMTP sink": "aiosmtpd"}


def require_demo_servers(*servers: str, instead: str = "", needed_by: str = "") -> None:
    """Unless each of ``servers`` (keys of `_NEEDS`) can be started here, a ConfigError saying
    what to set ``instead`` (or what needs them) and what to install."""
    missing = [name for name in servers if importlib.util.find_spec(_NEEDS[name]) is None]
    if not missing:
        return
    what = " and ".join(missing)
    packages = ", ".join(_NEEDS[name] for name in missing)
    if instead:
        raise ConfigError(f"{instead}; or install {what} ({packages}): {INSTALL_DEMO}")
    raise ConfigError(f"{needed_by} needs {what} ({packages}): {INSTALL_DEMO}")
