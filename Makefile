# rewardbench: build, fetch ONNX Runtime, run the demo and the tests.
# ONNX Runtime comes from the `onnxruntime` PyPI wheel (ort's own download host is not needed).

ORT_VERSION ?= 1.31.1
ORT_DIR     ?= .ort
PYTHON      ?= python3
CARGO       ?= cargo
ORT_LIB     := $(ORT_DIR)/lib/libonnxruntime.so
# cargo's output folder: CARGO_TARGET_DIR when set, as cargo itself does.
BIN         := $(or $(CARGO_TARGET_DIR),target)/release/rewardbench
EXPORT_VENV ?= export/.venv

.PHONY: fuzz all setup setup-gpu build demo test test-cluster lint fmt clean fixtures export-venv crosscheck \
  optimum-venv optimum-fixtures

all: build

## setup: fetch ONNX Runtime $(ORT_VERSION) from PyPI into $(ORT_DIR)/lib (git-ignored)
setup: $(ORT_LIB)

$(ORT_LIB):
	mkdir -p $(ORT_DIR)/wheel $(ORT_DIR)/lib
	$(PYTHON) -m pip download --quiet --no-deps --only-binary=:all: \
	  --python-version 3.11 --platform manylinux_2_28_x86_64 \
	  onnxruntime==$(ORT_VERSION) -d $(ORT_DIR)/wheel
	$(PYTHON) -c "import zipfile,glob,os,shutil; \
	  w=glob.glob('$(ORT_DIR)/wheel/onnxruntime-$(ORT_VERSION)-*.whl')[0]; z=zipfile.ZipFile(w); \
	  d='$(ORT_DIR)/lib/libonnxruntime.so.$(ORT_VERSION)'; \
	  shutil.copyfileobj(z.open('onnxruntime/capi/libonnxruntime.so.$(ORT_VERSION)'), open(d,'wb')); os.chmod(d, 0o755)"
	ln -sf libonnxruntime.so.$(ORT_VERSION) $(ORT_DIR)/lib/libonnxruntime.so.1
	ln -sf libonnxruntime.so.$(ORT_VERSION) $(ORT_LIB)
	rm -rf $(ORT_DIR)/wheel

## setup-gpu: fetch onnxruntime-gpu $(ORT_VERSION) (CUDA 13, cuDNN 9; ~255 MB) into $(ORT_DIR)/gpu/lib
setup-gpu: $(ORT_DIR)/gpu/lib/libonnxruntime.so

$(ORT_DIR)/gpu/lib/libonnxruntime.so:
	mkdir -p $(ORT_DIR)/gpu/wheel $(ORT_DIR)/gpu/lib
	$(PYTHON) -m pip download --quiet --no-deps --only-binary=:all: \
	  --python-version 3.11 --platform manylinux_2_28_x86_64 \
	  onnxruntime-gpu==$(ORT_VERSION) -d $(ORT_DIR)/gpu/wheel
	$(PYTHON) -c "import zipfile,glob,os,shutil; \
	  w=glob.glob('$(ORT_DIR)/gpu/wheel/onnxruntime_gpu-$(ORT_VERSION)-*.whl')[0]; z=zipfile.ZipFile(w); \
	  libs=[n for n in z.namelist() if n.startswith('onnxruntime/capi/libonnxruntime')]; \
	  [shutil.copyfileobj(z.open(n), open('$(ORT_DIR)/gpu/lib/'+os.path.basename(n),'wb')) for n in libs]; \
	  [os.chmod('$(ORT_DIR)/gpu/lib/'+os.path.basename(n), 0o755) for n in libs]"
	ln -sf libonnxruntime.so.$(ORT_VERSION) $(ORT_DIR)/gpu/lib/libonnxruntime.so.1
	ln -sf libonnxruntime.so.$(ORT_VERSION) $(ORT_DIR)/gpu/lib/libonnxruntime.so
	rm -rf $(ORT_DIR)/gpu/wheel

## build: release binary at $(BIN), and rewardbench-gen beside it (a link: the judge command)
build:
	$(CARGO) build --release
	ln -sf rewardbench $(dir $(BIN))rewardbench-gen

## demo: score the bundled tiny Llama reward model on 40 real LLMBar rows
demo: setup build
	$(BIN) --model fixtures/models/tiny-llama-rm --dataset fixtures/data/llmbar.jsonl \
	  --load_json --batch_size 8 --output_dir results/demo --quiet

## test: unit, parity and CLI tests (no Python or torch needed); the Slurm test is test-cluster
test: setup
	$(CARGO) test --release -- --skip cluster::

