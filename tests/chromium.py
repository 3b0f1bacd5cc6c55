"""What the browser tests share: Debian's Chromium (driven by Playwright; never `playwright
install`), the marks that skip cleanly without it, and the artifacts/ folder for screenshots."""

from __future__ import annotations

from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--headless"]
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"

MARKS = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason=f"{CHROMIUM} not found; install Debian's Chromium: apt-get install -y chromium",
    ),
]
