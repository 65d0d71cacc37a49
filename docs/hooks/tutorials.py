"""mkdocs hook: render the executed tutorials and ship MathJax with the site.

1. The tutorial pages are built from the executed copies in ``build/tutorials/`` (written
   by ``docs/hooks/execute_tutorials.py``) instead of the committed notebooks, which have
   no outputs. A missing copy, or one of an older version of the notebook, is a warning,
   so ``mkdocs build --strict`` fails rather than publish a tutorial without its figures
   or with old text.
2. MathJax 3 comes from the ``django-static-mathjax`` package of the ``docs`` extra (it
   ships MathJax's ``es5`` build) and is copied into ``site/javascripts/mathjax/``: the
   pages typeset their math with no network. Without the package the build warns, and
   the pages show the TeX source (``docs/javascripts/mathjax.js`` guards every call).
3. Links in the tutorials are written for the repository, where they work in Jupyter and
   on a code host: ``../docs/theory/score_matching.md#anchor`` or
   ``02_toy_diffusion_in_numpy.ipynb``. On the site they are rewritten to the URLs of those
   pages; a link to a file that is not a page of the site is a warning.
"""

from __future__ import annotations

import json
import logging
import posixpath
import re
import shutil
from importlib.util import find_spec
from pathlib import Path

from mkdocs.utils import get_relative_url

log = logging.getLogger("mkdocs.hooks.tutorials")

EXECUTED = Path(__file__).resolve().parents[2] / "build" / "tutorials"
MATHJAX_TARGET = Path("javascripts") / "mathjax"
# The combined TeX + MathML -> CommonHTML component and what it loads on demand: the
# CommonHTML fonts, the TeX extensions (autoload), the menu and the accessibility code.
MATHJAX_PARTS = ("tex-mml-chtml.js", "input", "output", "ui", "a11y", "sre", "adaptors")


def _sources(path: Path) -> list[tuple[str, str]]:
    """Each cell's type and source, to tell whether an executed copy is of this notebook."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return [(c["cell_type"], "".join(c["source"])) for c in cells]


def on_files(files, config):
    """Point each tutorial page at its executed copy."""
    for file in files:
        if is_tutorial(file):
            executed = EXECUTED / Path(file.src_uri).name
            if executed.is_file():
                if _sources(executed) != _sources(Path(file.abs_src_path)):
                    log.warning("%s changed since it was executed: run `make tutorials`",
                                file.src_uri)
                file.abs_src_path = str(executed)
            else:
                log.warning(
                    "%s has not been executed: run `make tutorials` (the page would show "
                    "no outputs)", file.src_uri,
                )
    return files


# href="..." of a relative link to a Markdown page or a notebook, with an optional #anchor.
_REPO_LINK = re.compile(r'href="(?![a-z][a-z0-9+.-]*:|/|#)([^"#]+\.(?:md|ipynb))(#[^"]*)?"')


def is_tutorial(file) -> bool:
    """True for the page of a tutorial notebook."""
    return file.src_uri.startswith("tutorials/") and file.src_uri.endswith(".ipynb")


def on_page_content(html, page, config, files):
    """Rewrite a tutorial's links to repository files into links to their site pages."""
    if not is_tutorial(page.file):
        return html

    def site_link(match: re.Match) -> str:
        target = posixpath.normpath(posixpath.join("tutorials", match.group(1)))
        src_uri = target[len("docs/"):] if target.startswith("docs/") else target
        file = files.get_file_from_path(src_uri)
        if file is None:
            log.warning("%s links to %s, which is not a page of the site",
                        page.file.src_uri, match.group(1))
            return match.group(0)
        return f'href="{get_relative_url(file.url, page.url)}{match.group(2) or ""}"'

    return _REPO_LINK.sub(site_link, html)


def mathjax_source() -> Path | None:
    """The ``es5`` folder of the installed MathJax, or None if it is not installed."""
    spec = find_spec("mathjax")
    if spec is None or not spec.submodule_search_locations:
        return None
    es5 = Path(next(iter(spec.submodule_search_locations))) / "static" / "mathjax" / "es5"
    return es5 if (es5 / "tex-mml-chtml.js").is_file() else None


def on_post_build(config):
    """Copy MathJax into the built site."""
    source = mathjax_source()
    if source is None:
        log.warning(
            "MathJax is not installed (pip install django-static-mathjax, in the docs "
            "extra): the pages will show raw TeX"
        )
        return
    target = Path(config["site_dir"]) / MATHJAX_TARGET
    for part in MATHJAX_PARTS:
        path = source / part
        if path.is_dir():
            shutil.copytree(path, target / part, dirs_exist_ok=True)
        elif path.is_file():
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target / part)
