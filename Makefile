# nsqpy: `make run` starts a local node, `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DATA := .run-data
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test venv bench wrk fuzz crash clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	@# byte-compile like a regular install does (the daemons then start without compiling)
	PYTHONDONTWRITEBYTECODE= $(BIN)/python -m compileall -q src
	@# browser tests drive Debian's chromium (no browser download happens at run time)
	command -v chromium >/dev/null || { $(SUDO) apt-get update -q && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; }
	touch $(STAMP)

run: $(STAMP)
	mkdir -p $(DATA)/nsqd
	$(BIN)/python -m nsqpy.devcluster --data-dir $(DATA)

test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider

bench: $(STAMP) wrk
	PYTHONDONTWRITEBYTECODE= $(BIN)/python -m compileall -q src
	$(BIN)/python bench/run_bench.py

# crash harness: SIGKILL nsqd 20 times per mode under load (docs/durability.md)
crash: $(STAMP)
	$(BIN)/python bench/crash_harness.py --kills $${CRASH_KILLS:-20}

# bench/http_bench.py drives nsqd's HTTP /pub with Debian's wrk
wrk:
	@command -v wrk >/dev/null || { $(SUDO) apt-get update -q && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk; }

# five slow properties x 200,000 examples = a million fuzz cases (about 40 minutes)
fuzz: $(STAMP)
	NSQPY_FUZZ_EXAMPLES=$${NSQPY_FUZZ_EXAMPLES:-200000} $(BIN)/python -m pytest -q -p no:cacheprovider -m slow tests/test_protocol_fuzz.py

clean:
	rm -rf $(VENV) $(DATA) build *.egg-info src/*.egg-info
