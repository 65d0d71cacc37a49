"""Headless Chromium on a built site: a local server, the browser, what a page shows.

The site is served by a thread on 127.0.0.1 (an ephemeral port). Chromium is Debian's
(``/usr/bin/chromium``, listed in ``system-packages.txt``), driven through Playwright with a
fresh profile and no network: every request to another host is refused and recorded, so
a page that needs the network to show its math or figures fails the check.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
)

# What a page reports once its scripts have run: MathJax's state, the typeset math, the
# text a reader sees outside code and typeset math, the images, the links and the ids, how
# far the page scrolls sideways, and the code blocks and display equations wider than
# their box that cannot scroll.
PAGE_REPORT_JS = """
async () => {
  const mj = window.MathJax;
  let mathjax = "missing";
  if (mj && mj.startup && mj.startup.promise) {
    await mj.startup.promise;
    mathjax = "ok";
  }
  const main = document.querySelector("article") || document.body;
  const clone = main.cloneNode(true);
  clone.querySelectorAll(
    "pre, code, script, style, mjx-container, .headerlink, .clipboard-copy-txt, [hidden]"
  )
    .forEach((node) => node.remove());
  return {
    mathjax,
    math: main.querySelectorAll("mjx-container").length,
    mathErrors: Array.from(main.querySelectorAll("mjx-merror"))
      .map((node) => node.getAttribute("data-mjx-error") || node.textContent),
    text: clone.textContent,
    images: Array.from(document.images).map((img) => ({
      src: img.currentSrc || img.src,
      width: img.naturalWidth,
      inNotebook: !!img.closest(".jupyter-wrapper"),
    })),
    links: Array.from(document.querySelectorAll("a[href]")).map((a) => a.href),
    ids: Array.from(document.querySelectorAll("[id], a[name]"))
      .map((node) => node.id || node.getAttribute("name")),
    sideways: document.documentElement.scrollWidth - window.innerWidth,
    cut: Array.from(main.querySelectorAll("pre, mjx-container[display='true']"))
      .filter((node) => node.scrollWidth > node.clientWidth + 1)
      .filter((node) => !["auto", "scroll"].includes(getComputedStyle(node).overflowX)
        && !["auto", "scroll"].includes(getComputedStyle(node.parentElement).overflowX))
      .map((node) => node.textContent.slice(0, 60)),
  };
}
"""


def find_chromium() -> str | None:
    """Path of the Chromium binary (``$CHROMIUM`` or ``chromium`` on the PATH), or None."""
    candidate = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    return candidate if Path(candidate).is_file() else None


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass


@contextmanager
def serve(directory: Path) -> Iterator[str]:
    """Serve ``directory`` on 127.0.0.1 at an ephemeral port; yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@contextmanager
def offline_browser(chromium: str, profile: Path, base_url: str):
    """A Playwright browser context on ``chromium`` that may only reach ``base_url``.

    Yields ``(context, refused)``, where ``refused`` collects every URL refused.
    """
    from playwright.sync_api import sync_playwright

    refused: list[str] = []

    def route(route_):
        url = route_.request.url
        if url.startswith(base_url) or url.startswith("data:") or url.startswith("blob:"):
            route_.continue_()
        else:
            refused.append(url)
            route_.abort("internetdisconnected")

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=chromium, headless=True, args=list(CHROMIUM_FLAGS),
            viewport={"width": 1280, "height": 1000},
        )
        try:
            context.route("**/*", route)
            yield context, refused
        finally:
            context.close()
