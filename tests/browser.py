"""Headless Chromium for report tests: dump the DOM, take a screenshot, log network requests.

Every request the page makes is forced through a local logging proxy (``--proxy-server`` with
loopback *not* bypassed), so "the page made no network requests" is an observation, not an
assumption: the proxy sees every http(s) request and CONNECT the browser would send.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import threading
from pathlib import Path

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-quic", "--disable-extensions",
         "--disable-default-apps", "--hide-scrollbars", "--mute-audio", "--no-default-browser-check",
         "--disable-client-side-phishing-detection", "--disable-domain-reliability",
         "--disable-features=NetworkTimeServiceQuerying,OptimizationHints,MediaRouter,Translate,AutofillServerCommunication,CertificateTransparencyComponentUpdater",
         "--disable-field-trial-config", "--metrics-recording-only"]


def chromium_path() -> str | None:
    """The Chromium binary, or ``None`` when it is not installed."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


class RequestLogger:
    """A tiny proxy on 127.0.0.1 that records the first line of every request and answers 403."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self._sock.settimeout(0.2)
        self.port = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(1.0)
                try:
                    first = conn.recv(4096).split(b"\r\n", 1)[0].decode("latin-1", "replace")
                except OSError:
                    first = "<unreadable request>"
                if not first:  # closed before a single byte: Chromium pre-connects to its proxy; no request was sent
                    continue
                self.requests.append(first)
                try:
                    conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                except OSError:
                    pass

    def __enter__(self) -> "RequestLogger":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sock.close()


def load_page(html_file: Path, screenshot: Path | None = None, width: int = 1280, height: int = 1800,
              timeout: float = 120) -> tuple[str, list[str]]:
    """Load a local HTML file in headless Chromium.

    Args:
        html_file: the page.
        screenshot: where to save a PNG screenshot (a second browser run), if wanted.
        width: window width in pixels.
        height: window height in pixels.
        timeout: seconds before giving up.

    Returns:
        ``(the rendered DOM, the requests the proxy saw)``.
    """
    binary = chromium_path()
    if binary is None:
        raise FileNotFoundError("chromium is not installed (Debian: apt-get install chromium)")
    url = Path(html_file).resolve().as_uri()
    with RequestLogger() as proxy, tempfile.TemporaryDirectory() as profile:
        common = [binary, *FLAGS, f"--user-data-dir={profile}", f"--proxy-server=http://127.0.0.1:{proxy.port}",
                  "--proxy-bypass-list=<-loopback>", f"--window-size={width},{height}"]
        env = {**os.environ, "HOME": profile}
        dom = subprocess.run([*common, "--virtual-time-budget=5000", "--dump-dom", url], capture_output=True,
                             text=True, timeout=timeout, env=env).stdout
        if screenshot is not None:
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            subprocess.run([*common, f"--screenshot={screenshot}", url], capture_output=True, timeout=timeout, env=env)
        requests = list(proxy.requests)
    return dom, requests


# Chromium's own service traffic (component updater, account and time services). It happens
# with or without a page, so it is not the page's doing; a blank page shows the same requests.
BROWSER_SERVICE_HOSTS = {"update.googleapis.com", "accounts.google.com", "clients2.google.com",
                         "clients1.google.com", "clientservices.googleapis.com", "safebrowsingohttpgateway.googleapis.com",
                         "optimizationguide-pa.googleapis.com", "content-autofill.googleapis.com"}


def request_host(line: str) -> str:
    """The host a proxy request line is for (``CONNECT host:443`` or ``GET http://host/...``)."""
    parts = line.split()
    if len(parts) < 2:
        return line
    target = parts[1]
    if "://" in target:
        target = target.split("://", 1)[1]
    return target.split("/", 1)[0].rsplit(":", 1)[0]


def page_requests(requests: list[str]) -> list[str]:
    """The requests made by the page itself: everything except Chromium's own service traffic."""
    return [r for r in requests if request_host(r) not in BROWSER_SERVICE_HOSTS]
