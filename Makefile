# Two commands on a fresh machine:
#   make demo   sets up .venv and runs the demo (writes demo-output/)
#   make test   sets up .venv, executes the tutorials, builds the docs and runs the unit,
#               property, notebook and browser tests
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# One BLAS / torch thread per process: the models here are small, and the test run
# uses both cores through two worker processes.
export OMP_NUM_THREADS ?= 1
export OPENBLAS_NUM_THREADS ?= 1
export MKL_NUM_THREADS ?= 1
export MPLBACKEND ?= Agg
export NO_MKDOCS_2_WARNING ?= 1

.PHONY: venv system-deps demo tutorials docs-build test test-slow docs lint clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	# The CPU build of torch; the package itself accepts any torch >= 2.6.
	$(BIN)/python -m pip install torch==2.13.0
	$(BIN)/python -m pip install -e ".[dev,docs]"
	# The reference FID Inception for the parity tests; --no-deps: its torchvision is not needed.
	$(BIN)/python -m pip install --no-deps torch-fidelity==0.4.0
	touch $@

# Debian packages listed in system-packages.txt: installed with apt-get where the set-up runs
# as root (CI does) and one is missing; elsewhere the tests that need one say so.
SYSTEM_PACKAGES := $(strip $(shell sed -e 's/\#.*//' system-packages.txt))
system-deps:
	@missing=""; for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then echo "Debian packages present: $(SYSTEM_PACKAGES)"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	else echo "Not root (or no apt-get): not installing$$missing; the tests that need them will say so."; fi

demo: venv
	$(BIN)/minidiff demo --out demo-output

# The tutorials, executed once (two at a time, at their committed settings) into
# build/tutorials/: the site renders these copies and the tests check them.
tutorials: venv
	$(BIN)/python docs/hooks/execute_tutorials.py --jobs 2

# The site, with the executed tutorials and MathJax, in site/ (strict: a broken link fails).
docs-build: tutorials
	$(BIN)/mkdocs build --strict --quiet --site-dir site

# Lint, execute the tutorials, build the docs, then one pytest run over the unit and
# property tests, the executed notebooks and the site in headless Chromium (screenshots
# in site-screenshots/).
test: venv system-deps
	$(BIN)/ruff check minidiff tests benchmarks docs/hooks
	$(BIN)/python docs/hooks/execute_tutorials.py --jobs 2
	$(BIN)/mkdocs build --strict --quiet --site-dir site
	$(BIN)/python -m pytest -n 2 --hypothesis-profile=ci tests

test-slow: venv
	$(BIN)/python -m pytest -n 2 --hypothesis-profile=thorough -m "slow or not slow" tests

docs: tutorials
	$(BIN)/mkdocs serve

lint: venv
	$(BIN)/ruff check minidiff tests benchmarks docs/hooks

clean:
	rm -rf $(VENV) site site-screenshots build/tutorials .cache/mkdocs-jupyter demo-output .pytest_cache .hypothesis
