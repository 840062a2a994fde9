"""A tiny Chrome DevTools Protocol client over ``--remote-debugging-pipe`` (no websocket, no dependency).

Chromium reads NUL-terminated JSON commands from fd 3 and writes responses/events to fd 4. Used by
the browser tests and by ``python -m tests.reports._cdp REPORT.html OUTDIR`` (docs screenshots).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

CHROMIUM = shutil.which("chromium")

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--hide-scrollbars",
    "--mute-audio",
    "--remote-debugging-pipe",
)

#: Pixel statistics of a PNG, computed by the browser itself (canvas) in a blank tab.
_PIXEL_STATS_JS = """
(async (b64) => {
  const bin = atob(b64); const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  const bmp = await createImageBitmap(new Blob([bytes], {type: 'image/png'}));
  const canvas = new OffscreenCanvas(bmp.width, bmp.height);
  const ctx = canvas.getContext('2d'); ctx.drawImage(bmp, 0, 0);
  const d = ctx.getImageData(0, 0, bmp.width, bmp.height).data;
  let n = 0, sum = 0, sq = 0; const colors = new Set();
  for (let i = 0; i < d.length; i += 4) {
    const y = 0.2126 * d[i] + 0.7152 * d[i + 1] + 0.0722 * d[i + 2];
    n++; sum += y; sq += y * y;
    if (colors.size < 4096) colors.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
  }
  const mean = sum / n;
  return {width: bmp.width, height: bmp.height, mean: mean, variance: sq / n - mean * mean, colors: colors.size};
})
"""


class Browser:
    """A headless Chromium driven over the DevTools pipe.

    Attributes:
        events: every event received so far (dicts with ``method``, ``params``, ``sessionId``).
    """

    def __init__(self, executable: str, user_data_dir: Path, timeout: float = 60.0) -> None:
        self.timeout = timeout
        self.events: list[dict[str, Any]] = []
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._next_id = 0
        cmd_r, self._cmd_w = os.pipe()
        self._resp_r, resp_w = os.pipe()

        def child() -> None:  # runs in the child between fork and exec
            a, b = os.dup(cmd_r), os.dup(resp_w)
            os.dup2(a, 3)
            os.dup2(b, 4)
            os.set_inheritable(3, True)
            os.set_inheritable(4, True)

        self.proc = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
            [executable, *FLAGS, f"--user-data-dir={user_data_dir}", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=child,  # noqa: PLW1509 - single-threaded test process
            pass_fds=(3, 4),
        )
        os.close(cmd_r)
        os.close(resp_w)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        buf = b""
        while True:
            try:
                chunk = os.read(self._resp_r, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                self._queue.put(None)
                return
            buf += chunk
            while b"\0" in buf:
                raw, buf = buf.split(b"\0", 1)
                self._queue.put(json.loads(raw))

    def _pull(self, deadline: float) -> dict[str, Any]:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no answer from Chromium")
        msg = self._queue.get(timeout=left)
        if msg is None:
            raise RuntimeError("Chromium closed the DevTools pipe")
        return msg

    def send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> dict[str, Any]:
        """Send a command and return its ``result`` (raises on a protocol error)."""
        self._next_id += 1
        msg: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._cmd_w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._pull(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            if "method" in reply:
                self.events.append(reply)

    def wait_for(self, method: str, session: str | None = None, after: int = 0) -> dict[str, Any]:
        """Wait for an event (seen after index ``after`` of :attr:`events`)."""
        deadline = time.monotonic() + self.timeout
        while True:
            for event in self.events[after:]:
                if event["method"] == method and (session is None or event.get("sessionId") == session):
                    return event
            reply = self._pull(deadline)
            if "method" in reply:
                self.events.append(reply)

    def new_page(self, width: int = 1200, height: int = 900) -> str:
        """Open a blank tab and return its session id (Page/Runtime/Log/Network enabled)."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable", session=session)
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}, session)
        return session

    def open(self, session: str, url: str) -> None:
        """Navigate and wait for the load event."""
        mark = len(self.events)
        self.send("Page.navigate", {"url": url}, session)
        self.wait_for("Page.loadEventFired", session, after=mark)

    def evaluate(self, session: str, expression: str) -> Any:
        """Evaluate JavaScript (promises awaited) and return its value."""
        res = self.send("Runtime.evaluate",
                        {"expression": expression, "returnByValue": True, "awaitPromise": True}, session)
        if "exceptionDetails" in res:
            raise RuntimeError(f"JavaScript error: {res['exceptionDetails']}")
        return res["result"].get("value")

    def screenshot(self, session: str, element_id: str) -> bytes:
        """PNG of one element (by id), captured beyond the viewport."""
        box = self.evaluate(session, f"""(() => {{ const r = document.getElementById({json.dumps(element_id)})
            .getBoundingClientRect(); return [r.left + scrollX, r.top + scrollY, r.width, r.height]; }})()""")
        x, y, w, h = box
        clip = {"x": x, "y": y, "width": max(w, 1), "height": max(h, 1), "scale": 1}
        data = self.send("Page.captureScreenshot", {"format": "png", "clip": clip, "captureBeyondViewport": True},
                         session)["data"]
        return base64.b64decode(data)

    def pixel_stats(self, session: str, png: bytes) -> dict[str, float]:
        """Mean/variance of luminance and distinct colours of a PNG (decoded by the browser in ``session``)."""
        b64 = base64.b64encode(png).decode()
        return self.evaluate(session, f"{_PIXEL_STATS_JS}({json.dumps(b64)})")

    def close(self) -> None:
        """Ask Chromium to quit, then make sure it is gone."""
        with suppress(RuntimeError, TimeoutError, OSError):
            self.send("Browser.close")
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        os.close(self._cmd_w)


