"""The README's screenshot of a review report: headless Chromium, then a 64-colour PNG.

The page is taken at a fixed window (the summary, the plots and the first conversations fit in
1200 x 4200 pixels); flat colours and text survive a 64-colour palette, which keeps the file
under 300 KB.

    python scripts/report_screenshot.py data/report.html docs/report.png
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

MAX_BYTES = 300_000


def screenshot(page: Path, out: Path, width: int, height: int, colours: int) -> int:
    """Write ``out`` from ``page``; its size in bytes."""
    from PIL import Image

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        sys.exit("no Chromium installed (Debian: apt-get install chromium)")
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.png"
        subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        f"--user-data-dir={Path(tmp) / 'profile'}", "--virtual-time-budget=5000",
                        f"--window-size={width},{height}", f"--screenshot={raw}",
                        page.resolve().as_uri()], check=True, capture_output=True, timeout=120)
        image = Image.open(raw).convert("RGB")
        image.quantize(colors=colours, method=Image.Quantize.MEDIANCUT,
                       dither=Image.Dither.NONE).save(out, optimize=True)
    return out.stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("page", type=Path, help="the report (argalign report --out)")
    parser.add_argument("out", type=Path, help="the PNG to write")
    parser.add_argument("--width", type=int, default=1200)
    parser.add_argument("--height", type=int, default=4200)
    parser.add_argument("--colours", type=int, default=64)
    args = parser.parse_args()
    size = screenshot(args.page, args.out, args.width, args.height, args.colours)
    print(f"{args.out}: {args.width} x {args.height}, {size / 1000:.0f} KB")
    if size > MAX_BYTES:
        sys.exit(f"{args.out} is over {MAX_BYTES // 1000} KB: lower --height or --colours")


if __name__ == "__main__":
    main()
