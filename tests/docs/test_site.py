"""The documentation site as a reader sees it, in headless Chromium with no network.

The built site (``site/``, written by ``mkdocs build`` before pytest in ``make test``) is
served on 127.0.0.1 and every page is opened. Each page must: raise no JavaScript error
and log no console error; need nothing from another host; load MathJax from the site and
leave no TeX source in the text a reader sees (outside code); show every image it
references, and, for a tutorial, at least one figure; not scroll sideways, with every code
block and display equation wider than its box scrolling inside it. Every link within the site must
reach a page or file of the site, and every ``#anchor`` an element of its target page.

Screenshots of the home page, a theory page and a tutorial page are written to
``site-screenshots/`` beside the site, with ``report.json`` (the counts below).
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from urllib.parse import unquote, urldefrag

import pytest

from tests.docs.browser import PAGE_REPORT_JS, find_chromium, offline_browser, serve
from tests.docs.built import SITE, require
from tests.requirements import missing

# TeX a reader should never see: math delimiters, and common commands outside math.
RAW_TEX = re.compile(
    r"\\\(|\\\)|\\\[|\\\]|\$\$|\$[^$\s][^$\n]*\$"
    r"|\\(?:alpha|beta|bar|frac|sqrt|mathcal|mathbb|nabla|mid|varepsilon|sigma|tilde|left|right)\b"
)
SCREENSHOTS = {
    "home.png": "index.html",
    "theory.png": "theory/forward_process/index.html",
    "tutorial.png": "tutorials/01_markov_chains_and_the_forward_process/index.html",
}


def site_pages(site: Path) -> list[str]:
    """The site's pages as paths relative to ``site`` (every ``index.html``, no 404 page)."""
    return sorted(str(p.relative_to(site)) for p in site.rglob("index.html"))


def target_file(site: Path, base_url: str, url: str) -> Path:
    """The file of ``site`` that an internal ``url`` (no fragment) names."""
    path = unquote(url[len(base_url):].split("?")[0])
    if path == "" or path.endswith("/"):
        path += "index.html"
    return site / path


def screenshot_tutorial(page, path: Path) -> None:
    """Scroll the first figure into the lower part of the view (with the text and math
    above it) and take a screenshot."""
    page.evaluate(
        """() => {
          const img = document.querySelector('.jupyter-wrapper img');
          if (img) window.scrollTo(0, img.getBoundingClientRect().top + window.scrollY - 600);
        }"""
    )
    page.wait_for_timeout(200)
    page.screenshot(path=str(path))


@pytest.fixture(scope="module")
def chromium():
    path = find_chromium()
    if path is None:
        missing("Chromium not installed (Debian package chromium): the site was not checked "
                "in a browser")
    if importlib.util.find_spec("playwright") is None:
        missing("Playwright not installed (dev extra): the site was not checked in a browser")
    return path


def test_every_page_of_the_site_reads_in_a_browser(chromium, tmp_path):
    site = require(SITE / "index.html", "the built site", "run `make docs-build` first").parent
    shots = site.parent / "site-screenshots"
    shots.mkdir(exist_ok=True)
    pages = site_pages(site)
    problems: list[str] = []
    reports: dict[str, dict] = {}
    errors: list[str] = []
    with serve(site) as base_url, offline_browser(chromium, tmp_path / "profile", base_url) as (
        context, refused,
    ):
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(f"JavaScript error: {error}"))
        page.on("console", lambda m: m.type == "error" and errors.append(f"console: {m.text}"))
        for name in pages:
            errors.clear()
            page.goto(base_url + name, wait_until="load")
            report = page.evaluate(PAGE_REPORT_JS)
            for shot, shot_page in SCREENSHOTS.items():
                if name == shot_page and shot == "tutorial.png":
                    screenshot_tutorial(page, shots / shot)
                elif name == shot_page:
                    page.screenshot(path=str(shots / shot))
            reports[name] = report
            problems += [f"{name}: {error}" for error in errors]
            if report["mathjax"] != "ok":
                problems.append(f"{name}: MathJax did not load")
            problems += [f"{name}: TeX error {e!r}" for e in report["mathErrors"]]
            for match in RAW_TEX.finditer(report["text"]):
                text = report["text"]
                context_text = text[max(0, match.start() - 30): match.end() + 30].replace("\n", " ")
                problems.append(f"{name}: raw TeX {match.group()!r} in '...{context_text}...'")
            if report["sideways"] > 0:
                problems.append(f"{name}: the page scrolls sideways by {report['sideways']} px")
            problems += [f"{name}: cut off, cannot scroll: {text!r}" for text in report["cut"]]
            problems += [f"{name}: image not shown: {img['src']}"
                         for img in report["images"] if img["width"] == 0]
            if name.startswith("tutorials/") and not any(
                img["inNotebook"] and img["width"] > 0 for img in report["images"]
            ):
                problems.append(f"{name}: a tutorial page with no figure")
        problems += [f"request to another host refused: {url}" for url in sorted(set(refused))]

        ids = {name: set(report["ids"]) for name, report in reports.items()}
        links = {link for report in reports.values() for link in report["links"]}
        internal = sorted(link for link in links if link.startswith(base_url))
        anchors = 0
        for link in internal:
            url, fragment = urldefrag(link)
            target = target_file(site, base_url, url)
            if not target.is_file():
                problems.append(f"broken link: {link}")
            elif fragment:
                anchors += 1
                target_name = str(target.relative_to(site))
                if target_name in ids and unquote(fragment) not in ids[target_name]:
                    problems.append(f"broken anchor: {link}")

    tutorials = [name for name in pages if name.startswith("tutorials/")]
    counts = {
        "pages": len(pages),
        "tutorial pages": len(tutorials),
        "tutorial figures shown": sum(
            img["inNotebook"] and img["width"] > 0
            for name in tutorials for img in reports[name]["images"]
        ),
        "typeset formulas": sum(report["math"] for report in reports.values()),
        "internal links checked": len(internal),
        "of them with an anchor": anchors,
        "external links (not followed)": len(links) - len(internal),
        "raw TeX left": sum(1 for p in problems if ": raw TeX " in p),
        "problems": len(problems),
    }
    (shots / "report.json").write_text(json.dumps({"counts": counts, "problems": problems},
                                                  indent=1))
    print(counts)
    assert len(tutorials) >= 7, tutorials
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems[:60])
