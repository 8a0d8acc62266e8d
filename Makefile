# Quick start: `make demo` and `make test`. Each first installs the Debian packages
# that are missing (scripts/install-deps.sh: quick and quiet when nothing is).
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?= -DCMAKE_BUILD_TYPE=Release

FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 3

.PHONY: deps build test demo bench clean format fuzz

deps:
	@scripts/install-deps.sh

$(BUILD)/build.ninja: CMakeLists.txt | deps
	@cmake -S . -B $(BUILD) -G Ninja $(CMAKE_FLAGS) >/dev/null

build: deps $(BUILD)/build.ninja
	@cmake --build $(BUILD) -j $(JOBS)

test: build fuzz
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 600
	@scripts/fuzz-smoke.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

# The libFuzzer targets (fuzz/), built with clang-14, ASan and UBSan; bench/fuzz.sh runs them
# for longer.
fuzz: deps
	@[ -f $(FUZZ_BUILD)/build.ninja ] || cmake -S . -B $(FUZZ_BUILD) -G Ninja \
	  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++-14 -DLPLD_FUZZ=ON >/dev/null
	@cmake --build $(FUZZ_BUILD) -j $(JOBS)

# The pipeline prints the result table (also in runs/demo/summary.md).
demo: build
	@$(BUILD)/lpld pipeline --config configs/demo-fmnist.yaml --out runs/demo

# The committed benchmark results (bench/README.md); about 50 minutes on 2 cores.
bench: build
	@bench/squeeze.sh && bench/recover.sh && bench/relabel.sh && bench/pipeline.sh

clean:
	rm -rf $(BUILD) $(FUZZ_BUILD)

format:
	clang-format -i $$(git ls-files '*.cpp' '*.h')
