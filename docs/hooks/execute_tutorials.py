"""Execute the tutorials into a build folder, for the documentation site and the tests.

The notebooks in ``tutorials/`` are committed without outputs. This script runs each of
them once, at the settings it is committed with, in a fresh kernel whose working
directory is ``tutorials/``, and writes the executed copy (outputs and figures included)
to ``build/tutorials/``. The site build renders those copies (``docs/hooks/tutorials.py``)
and ``tests/docs/test_tutorials.py`` checks them, so a test run executes each notebook
once.

Run from the repository root::

    python docs/hooks/execute_tutorials.py            # all tutorials, two at a time
    python docs/hooks/execute_tutorials.py --jobs 1 tutorials/01_*.ipynb

A notebook that raises is still written, with the error as the failing cell's output,
and the script exits with status 1 after the others have run.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TUTORIALS = ROOT / "tutorials"
EXECUTED = ROOT / "build" / "tutorials"
TIMEOUT_S = 1800  # per cell


def execute(notebook: Path, out_dir: Path, timeout: int = TIMEOUT_S) -> tuple[str, float, str]:
    """Run one notebook in a fresh kernel and write the executed copy to ``out_dir``.

    Returns:
        The notebook's name, the seconds it took and the first line of its error ("" if
        none).
    """
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    # The kernel shows figures inline only if no other matplotlib backend is forced on it.
    os.environ.pop("MPLBACKEND", None)
    nb = nbformat.read(notebook, as_version=4)
    client = NotebookClient(
        nb, timeout=timeout, kernel_name="python3",
        resources={"metadata": {"path": str(notebook.parent)}},
    )
    start = time.perf_counter()
    error = ""
    try:
        client.execute()
    except CellExecutionError as exc:
        lines = [line for line in str(exc).splitlines() if line.strip()]
        error = lines[-1] if lines else type(exc).__name__
    elapsed = time.perf_counter() - start
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / notebook.name
    partial = target.with_name(f".{target.name}.tmp")
    nbformat.write(nb, partial)
    partial.replace(target)
    return notebook.name, elapsed, error


def main(argv: list[str] | None = None) -> int:
    """Execute the notebooks named on the command line (default: every tutorial)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument("--out", type=Path, default=EXECUTED, help="folder of the executed copies")
    parser.add_argument("--jobs", type=int, default=2, help="notebooks run at the same time")
    parser.add_argument("--timeout", type=int, default=TIMEOUT_S, help="seconds per cell")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f"--jobs must be at least 1, got {args.jobs}")
    notebooks = args.notebooks or sorted(TUTORIALS.glob("*.ipynb"))
    missing = [str(path) for path in notebooks if not path.is_file()]
    if missing:
        parser.error(f"no such notebook: {', '.join(missing)}")
    # Largest first, so that the two workers finish close together.
    notebooks = sorted(notebooks, key=lambda path: path.stat().st_size, reverse=True)
    start = time.perf_counter()
    failed = []
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        futures = [pool.submit(execute, nb, args.out, args.timeout) for nb in notebooks]
        for future in futures:
            name, elapsed, error = future.result()
            print(f"{name}: {elapsed:.0f} s" + (f", FAILED: {error}" if error else ""), flush=True)
            if error:
                failed.append(name)
    total = time.perf_counter() - start
    print(f"{len(notebooks) - len(failed)} of {len(notebooks)} tutorials executed into "
          f"{args.out} in {total:.0f} s ({args.jobs} at a time)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
