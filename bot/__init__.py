"""Application assembly: settings, app factory, CLI, persistence and error handling."""

import os

# Opt into PTB's timedelta time periods (RetryAfter.retry_after and friends): the int form is
# deprecated since 22.2 and warns on every read.
os.environ.setdefault("PTB_TIMEDELTA", "1")
