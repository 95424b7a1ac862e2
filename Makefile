# SPDX-License-Identifier: MIT
# Thin wrapper over CMake presets. `make run` and `make test` install what is missing
# (deploy/install-deps.sh is idempotent), configure, build, then run or test.
.PHONY: run test deps build release dev bench fuzz format clean

JOBS ?= 2
CONFIG ?=

deps:
	@bash deploy/install-deps.sh

# Configure every time (a second or two): a preset's cache variables (SB_TESTING, say)
# reach a build directory configured before they existed.
dev: deps
	cmake --preset dev >/dev/null
	cmake --build build/dev -j$(JOBS)

release: deps
	cmake --preset release >/dev/null
	cmake --build build/release -j$(JOBS)

build: dev

# Starts switchboard with the embedded Redis, the demo page and the console on
# http://127.0.0.1:8080 (CONFIG=path/to/switchboard.conf to use a configuration file).
run: release
	./build/release/switchboard $(if $(CONFIG),-c $(CONFIG),)

# Every test (unit, integration against real servers, end-to-end) under ASan+UBSan, and
# every fuzz target for a few seconds on its corpus (builds build/fuzz with clang).
test: dev
	cd build/dev && ctest --output-on-failure -j$(JOBS) --timeout 300

# Every libFuzzer target of tests/fuzz for FUZZ_SECONDS each (10 min), clang + ASan/UBSan.
FUZZ_SECONDS ?= 600
fuzz: deps
	bash tests/fuzz/run.sh build
	bash tests/fuzz/run.sh $(FUZZ_SECONDS)

bench: release
	bash tests/bench/run.sh

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build
