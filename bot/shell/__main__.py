"""`python -m bot.shell`: the same as `cadrebot shell`, for before it is registered."""

import logging
import sys

from bot.cli import main

logging.captureWarnings(True)
sys.exit(main(["shell", *sys.argv[1:]]))
