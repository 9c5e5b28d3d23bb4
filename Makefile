# The two commands: `make up` (a local dev cluster) and `make test` (the test suite).
# Both install what they need first (Debian packages, .venv, the package, pinned by constraints.txt).
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-test
UP_STAMP := $(VENV)/.installed-up
DATA_DIR ?= $(CURDIR)/.threefs
PYTEST_ARGS ?=

.PHONY: install up down status test proto clean

$(STAMP): pyproject.toml constraints.txt scripts/install.sh
	./scripts/install.sh test
	touch $(STAMP)

$(UP_STAMP): pyproject.toml constraints.txt scripts/install.sh
	./scripts/install.sh fuse,s3,hdfs,fsspec
	touch $(UP_STAMP)

install: $(STAMP)

up: $(UP_STAMP)
	$(BIN)/threefs up --data-dir $(DATA_DIR)

down:
	@if [ -x $(BIN)/threefs ]; then $(BIN)/threefs down --data-dir $(DATA_DIR); else echo "nothing to stop"; fi

status: $(UP_STAMP)
	$(BIN)/threefs status --data-dir $(DATA_DIR)

test: install
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

proto: install
	$(BIN)/python scripts/gen_proto.py

clean: down
	rm -rf $(VENV) $(DATA_DIR)
