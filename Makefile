# roomcast build. `make` = release build of build/roomcast.
# Objects live in build/<config>/ so sanitizer and release objects never mix.
#   make                      release build (build/roomcast, build/roomcast-bench)
#   make run                  install deps (scripts/setup.sh), build, run on 127.0.0.1:8080
#   make test                 install deps, build, run every test suite, print a summary
#   make test SANITIZE=address|thread|undefined
#   make bench                Google Benchmark micro-benchmarks (table + JSON in build/)
#   make fuzz [FUZZ_SECONDS=60]  libFuzzer+ASan+UBSan on every target; make fuzz-smoke = 20 s each
#   make soak [SOAK_SECONDS=60]  ASan server under churn, rooms, slow readers, deflate; RSS must come back
#   make format               clang-format every source file

SANITIZE ?=
CXX ?= g++
ifeq ($(CXX),c++)
CXX := g++
endif

ifeq ($(SANITIZE),)
CONFIG := release
SANFLAGS :=
else ifeq ($(SANITIZE),address)
CONFIG := asan
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
else ifeq ($(SANITIZE),undefined)
CONFIG := ubsan
SANFLAGS := -fsanitize=undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
else ifeq ($(SANITIZE),thread)
CONFIG := tsan
SANFLAGS := -fsanitize=thread -fno-omit-frame-pointer
else
$(error SANITIZE must be address, undefined or thread (got '$(SANITIZE)'))
endif

BUILD := build/$(CONFIG)
NPROC := $(shell nproc 2>/dev/null || echo 2)
OPT ?= -O2
WERROR := $(if $(CI),-Werror,)
CXXFLAGS := -std=c++20 $(OPT) -g -Wall -Wextra -Wshadow -Wnon-virtual-dtor -Wimplicit-fallthrough \
            $(WERROR) $(SANFLAGS) -Iinclude -Isrc -MMD -MP -pthread
LDFLAGS := $(SANFLAGS) -pthread
LIBS := -lssl -lcrypto -lz -luring

LIB_SRCS := $(filter-out src/main.cpp,$(wildcard src/*/*.cpp))
LIB_OBJS := $(LIB_SRCS:%.cpp=$(BUILD)/%.o)
MAIN_OBJ := $(BUILD)/src/main.o
TEST_SRCS := $(wildcard test/*/*_test.cpp)
TEST_OBJS := $(TEST_SRCS:%.cpp=$(BUILD)/%.o)
MICRO_SRCS := $(wildcard bench/micro/*.cpp)
MICRO_OBJS := $(MICRO_SRCS:%.cpp=$(BUILD)/%.o)
LOAD_SRCS := $(wildcard bench/load/*.cpp)
LOAD_OBJS := $(LOAD_SRCS:%.cpp=$(BUILD)/%.o)
PEER_SRCS := $(wildcard bench/peers/*.cpp)
PEER_BINS := $(PEER_SRCS:bench/peers/%.cpp=$(BUILD)/peer-%)

SERVER := $(BUILD)/roomcast
UNIT := $(BUILD)/unit_tests
MICRO := $(BUILD)/roomcast-micro
LOADGEN := $(BUILD)/roomcast-bench

.PHONY: all run test bench setup format tidy clean peers
all: $(SERVER) $(LOADGEN) $(if $(SANFLAGS),,build/roomcast build/roomcast-bench)

# Stable paths for the release build.
build/roomcast: $(SERVER)
	@ln -sf release/roomcast $@
build/roomcast-bench: $(LOADGEN)
	@ln -sf release/roomcast-bench $@

$(BUILD)/libroomcast.a: $(LIB_OBJS)
	@mkdir -p $(@D)
	@rm -f $@
	ar rcs $@ $^

$(SERVER): $(MAIN_OBJ) $(BUILD)/libroomcast.a
	$(CXX) $(LDFLAGS) -o $@ $^ $(LIBS)

$(UNIT): $(TEST_OBJS) $(BUILD)/libroomcast.a
	$(CXX) $(LDFLAGS) -o $@ $^ -lgtest -lgtest_main $(LIBS)

$(MICRO): $(MICRO_OBJS) $(BUILD)/libroomcast.a
	$(CXX) $(LDFLAGS) -o $@ $^ -lbenchmark -lbenchmark_main $(LIBS)

$(LOADGEN): $(LOAD_OBJS) $(BUILD)/libroomcast.a
	$(CXX) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/peer-%: bench/peers/%.cpp
	@mkdir -p $(@D)
	$(CXX) $(CXXFLAGS) -o $@ $< $(LDFLAGS) $(LIBS)

peers: $(PEER_BINS)

$(BUILD)/%.o: %.cpp
	@mkdir -p $(@D)
	$(CXX) $(CXXFLAGS) -c -o $@ $<

setup:
	@scripts/setup.sh

run: setup
	@$(MAKE) --no-print-directory -j$(NPROC) all
	@$(SERVER) $(ARGS)

test: setup
	@$(MAKE) --no-print-directory -j$(NPROC) all $(UNIT) $(FUZZ_REPLAY_BINS)
	@BUILD=$(BUILD) SANITIZE=$(SANITIZE) scripts/run-tests.sh

bench: $(MICRO)
	@mkdir -p build/bench
	$(MICRO) --benchmark_repetitions=3 --benchmark_report_aggregates_only=true \
	    --benchmark_out=build/bench/micro.json --benchmark_out_format=json $(BENCH_ARGS)

format:
	clang-format -i $$(git ls-files '*.cpp' '*.hpp')

tidy:
	clang-tidy $(LIB_SRCS) -- -std=c++20 -Iinclude -Isrc

clean:
	rm -rf build

-include $(LIB_OBJS:.o=.d) $(MAIN_OBJ:.o=.d) $(TEST_OBJS:.o=.d) $(MICRO_OBJS:.o=.d) $(LOAD_OBJS:.o=.d)

# libFuzzer targets (make fuzz, fuzz-smoke) and the corpus replay that make test runs.
include test/fuzz/fuzz.mk
include test/soak/soak.mk
