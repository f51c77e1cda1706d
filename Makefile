# hforge-nb: the two commands of the README, each creating .venv on first use.
#   make reproduce   run every numbered notebook on the default profile
#   make test        run pytest (unit tests, doctests, nbval on the notebooks)
PYTHON   ?= python3
VENV     ?= .venv
PROFILE  ?= profiles/default.toml
RUN_DIR  ?= runs/$(basename $(notdir $(PROFILE)))
EXTRAS   ?= dev,dft,bench
# Debian libraries GPAW compiles against (extra "dft"); installed when missing.
SYSTEM_LIBS := libxc-dev libopenblas-dev libfftw3-dev
BIN      := $(VENV)/bin
STAMP    := $(VENV)/.hforge-installed

.PHONY: reproduce test env clean-env

env: $(STAMP)

# torch first, from its exact pin (a looser range pulls CUDA packages);
# then everything else under constraints.txt so nothing replaces it.
# GPAW compiles from source against SYSTEM_LIBS with tools/gpaw_siteconfig.py.
$(STAMP): pyproject.toml constraints.txt tools/gpaw_siteconfig.py
	@dpkg -s $(SYSTEM_LIBS) >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq $(SYSTEM_LIBS); \
	  else echo "GPAW needs Debian packages: sudo apt-get install $(SYSTEM_LIBS)"; exit 1; fi; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	GPAW_CONFIG=$(CURDIR)/tools/gpaw_siteconfig.py $(BIN)/python -m pip install -q -c constraints.txt -e ".[$(EXTRAS)]"
	$(BIN)/python -m pip check
	touch $(STAMP)

reproduce: $(STAMP)
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 $(BIN)/python -m hforge_nb.pipeline --profile $(PROFILE) --run-dir $(RUN_DIR)

test: $(STAMP)
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 $(BIN)/python -m pytest

clean-env:
	rm -rf $(VENV)
