"""Screenshots of the built docs site in headless Chromium (part of ``make docs``).

Serves ``site/`` on loopback and saves a PNG of the home page and of one service page into
``site/screenshots/``, so a reviewer can see the site render without serving it. Chromium is Debian's
``chromium``, installed the way ``make e2e`` installs it (``e2e.forms.ensure_chromium``: apt-get, as root).
Where it is missing and cannot be installed, the screenshots are skipped with a message and the exit code
is 0: the strict build before this step is the check; the screenshots are for looking at.

Usage: ``python scripts/docs_screenshots.py [SITE_DIR]``.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # e2e/ is not installed: import it from the checkout

#: (page path under the site, PNG name): the home page and one service page.
PAGES = [("", "home.png"), ("services/feldera/", "service-feldera.png")]
WINDOW = "1280,1600"
#: A PNG smaller than this is an empty or broken render.
MIN_PNG_BYTES = 20_000


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def _chromium() -> Path | None:
    """Debian's chromium, installed when missing and possible; None (with a message) when not."""
    from e2e.forms import ensure_chromium

    try:
        return ensure_chromium()
    except (RuntimeError, OSError, subprocess.CalledProcessError) as exc:
        print(f"docs screenshots skipped: no chromium ({exc})")
        return None


def take(site: Path, out: Path) -> list[Path]:
    """Serve ``site`` and screenshot ``PAGES`` into ``out``; return the PNGs written."""
    from e2e.forms import CHROMIUM_FLAGS

    chromium = _chromium()
    if chromium is None:
        return []
    out.mkdir(parents=True, exist_ok=True)
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    written = []
    try:
        for page, name in PAGES:
            png = out / name
            png.unlink(missing_ok=True)
            with tempfile.TemporaryDirectory(prefix="docs-chromium-") as profile:
                subprocess.run(
                    [
                        str(chromium),
                        *CHROMIUM_FLAGS,
                        "--hide-scrollbars",
                        f"--user-data-dir={profile}",
                        f"--window-size={WINDOW}",
                        f"--screenshot={png}",
                        f"http://127.0.0.1:{server.server_port}/{page}",
                    ],
                    capture_output=True,
                    timeout=120,
                    check=True,
                )
            if not png.exists() or png.stat().st_size < MIN_PNG_BYTES:
                raise SystemExit(f"docs screenshots: {png} is missing or empty: the page did not render")
            written.append(png)
    finally:
        server.shutdown()
        server.server_close()
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("site", nargs="?", default=str(ROOT / "site"), help="the built site (default: site/)")
    args = parser.parse_args()
    site = Path(args.site).resolve()
    if not (site / "index.html").is_file():
        raise SystemExit(f"docs screenshots: {site} has no index.html; run `mkdocs build` first")
    for png in take(site, site / "screenshots"):
        print(f"docs screenshot: {png.relative_to(site.parent)} ({png.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
