# Fuzzing (STYLE.md §8, issue 7): libFuzzer targets test/fuzz/<target>_fuzz.cpp, their seed corpora
# test/fuzz/corpus/<target>/ and saved crashers test/fuzz/crashers/<target>/.
#   make fuzz [FUZZ_SECONDS=60] [FUZZ_TARGETS="frame_parser ..."] [FUZZ_JOBS=2]
#                      clang++ -fsanitize=fuzzer,address,undefined, objects in build/fuzz/; runs each target
#                      for FUZZ_SECONDS on its corpus; new inputs go to build/fuzz/corpus-<target>/, crashes
#                      to build/fuzz/crashes/; prints a summary and fails if anything crashed
#   make fuzz-smoke    the same with FUZZ_SECONDS=20 (CI)
#   make fuzz-replay   every target built with $(CXX) and replay_main.cpp in $(BUILD)/fuzz/ (so also under
#                      SANITIZE=...), run over its corpus and crashers; fails on any crash or FUZZ_CHECK
# Included by the top-level Makefile after its own rules; uses its BUILD, CXX, CXXFLAGS, LDFLAGS, LIBS,
# LIB_SRCS, WERROR and the $(BUILD)/libroomcast.a rule.

FUZZ_DIR := test/fuzz
FUZZ_ALL_TARGETS := $(patsubst $(FUZZ_DIR)/%_fuzz.cpp,%,$(wildcard $(FUZZ_DIR)/*_fuzz.cpp))
FUZZ_TARGETS ?= $(FUZZ_ALL_TARGETS)
FUZZ_SECONDS ?= 60
FUZZ_JOBS ?= $(shell nproc 2>/dev/null || echo 1)
FUZZ_CXX ?= clang++

# ---- libFuzzer build: its own objects, never mixed with the other configs --------------------------------
FUZZ_BUILD := build/fuzz
FUZZ_SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_CXXFLAGS := -std=c++20 -O1 -g -Wall -Wextra -Wshadow -Wnon-virtual-dtor -Wimplicit-fallthrough $(WERROR) \
                 -Iinclude -Isrc -I$(FUZZ_DIR) -MMD -MP -pthread
# The socket-free layers the targets exercise (STYLE.md §1), compiled directly for this build with coverage
# instrumentation. They go into an archive, so each target links only the objects it references.
FUZZ_LIB_DIRS := http ws simd util pubsub
FUZZ_LIB_SRCS := $(filter $(FUZZ_LIB_DIRS:%=src/%/%),$(LIB_SRCS))
FUZZ_LIB_OBJS := $(FUZZ_LIB_SRCS:%.cpp=$(FUZZ_BUILD)/%.o)
FUZZ_BINS := $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/%)

$(FUZZ_BUILD)/src/%.o: src/%.cpp | fuzz-check-clang
	@mkdir -p $(@D)
	$(FUZZ_CXX) $(FUZZ_CXXFLAGS) $(FUZZ_SANFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_BUILD)/test/fuzz/%.o: $(FUZZ_DIR)/%.cpp | fuzz-check-clang
	@mkdir -p $(@D)
	$(FUZZ_CXX) $(FUZZ_CXXFLAGS) $(FUZZ_SANFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_BUILD)/libfuzzlib.a: $(FUZZ_LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(FUZZ_BINS): $(FUZZ_BUILD)/%: $(FUZZ_BUILD)/test/fuzz/%_fuzz.o $(FUZZ_BUILD)/libfuzzlib.a
	$(FUZZ_CXX) $(FUZZ_SANFLAGS) -fsanitize=fuzzer -pthread -o $@ $^ $(LIBS)

.PHONY: fuzz fuzz-smoke fuzz-replay fuzz-build fuzz-check-clang
fuzz-check-clang:
	@command -v $(FUZZ_CXX) >/dev/null || { echo "fuzz: $(FUZZ_CXX) not found (scripts/setup.sh installs clang and libclang-rt-14-dev)"; exit 2; }

fuzz-build: $(FUZZ_BINS)

fuzz: fuzz-build
	@FUZZ_JOBS=$(FUZZ_JOBS) scripts/fuzz.sh run $(FUZZ_BUILD) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

fuzz-smoke: fuzz-build
	@FUZZ_JOBS=$(FUZZ_JOBS) scripts/fuzz.sh run $(FUZZ_BUILD) 20 $(FUZZ_TARGETS)

# ---- replay: the same targets with the project's compiler and flags ---------------------------------------
FUZZ_REPLAY_DIR := $(BUILD)/fuzz
FUZZ_REPLAY_BINS := $(FUZZ_ALL_TARGETS:%=$(FUZZ_REPLAY_DIR)/%)

$(FUZZ_REPLAY_DIR)/%.o: $(FUZZ_DIR)/%.cpp
	@mkdir -p $(@D)
	$(CXX) $(CXXFLAGS) -I$(FUZZ_DIR) -c -o $@ $<

$(FUZZ_REPLAY_BINS): $(FUZZ_REPLAY_DIR)/%: $(FUZZ_REPLAY_DIR)/%_fuzz.o $(FUZZ_REPLAY_DIR)/replay_main.o \
                                            $(BUILD)/libroomcast.a
	$(CXX) $(LDFLAGS) -o $@ $^ $(LIBS)

fuzz-replay: $(FUZZ_REPLAY_BINS)
	@scripts/fuzz.sh replay $(FUZZ_REPLAY_DIR) $(FUZZ_ALL_TARGETS)

-include $(FUZZ_LIB_OBJS:.o=.d) $(FUZZ_ALL_TARGETS:%=$(FUZZ_BUILD)/test/fuzz/%_fuzz.d) \
         $(FUZZ_ALL_TARGETS:%=$(FUZZ_REPLAY_DIR)/%_fuzz.d) $(FUZZ_REPLAY_DIR)/replay_main.d
