# The two commands of the README: `make demo` and `make test`. Both set up .venv on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-all lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/pip install --quiet -c constraints.txt torch==2.13.0
	$(BIN)/pip install --quiet -c constraints.txt -e ".[dev,frameworks]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/snnprof count configs/ottt_vgg11_ws.toml --profile cmos45nm_fp32 --profile loihi --json reports/demo_ottt_vgg11_ws.json
	$(BIN)/python -m snnprof.demo_summary reports/demo_ottt_vgg11_ws.json
	$(BIN)/snnprof report configs/ottt_vgg11_ws.toml --profile cmos45nm_fp32 --profile loihi --out reports/demo_ottt_vgg11_ws.html

test: $(STAMP)
	$(BIN)/ruff check snnprof tests benchmarks examples
	$(BIN)/python -m pytest -q

test-all: $(STAMP)
	$(BIN)/python -m pytest -q -m "slow or not slow"

lint: $(STAMP)
	$(BIN)/ruff check snnprof tests benchmarks examples

bench: $(STAMP)
	$(BIN)/python -m pytest benchmarks -q -p no:cacheprovider -o addopts="" --benchmark-columns=median,iqr,rounds

clean:
	rm -rf $(VENV) build *.egg-info snnprof/_native
