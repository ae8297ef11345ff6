"""The scan's HTML page, rendered in a real headless Chromium (Debian's ``chromium``).

Three looks at the same page: the DOM after the page's script ran (the
tables, the graph's nodes, every finding a link to its source line); a click
on a table header sorts it; and the screenshot itself, decoded here, is
neither empty nor broken: enough of it is drawn, and the progress bar and
the graph's green, mixed and async nodes show in their colours.
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from bridge._cli import _scan
from tests.test_scan_project import TREE, write_tree

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="Chromium is not installed (Debian: apt-get install chromium; .ci/run installs it)",
)

PAGE_TREE = {
    **TREE,
    "svc/v2/__init__.py": "",
    "svc/v2/handlers.py": """
        import asyncio

        async def index(request):
            await asyncio.sleep(0)
    """,
}


def chromium(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--no-first-run", f"--user-data-dir={cwd / 'profile'}", *args],
        capture_output=True, text=True, timeout=50, cwd=cwd,
    )  # fmt: skip


@pytest.fixture
def page(tmp_path: Path) -> Path:
    report = _scan.scan(write_tree(tmp_path / "tree", PAGE_TREE))
    path = tmp_path / "progress.html"
    with path.open("w", encoding="utf-8") as out:
        _scan.write_html(report, out)
    return path


def test_the_page_renders_its_tables_graph_and_links(page: Path) -> None:
    dom = chromium("--dump-dom", page.as_uri(), cwd=page.parent)
    assert dom.returncode == 0, dom.stderr
    html = dom.stdout
    assert 'data-ready="1"' in html  # the page's script ran to its end
    for status in ("green", "mixed", "async"):
        assert f'class="node {status}"' in html
    assert html.count("<table") == 5  # blocking, hub, modules, order, APIs
    api = (page.parent / "tree" / "svc" / "api.py").as_uri()
    assert f'href="{api}#L11"' in html  # eventlet.sleep in async def, linked to its line
    server = (page.parent / "tree" / "svc" / "cmd" / "server.py").as_uri()
    assert f'href="{server}#L7"' in html  # the hub chosen in code


def test_a_click_on_a_header_sorts_the_table(page: Path) -> None:
    # Click "lines" in the modules table twice (descending, then ascending)
    # and write the first module of each order into the title.
    probe = """<script>
      var table = document.querySelectorAll("table.sortable")[2];
      var header = Array.from(table.tHead.rows[0].cells).find(c => c.textContent === "lines");
      var first = () => table.tBodies[0].rows[0].cells[4].textContent;
      header.click(); var down = first(); header.click(); var up = first();
      document.title = "sorted:" + down + ":" + up;
    </script></body>"""
    page.write_text(page.read_text().replace("</body>", probe))
    dom = chromium("--dump-dom", page.as_uri(), cwd=page.parent)
    found = re.search(r"<title>sorted:(\d+):(\d+)</title>", dom.stdout)
    assert found is not None, dom.stdout[-2000:]
    down, up = int(found[1]), int(found[2])
    assert down > up  # the longest module first, then the shortest


def test_the_screenshot_is_neither_empty_nor_broken(page: Path) -> None:
    shot = page.parent / "shot.png"
    result = chromium(
        f"--screenshot={shot}", "--window-size=1200,1100", "--force-device-scale-factor=0.5",
        page.as_uri(), cwd=page.parent,
    )  # fmt: skip
    assert result.returncode == 0 and shot.exists(), result.stderr
    width, height, pixels = read_png(shot)
    assert (width, height) == (600, 550)
    drawn = sum(1 for p in pixels if p != (255, 255, 255))
    assert drawn > 0.05 * len(pixels), f"only {drawn} of {len(pixels)} pixels drawn"
    colours = set(pixels)
    for name, rgb in [("progress bar / async", 0x3B6FD6), ("green", 0x2E9E4F), ("mixed", 0xD99A1E)]:
        target = (rgb >> 16, (rgb >> 8) & 0xFF, rgb & 0xFF)
        assert any(close(c, target) for c in colours), f"no {name} pixel in the screenshot"


def close(a: tuple[int, int, int], b: tuple[int, int, int]) -> bool:
    return all(abs(x - y) <= 12 for x, y in zip(a, b, strict=True))


def read_png(path: Path) -> tuple[int, int, list[tuple[int, int, int]]]:
    """Width, height and RGB pixels of an 8-bit RGB(A) PNG (what Chromium writes)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    position, idat = 8, b""
    width = height = channels = 0
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        body = data[position + 8 : position + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and interlace == 0 and colour in (2, 6), (depth, colour, interlace)
            channels = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += body
        position += 12 + length
    raw = zlib.decompress(idat)
    stride = width * channels
    previous = bytearray(stride)
    pixels: list[tuple[int, int, int]] = []
    for row in range(height):
        start = row * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up = previous[i]
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + ((left + up) >> 1)) & 0xFF
            elif kind == 4:
                corner = previous[i - channels] if i >= channels else 0
                guess = left + up - corner
                pa, pb, pc = abs(guess - left), abs(guess - up), abs(guess - corner)
                line[i] = (
                    line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)
                ) & 0xFF
        pixels += [tuple(line[i : i + 3]) for i in range(0, stride, channels)]  # type: ignore[misc]
        previous = line
    return width, height, pixels
