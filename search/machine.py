"""What this machine offers the commands' processes."""

from __future__ import annotations

import os

CORES = os.cpu_count() or 1
