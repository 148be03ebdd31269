"""Screenshots of a running TensorBoard in headless Chromium, with one Time Series group opened first.

    tensorboard --logdir lightning_logs --port 6006 &
    python benchmarks/tensorboard_screens.py "http://localhost:6006/#timeseries" views timeseries.png
    python benchmarks/tensorboard_screens.py "http://localhost:6006/#hparams" - hparams.png

Needs ``chromium`` (Debian's package) and ``websocket-client`` (pip); it drives Chromium through its DevTools
protocol: load the page, click the group's header (``-``: none), scroll to it, capture. docs/tensorboard.md shows
what it took.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
import urllib.request

import websocket  # websocket-client

PORT = 9333
HEADERS = ".group-toolbar, .group-title, button"


def main(url: str, group: str, out: str) -> None:
    chromium = subprocess.Popen(
        ["chromium", "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         f"--remote-debugging-port={PORT}", "--window-size=1400,1600", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        page = next(tab for tab in _tabs() if tab["type"] == "page")
        socket = websocket.create_connection(page["webSocketDebuggerUrl"], suppress_origin=True)
        calls = iter(range(1, 1_000_000))

        def call(method: str, **params: object) -> dict:
            number = next(calls)
            socket.send(json.dumps({"id": number, "method": method, "params": params}))
            while (message := json.loads(socket.recv())).get("id") != number:
                pass
            return message.get("result", {})

        call("Page.enable")
        call("Page.navigate", url=url)
        time.sleep(8)  # TensorBoard's app loads and fetches its runs
        find = f"[...document.querySelectorAll('{HEADERS}')].find(e => e.textContent.trim().startsWith('{group}'))"
        if group != "-":
            call("Runtime.evaluate", expression=f"(() => {{ const h = {find}; if (h) h.click(); }})()")
            time.sleep(4)
            call("Runtime.evaluate", expression=f"(() => {{ const h = {find}; if (h) h.scrollIntoView(); }})()")
            time.sleep(1)
        with open(out, "wb") as file:
            file.write(base64.b64decode(call("Page.captureScreenshot", format="png")["data"]))
        print(out)
    finally:
        chromium.kill()


def _tabs() -> list[dict]:
    for _ in range(50):
        try:
            return json.load(urllib.request.urlopen(f"http://127.0.0.1:{PORT}/json"))
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"Chromium's DevTools did not answer on port {PORT}")


if __name__ == "__main__":
    main(*sys.argv[1:4])