@contextmanager
def browser(executable: str | None = CHROMIUM) -> Iterator[Browser]:
    """A headless Chromium with a throw-away profile folder."""
    if executable is None:
        raise RuntimeError("chromium not found")
    with tempfile.TemporaryDirectory(prefix="snnprof-chromium-") as profile:
        chrome = Browser(executable, Path(profile))
        try:
            yield chrome
        finally:
            chrome.close()


def chart_sections(chrome: Browser, session: str) -> list[str]:
    """Ids of every chart section of the open report."""
    return chrome.evaluate(session, "Array.from(document.querySelectorAll('section.chart-section')).map(s => s.id)")


def save_screenshots(report: Path, out: Path, ids: list[str] | None = None, *, dark: bool = False,
                     prefix: str = "", width: int = 1400) -> list[Path]:
    """Screenshot elements of ``report`` by id (default: the summary and every chart section) into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with browser() as chrome:
        session = chrome.new_page(width=width)
        if dark:
            chrome.send("Emulation.setEmulatedMedia",
                        {"features": [{"name": "prefers-color-scheme", "value": "dark"}]}, session)
        chrome.open(session, report.resolve().as_uri())
        for element in ids or ["summary", *chart_sections(chrome, session)]:
            path = out / f"{prefix}{element}{'-dark' if dark else ''}.png"
            path.write_bytes(chrome.screenshot(session, element))
            written.append(path)
    return written


def main(argv: list[str] | None = None) -> None:
    """``python -m tests.reports._cdp REPORT OUTDIR [--ids a,b] [--dark] [--prefix P] [--width PX]``: screenshots."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("report", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--ids", default="", help="comma-separated element ids (default: every chart section)")
    parser.add_argument("--dark", action="store_true", help="emulate prefers-color-scheme: dark")
    parser.add_argument("--prefix", default="", help="file-name prefix")
    parser.add_argument("--width", type=int, default=1400, help="viewport width in CSS px (default 1400)")
    args = parser.parse_args(argv)
    ids = [i for i in args.ids.split(",") if i] or None
    for path in save_screenshots(args.report, args.out, ids, dark=args.dark, prefix=args.prefix, width=args.width):
        print(path)


if __name__ == "__main__":
    main(sys.argv[1:])
