# backbone: the two commands that matter are `make run` and `make test` (see README.md).
JOBS ?= 2
BUILD ?= build
ASAN_BUILD ?= build-asan
BENCH_BUILD ?= build-bench
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
CMAKE_FLAGS ?=
GENERATOR ?= Ninja

.PHONY: all deps build build-asan build-bench build-fuzz run test test-unit test-module test-asan bench fuzz format clean

all: build

deps:
	@scripts/install-deps.sh

$(BUILD)/CMakeCache.txt: | deps
	cmake -S . -B $(BUILD) -G $(GENERATOR) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS)

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j$(JOBS)

# The sanitizer tree reuses the plain tree's generated Pub/Sub library (BACKBONE_PROTO_FROM).
$(ASAN_BUILD)/CMakeCache.txt: | deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j$(JOBS) --target backbone_pubsub_proto
	cmake -S . -B $(ASAN_BUILD) -G $(GENERATOR) -DCMAKE_BUILD_TYPE=Debug -DBACKBONE_SANITIZE=ON -DBACKBONE_BENCH=OFF -DBACKBONE_PROTO_FROM=$(abspath $(BUILD)) $(CMAKE_FLAGS)

build-asan: deps $(ASAN_BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j$(JOBS) --target backbone_pubsub_proto
	cmake --build $(ASAN_BUILD) -j$(JOBS)

$(BENCH_BUILD)/CMakeCache.txt: | deps
	cmake -S . -B $(BENCH_BUILD) -G $(GENERATOR) -DCMAKE_BUILD_TYPE=Release -DBACKBONE_TESTS=OFF $(CMAKE_FLAGS)

build-bench: deps $(BENCH_BUILD)/CMakeCache.txt
	cmake --build $(BENCH_BUILD) -j$(JOBS)

# The libFuzzer programs (fuzz/), built by clang with ASan and UBSan; the Pub/Sub library comes
# from the plain tree, as for the sanitizer tree.
$(FUZZ_BUILD)/CMakeCache.txt: | deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j$(JOBS) --target backbone_pubsub_proto
	CC=clang CXX=clang++ cmake -S . -B $(FUZZ_BUILD) -G $(GENERATOR) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBACKBONE_FUZZ=ON -DBACKBONE_TESTS=OFF -DBACKBONE_BENCH=OFF -DBACKBONE_UNITY=ON -DBACKBONE_PROTO_FROM=$(abspath $(BUILD)) $(CMAKE_FLAGS)

build-fuzz: deps $(FUZZ_BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j$(JOBS) --target backbone_pubsub_proto
	cmake --build $(FUZZ_BUILD) -j$(JOBS) --target $$(sed -n 's/^set(BACKBONE_FUZZ_TARGETS \(.*\))/\1/p' fuzz/CMakeLists.txt | sed 's/[^ ]*/fuzz_&/g')

# Each fuzz target for FUZZ_SECONDS (make fuzz FUZZ_SECONDS=600).
fuzz: build-fuzz
	scripts/fuzz.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

# Starts the main job on the embedded defaults (see README.md). Builds the program alone.
run: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j$(JOBS) --target backbone
	@scripts/run.sh $(BUILD)/backbone

# The tests run with throwaway PostgreSQL, MariaDB and nats-server servers on loopback (scripts/with-test-servers.sh),
# started before and stopped after.
CTEST = ctest --output-on-failure -j$(JOBS) --test-dir

test-unit: build
	scripts/with-test-servers.sh $(CTEST) $(BUILD)

# One module's tests, for the edit-compile-test cycle: make test-module M=pipeline
test-module: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j$(JOBS) --target $(M)_tests
	scripts/with-test-servers.sh $(CTEST) $(BUILD) -L '^$(M)$$'

test-asan: build-asan
	scripts/with-test-servers.sh $(CTEST) $(ASAN_BUILD)

# Everything: the plain build and the ASan+UBSan build, each with every test (scripts/test-all.sh:
# the plain tests run while the sanitizer build compiles; doc/build.md).
test: build
	@scripts/test-all.sh "$(MAKE)" $(BUILD) $(ASAN_BUILD) $(JOBS)

bench: build-bench
	@scripts/bench.sh $(BENCH_BUILD)

format:
	clang-format -i $$(git ls-files '*.h' '*.cc')

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(BENCH_BUILD) $(FUZZ_BUILD)
