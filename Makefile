# kdbook: two commands do everything on a fresh machine.
#   make book   set up, execute the notebooks with papermill at the embedded default, build _build/html
#   make test   set up, run the whole test suite (kdlib tests + notebook smoke runs under nbval)
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.kdbook-installed
PRESET ?= cpu
ONLY ?=
# OpenBLAS threads (jaxlib eigh, used by Shampoo) fight XLA for the cores: 4x slower steps.
export OPENBLAS_NUM_THREADS ?= 1

.PHONY: book book-check test check test-notebooks setup data notebooks lint verify-store bench clean-book browser browser-deps html queue queue-park queue-status

setup: $(STAMP) data

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[book,test]"
	@touch $(STAMP)

# The embedded data: Debian's dataset-fashion-mnist, or a folder named by KDLIB_DATA.
FMNIST_DIR := /usr/share/datasets/fashion-mnist
data:
	@if [ -n "$$KDLIB_DATA" ] && [ -f "$$KDLIB_DATA/train-images-idx3-ubyte.gz" ]; then exit 0; fi; \
	if [ -f $(FMNIST_DIR)/train-images-idx3-ubyte.gz ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "Installing Debian's dataset-fashion-mnist (the embedded data) ..."; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null; \
	else \
	  echo "Fashion-MNIST is missing: install Debian's package dataset-fashion-mnist (sudo apt-get install dataset-fashion-mnist), or set KDLIB_DATA to a folder holding train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz."; \
	  exit 1; \
	fi

# Execute notebooks with papermill (stored results are reused; only missing runs train).
notebooks: setup
	$(PY) -m kdlib.book run --preset $(PRESET) $(if $(ONLY),--only $(ONLY))

# The book's chapters (_toc.yml) are executed; a notebook not in the toc yet is only smoke-tested.
book: setup
	$(PY) -m kdlib.book run --preset $(PRESET) --toc
	$(MAKE) html
	@echo "Book: $(CURDIR)/_build/html/index.html"

# The committed book is what this code computes from the stored runs: execute every chapter
# of the toc at cpu (it trains nothing when every run is stored: tests/test_stored_results.py)
# and fail where a page, table or claims file differs from the commit. CI runs it after make
# test, so a change to the rules or the text cannot land with stale pages.
book-check: setup
	$(PY) -m kdlib.book run --preset cpu --toc
	@changed=$$(git status --porcelain -- book results notebooks); if [ -n "$$changed" ]; then \
	  echo "$$changed"; echo "book-check: the committed book is stale: run 'make book' and" \
	    "commit book/ and results/"; exit 1; fi; echo "book-check: the committed book is current"

# Render the executed notebooks in book/ as they are (no execution).
html: setup
	$(VENV)/bin/jupyter-book build . -W -n --keep-going

# kdlib tests, every notebook at the smoke preset (nbval), then the committed book rendered and
# checked in headless Chromium.
# Notebooks run two at a time (-n auto: a run two notebooks share is locked and trained once).
# (LLVM's optimization level 0 no longer pays since a smoke group's runs are vmapped: chapter
# 01's policies trained in 195 s at level 0 vs 154 s at the default, cold cache.)
NBVAL := KDLIB_PRESET=smoke $(PY) -m pytest -q -n auto --dist loadfile --nbval-lax \
	--sanitize-with tests/nbval_sanitize.cfg -p no:cacheprovider
NOTEBOOKS := $(wildcard notebooks/[0-9][0-9]_*.ipynb)

# Each phase prints its seconds and its slowest tests (issue 15: keep the phases measured).
# The smoke runs a previous make test stored (gitignored outputs) are removed first unless the
# very same code trained them (kdlib.smoke_runs: a fingerprint of kdlib's sources and the
# library versions): a changed engine must not pass on them, config hashes do not see code.
CLEAR_SMOKE_RUNS := $(PY) -m kdlib.smoke_runs
PHASE = start=$$(date +%s); $(1) && echo "[make test] $(2): $$(( $$(date +%s) - start )) s"
test: setup browser-deps
	@$(call PHASE,$(PY) -m pytest -q -n 2 --durations=15 -p no:cacheprovider tests --ignore=tests/test_browser.py,kdlib tests)
	@$(CLEAR_SMOKE_RUNS)
	@$(call PHASE,$(NBVAL) --durations=15 $(NOTEBOOKS),notebooks at smoke)
	@$(call PHASE,$(MAKE) html,html)
	@$(call PHASE,$(PY) -m pytest -q -rs tests/test_browser.py,browser check)

# The edit-test loop: every module's unit tests without those marked slow (each over ~4 s on
# 2 cores: the engine's kill/resume, 8-device and group tests, mock paper runs), two at a time.
check: setup
	$(PY) -m pytest -q -m "not slow" -n 2 -p no:cacheprovider tests --ignore=tests/test_browser.py

# Only the notebooks at the smoke preset (nbval), e.g. after editing one.
test-notebooks: setup
	$(CLEAR_SMOKE_RUNS)
	$(NBVAL) $(NOTEBOOKS)

# The built book in headless Chromium (Debian's chromium + chromium-driver, installed when root
# and apt-get are available): images load, internal links resolve; screenshots in _build/screenshots.
browser: setup browser-deps
	$(PY) -m pytest -q -rs tests/test_browser.py

browser-deps:
	@if command -v chromedriver >/dev/null && { command -v chromium || command -v chromium-browser; } >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "Installing Debian's chromium and chromium-driver (for the browser test) ..."; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	else \
	  echo "The browser test needs Chromium and its driver: sudo apt-get install chromium chromium-driver (skipped without them)"; \
	fi

# The cpu evidence queue (kdlib.experiments.queue): niced, from a clean worktree of HEAD, storing
# into this checkout's results/ and committing each finished run folder here; supervised, so a
# crash restarts it (an item it crashed in twice is skipped).
QUEUE_DIR ?= ../kdbook-queue
# Seed replicates train side by side in this many processes (kdlib.experiments.queue_workers:
# two single runs trained 1.4x the images of one at a time on this 2-core machine).
QUEUE_WORKERS ?= 2
queue: setup
	@if pgrep -f "[k]dlib.experiments.queue --commit $(CURDIR)" > /dev/null; then \
	  echo "a queue is already running for $(CURDIR) (pgrep -af kdlib.experiments.queue): checking its worktree out anew would change the code under it; make queue-park stops it"; exit 1; fi
	@test -d $(QUEUE_DIR) || git worktree add --detach $(QUEUE_DIR) HEAD
	@git -C $(QUEUE_DIR) checkout -q --detach $$(git rev-parse HEAD)
	cd $(QUEUE_DIR) && KDLIB_RESULTS=$(CURDIR)/results PYTHONPATH=$$PWD \
	  nice -n 19 $(CURDIR)/$(PY) -m kdlib.experiments.queue --commit $(CURDIR) --supervise \
	  --workers $(QUEUE_WORKERS)

# Stop the queue (SIGTERM, acted on once a group's checkpoints or a git commit under way are
# done; it loses at most the 10 minutes since its last checkpoint), wait up to 5 minutes for
# its final commit (a compile can hold a stop for minutes), and commit its unfinished runs'
# complete checkpoints (park refuses while a queue still runs): a session's checkout is laid
# anew and checkpoints are gitignored, so a group longer than the session resumes only from
# parked ones.
queue-park: setup
	-@pkill -TERM -f "[k]dlib.experiments.queue --commit"; for i in $$(seq 300); do \
	  pgrep -f "[k]dlib.experiments.queue --commit" > /dev/null || break; sleep 1; done
	$(PY) -m kdlib.experiments.queue --park $(CURDIR)

# What the queue is training now: each unfinished run's steps and hours left (reads the logs).
queue-status: setup
	$(PY) -m kdlib.experiments.queue --progress $(CURDIR)

# Retrain the shortest stored cpu run of every family (kdlib.retrain --families) at this commit
# and compare with its stored numbers: the long families the test suite leaves out (~30 min).
verify-store: setup
	$(PY) -m kdlib.retrain --families --record results/cpu/store_check.json

lint: setup
	$(VENV)/bin/ruff check kdlib tests benchmarks notebooks
	$(VENV)/bin/mypy

bench: setup
	$(PY) benchmarks/building_blocks.py --quick

clean-book:
	rm -rf _build
