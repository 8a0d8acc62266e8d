# Quick start: `make demo` and `make test`. Each first installs what is missing: the Debian
# packages (scripts/install-deps.sh) and, for the default build, the pinned PyTorch from PyPI
# in .venv (scripts/install-venv.sh); both quick and quiet when nothing is.
#
# The one switch of libtorch (README "Building"): TORCH=pip (the default: PyTorch 2.x from
# PyPI, built in build/) or TORCH=debian (Debian's libtorch-dev 1.13, no PyPI, in build-debian/).
TORCH ?= pip
ifeq ($(TORCH),debian)
BUILD ?= build-debian
else ifeq ($(TORCH),pip)
BUILD ?= build
else
$(error TORCH=$(TORCH): use TORCH=pip or TORCH=debian)
endif
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?= -DCMAKE_BUILD_TYPE=Release

FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 3

.PHONY: deps build test test-fast demo bench clean format fuzz

deps:
	@scripts/install-deps.sh
ifeq ($(TORCH),pip)
	@scripts/install-venv.sh
endif

$(BUILD)/build.ninja: CMakeLists.txt | deps
	@cmake -S . -B $(BUILD) -G Ninja $(CMAKE_FLAGS) -DLPLD_TORCH=$(TORCH) >/dev/null

build: deps $(BUILD)/build.ninja
	@cmake --build $(BUILD) -j $(JOBS)

# Tests run JOBS at a time, each with its share of the cores: OpenMP threads that outnumber the
# cores wait on each other (2 tests x 2 threads on 2 cores: ctest took 381 s, at 1 thread each
# 189 s; bench/results/test-time.md).
TEST_THREADS = $(shell echo $$(( $$(nproc) / $(JOBS) > 0 ? $$(nproc) / $(JOBS) : 1 )))

# Every test (ctest labels: fast, parity, kill, distributed; `ctest -L parity` runs a part),
# then the fuzz targets on their corpora.
test: build fuzz
	@cd $(BUILD) && OMP_NUM_THREADS=$(TEST_THREADS) ctest --output-on-failure -j $(JOBS) --timeout 600
	@scripts/fuzz-smoke.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

# The tests labelled fast (CI runs them on the TORCH=debian build).
test-fast: build
	@cd $(BUILD) && OMP_NUM_THREADS=$(TEST_THREADS) ctest --output-on-failure -j $(JOBS) --timeout 600 -L fast

# The libFuzzer targets (fuzz/), built with clang-14, ASan and UBSan; bench/fuzz.sh runs them
# for longer.
fuzz: deps
	@[ -f $(FUZZ_BUILD)/build.ninja ] || cmake -S . -B $(FUZZ_BUILD) -G Ninja \
	  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++-14 -DLPLD_FUZZ=ON \
	  -DLPLD_TORCH=debian >/dev/null
	@cmake --build $(FUZZ_BUILD) -j $(JOBS)

# The pipeline prints the result table (also in runs/demo/summary.md).
demo: build
	@$(BUILD)/lpld pipeline --config configs/demo-fmnist.yaml --out runs/demo

# The committed benchmark results (bench/README.md); about 50 minutes on 2 cores.
bench: build
	@bench/squeeze.sh && bench/recover.sh && bench/relabel.sh && bench/pipeline.sh

clean:
	rm -rf build build-debian $(FUZZ_BUILD)

format:
	clang-format -i $$(git ls-files '*.cpp' '*.h')