## test-cluster: `rewardbench sweep` on a real Slurm cluster (start one as root: bash .ci/slurm-up.sh up);
## without one it says SKIPPED (with CI set, it fails)
test-cluster: setup
	$(CARGO) test --release --test integration cluster:: -- --nocapture

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --release --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

## export-venv: Python environment for export/ (torch, transformers; only to make models)
export-venv: $(EXPORT_VENV)/.installed
$(EXPORT_VENV)/.installed: export/requirements.txt
	$(PYTHON) -m venv $(EXPORT_VENV)
	$(EXPORT_VENV)/bin/pip install --quiet -r export/requirements.txt
	touch $@

## optimum-venv: Hugging Face Optimum (export/requirements-optimum.txt) added to export/.venv, the
## pins of export/requirements.txt as constraints (nothing else changes); for optimum-cli and the
## Optimum tests (tests/integration/optimum.rs)
optimum-venv: $(EXPORT_VENV)/.optimum
$(EXPORT_VENV)/.optimum: $(EXPORT_VENV)/.installed export/requirements-optimum.txt
	$(EXPORT_VENV)/bin/pip install --quiet -r export/requirements-optimum.txt -c export/requirements.txt
	touch $@

## optimum-fixtures: regenerate fixtures/models/*-optimum (the tiny checkpoints exported by optimum-cli)
optimum-fixtures: optimum-venv
	$(EXPORT_VENV)/bin/python export/make_optimum_fixtures.py

## fixtures: regenerate fixtures/ (tiny models, ONNX exports, PyTorch reference scores)
fixtures: export-venv
	$(EXPORT_VENV)/bin/python export/make_fixtures.py

clean:
	$(CARGO) clean
	rm -rf $(ORT_DIR) results

## bench: side-by-side benchmark on 500 LLMBar pairs: our binary vs PyTorch (RewardBench's way)
## vs onnxruntime in Python; then RewardBench 2-shaped (200 prompts x 4 completions): `rewardbench v2`
## vs RewardBench 0.1.4's own RB2 path, run by the reference venv (env REWARDBENCH_REF_PYTHON, default
## /work/refvenv/bin/python; (a) alone, loudly, without it); generates bench-models/llama-30m-rm first
## (git-ignored, ~220 MB)
.PHONY: bench
bench: setup build export-venv
	$(EXPORT_VENV)/bin/python export/make_bench_model.py
	$(EXPORT_VENV)/bin/python bench/run.py --bin $(BIN)
	$(EXPORT_VENV)/bin/python bench/rb2.py --bin $(BIN)

## fuzz: cargo fuzz on the dataset reader, the template renderer and split inference, FUZZ_SECONDS each (stable toolchain via RUSTC_BOOTSTRAP)
FUZZ_SECONDS ?= 120
fuzz:
	command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked
	fuzz/make_corpus.sh
	RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run dataset fuzz/corpus/dataset -- -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=4096
	RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run template fuzz/corpus/template -- -max_total_time=$(FUZZ_SECONDS) -timeout=20 -rss_limit_mb=4096
	RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run splits fuzz/corpus/splits -- -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=4096

## bench-dpo: DPO memory benchmark: generated Llama-style policy/reference (32k and 8k vocabularies) in both
## export forms (git-ignored bench-models/dpo), peak RSS and pairs/s for batch 8 pairs x 1024 tokens
bench-dpo: setup build export-venv
	$(EXPORT_VENV)/bin/python export/make_dpo_fixtures.py --bench bench-models/dpo --vocab 32000 8000

## bench-large: a random ~620M-parameter Llama reward model (git-ignored bench-models/llama-600m-rm, ~10 GB
## with both exports), exported with external data and scored on 20 LLMBar pairs vs PyTorch: export time and
## peak RSS, evaluation peak RSS, time to the first score, pairs/s (bench/large.py; ~30 min on 2 cores)
.PHONY: bench-large
bench-large: setup build export-venv
	$(EXPORT_VENV)/bin/python bench/large.py --bin $(BIN)

## bench-quant: fp16 and dynamic-int8 variants of the bench model (export/quantize.py; git-ignored
## bench-models/llama-30m-rm-fp16, -int8): accuracy change vs fp32 on the 500 bench pairs
.PHONY: bench-quant
bench-quant: setup build export-venv
	$(EXPORT_VENV)/bin/python export/make_bench_model.py
	$(EXPORT_VENV)/bin/python bench/quant.py
