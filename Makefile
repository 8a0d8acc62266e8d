# Quick start: `make demo` and `make test`. Each first installs the Debian packages
# that are missing (scripts/install-deps.sh: quick and quiet when nothing is).
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?= -DCMAKE_BUILD_TYPE=Release

.PHONY: deps build test demo bench clean format

deps:
	@scripts/install-deps.sh

$(BUILD)/build.ninja: CMakeLists.txt | deps
	@cmake -S . -B $(BUILD) -G Ninja $(CMAKE_FLAGS) >/dev/null

build: deps $(BUILD)/build.ninja
	@cmake --build $(BUILD) -j $(JOBS)

test: build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 600

# The pipeline prints the result table (also in runs/demo/summary.md).
demo: build
	@$(BUILD)/lpld pipeline --config configs/demo-fmnist.yaml --out runs/demo

# The committed benchmark results (bench/README.md); about 50 minutes on 2 cores.
bench: build
	@bench/squeeze.sh && bench/recover.sh && bench/relabel.sh && bench/pipeline.sh

clean:
	rm -rf $(BUILD)

format:
	clang-format -i $$(git ls-files '*.cpp' '*.h')
