// MathJax 3 settings for the whole site. The MathJax script itself is served from the
// site (javascripts/mathjax/, copied in by docs/hooks/tutorials.py), never from a CDN.
//
// Math is typeset only inside the spans and divs that pymdownx.arithmatex writes for the
// Markdown pages and the API reference (\(...\) and \[...\]) and inside the Markdown
// cells of the tutorials ($...$ and $$...$$, as Jupyter writes them). Code is never
// touched, and a dollar sign elsewhere stays a dollar sign.
const MATH_CONTAINERS = ".arithmatex, .jp-RenderedMarkdown";

function typesetSite() {
  const mathjax = window.MathJax;
  mathjax.typesetClear();
  mathjax.texReset();
  return mathjax.typesetPromise(Array.from(document.querySelectorAll(MATH_CONTAINERS)));
}

window.MathJax = {
  tex: {
    inlineMath: [["\\(", "\\)"], ["$", "$"]],
    displayMath: [["\\[", "\\]"], ["$$", "$$"]],
    processEscapes: true,
    processEnvironments: true
  },
  startup: {
    typeset: false,
    pageReady: () => window.MathJax.startup.defaultPageReady().then(typesetSite)
  }
};

// Typeset again after each page change (Material's instant navigation). If the MathJax
// script did not load, MathJax is still the settings object above: the page keeps its
// TeX source and nothing throws.
document$.subscribe(() => {
  const mathjax = window.MathJax;
  if (!mathjax || !mathjax.startup || !mathjax.startup.promise || !mathjax.typesetPromise) {
    return;
  }
  mathjax.startup.promise = mathjax.startup.promise.then(typesetSite);
});
