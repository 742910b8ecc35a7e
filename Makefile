# nabla - build, test, install.
#
#   make                   libraries (static + shared) and the nabla binary in build/
#   make test              build and run every test; ends with "N passed, M failed"
#   make test SAN=1        the same under AddressSanitizer + UndefinedBehaviorSanitizer
#   make install PREFIX=/usr/local
#   make BLAS=openblas     use OpenBLAS for matrix products (default: built-in kernel)
#   make bench             nabla against PyTorch, same machine, same run (PYTHON=...)
#   make fuzz              fuzz every parser (clang, libFuzzer), FUZZ_SECONDS=60 each
#   make MPI=1             data-parallel training over MPI, built in build-mpi/
#                          (needs libopenmpi-dev; see docs/distributed.md)
#
# Dependencies: a C11 compiler, libc and libm. zlib is used when found
# (ZLIB=0 turns it off); OpenBLAS only when asked for.

CC      ?= cc
PREFIX  ?= /usr/local
BLAS    ?= builtin
ZLIB    ?= auto
SAN     ?= 0
MPI     ?= 0
PYTHON  ?= /usr/bin/python3

# an MPI build links libmpi: it gets its own directory, never mixed with the default one
ifeq ($(MPI),1)
ifeq ($(SAN),1)
BUILD   ?= build-mpi-san
else
BUILD   ?= build-mpi
endif
endif

ifeq ($(SAN),1)
BUILD   ?= build-san
OPT     ?= -O1 -g -fno-omit-frame-pointer
SANFLAGS = -fsanitize=address,undefined -fno-sanitize-recover=undefined
else
BUILD   ?= build
OPT     ?= -O2 -g
SANFLAGS =
endif

WARN     = -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter
CFLAGS  ?=
ALL_CFLAGS = -std=c11 -D_POSIX_C_SOURCE=200809L -pthread $(OPT) $(WARN) $(SANFLAGS) -fPIC -Iinclude $(CFLAGS)
LDLIBS  = -lm -pthread
LDFLAGS ?=
ALL_LDFLAGS = $(SANFLAGS) $(LDFLAGS)

# ---- optional dependencies ----
ifeq ($(BLAS),openblas)
  BLAS_CFLAGS := $(shell pkg-config --cflags openblas 2>/dev/null || echo -I/usr/include/x86_64-linux-gnu/openblas-pthread)
  BLAS_LIBS   := $(shell pkg-config --libs openblas 2>/dev/null || echo -lopenblas)
  ALL_CFLAGS  += -DNB_HAVE_CBLAS $(BLAS_CFLAGS)
  LDLIBS      += $(BLAS_LIBS)
  PC_LIBS     += $(BLAS_LIBS)
endif
HASH := \#
ifeq ($(ZLIB),auto)
  ZLIB := $(shell printf '$(HASH)include <zlib.h>\nint main(void){return zlibVersion()[0] == 0;}' | $(CC) -x c - -lz -o /dev/null 2>/dev/null && echo 1 || echo 0)
endif
ifeq ($(ZLIB),1)
  ALL_CFLAGS += -DNB_HAVE_ZLIB
  LDLIBS     += -lz
  PC_LIBS    += -lz
endif

LIB_SRC  = $(wildcard src/core/*.c src/ops/*.c src/kernels/*.c src/nn/*.c src/data/*.c src/io/*.c src/viz/*.c src/dist/*.c)
LIB_OBJ  = $(LIB_SRC:%.c=$(BUILD)/%.o)

# MPI: only the communicator (src/dist) and the command's side of it
# (cli/dist.c) see mpi.h; the flags come from the MPI compiler wrapper. Never
# switched on by detection: the default build stays free of MPI.
ifeq ($(MPI),1)
  MPICC      ?= mpicc
  MPI_CFLAGS := $(shell $(MPICC) --showme:compile 2>/dev/null || pkg-config --cflags mpi 2>/dev/null)
  MPI_LIBS   := $(shell $(MPICC) --showme:link 2>/dev/null || pkg-config --libs mpi 2>/dev/null)
  ifeq ($(strip $(MPI_LIBS)),)
    $(error MPI=1: no MPI found ($(MPICC) --showme:link and pkg-config mpi failed): install libopenmpi-dev and openmpi-bin)
  endif
  LDLIBS  += $(MPI_LIBS)
  PC_LIBS += $(MPI_LIBS)
$(BUILD)/src/dist/%.o $(BUILD)/cli/dist.o: ALL_CFLAGS += -DNB_HAVE_MPI $(MPI_CFLAGS)
endif
CLI_SRC  = $(wildcard cli/*.c)
CLI_OBJ  = $(CLI_SRC:%.c=$(BUILD)/%.o)
TEST_SRC = $(filter-out tests/test_alloc.c tests/optim_trace.c,$(wildcard tests/*.c))
TEST_OBJ = $(TEST_SRC:%.c=$(BUILD)/%.o)

STATIC   = $(BUILD)/libnabla.a
SHARED   = $(BUILD)/libnabla.so
NABLA    = $(BUILD)/nabla
UNIT     = $(BUILD)/test_nabla
ALLOC    = $(BUILD)/test_alloc
TRACE    = $(BUILD)/optim_trace

.PHONY: all test install uninstall clean example fuzz bench
all: $(STATIC) $(SHARED) $(NABLA)

# kernels are the hot loops: let the compiler vectorise them fully and fuse
# a*b+c into one FMA (ISO C mode turns that off by default; it changes only
# rounding, the same way on every run)
$(BUILD)/src/kernels/%.o: ALL_CFLAGS += -O3 -ffp-contract=fast
# ops are loops over whole tensors: vectorised at -O3 (results unchanged: no FMA fusion here)
$(BUILD)/src/ops/%.o: ALL_CFLAGS += -O3
# the optimizers' loops vectorise once sqrtf needs no errno (the same bits)
$(BUILD)/src/nn/optim.o: ALL_CFLAGS += -O3 -fno-math-errno

$(BUILD)/%.o: %.c include/nabla.h $(wildcard src/*/*.h) tests/test.h
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

$(STATIC): $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(SHARED): $(LIB_OBJ)
	$(CC) -shared -Wl,-soname,libnabla.so.0 $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS)

$(NABLA): $(CLI_OBJ) $(STATIC)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS)

# tests: every NB_TEST(name) in tests/*.c is registered
$(BUILD)/tests.inc: $(TEST_SRC)
	@mkdir -p $(BUILD)
	@grep -ho '^NB_TEST([A-Za-z0-9_]*)' $(TEST_SRC) | sed 's/NB_TEST(\(.*\))/NB_TEST_ENTRY(\1)/' > $@.tmp
	@cmp -s $@.tmp $@ 2>/dev/null && rm -f $@.tmp || mv $@.tmp $@

$(BUILD)/tests/main.o: $(BUILD)/tests.inc
$(BUILD)/tests/main.o: ALL_CFLAGS += -I$(BUILD)

$(UNIT): $(TEST_OBJ) $(STATIC)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS)

# The allocation test wraps malloc & co. at link time, so every allocation the
# library makes, directly or not, is counted.
$(ALLOC): $(BUILD)/tests/test_alloc.o $(STATIC)
	$(CC) $(ALL_LDFLAGS) -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=free -o $@ $^ $(LDLIBS)

# tests/test_mpi.sh: the largest difference between two checkpoints' tensors,
# and (MPI=1) a program of one's own training data-parallel through the C API
$(BUILD)/compare_ckpt: tests/mpi/compare.c $(STATIC)
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(STATIC) $(LDLIBS)
ifeq ($(MPI),1)
$(BUILD)/mpi_embed: tests/mpi/embed.c $(STATIC)
	$(CC) $(ALL_CFLAGS) $(MPI_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(STATIC) $(LDLIBS)
endif

# Prints optimizer runs for tests/torch/test_optim_torch.py to replay in torch.optim.
$(TRACE): $(BUILD)/tests/optim_trace.o $(STATIC)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS)

test: all $(UNIT) $(ALLOC) $(TRACE)
	@BUILD=$(BUILD) SAN=$(SAN) CC="$(CC)" ALL_CFLAGS="$(ALL_CFLAGS)" ALL_LDFLAGS="$(ALL_LDFLAGS)" \
	  LDLIBS="$(LDLIBS)" PYTHON=$(PYTHON) sh tests/run.sh

# benchmarks against PyTorch (bench/run.sh); never fails on speed
$(BUILD)/bench: bench/bench.c $(STATIC)
	$(CC) $(ALL_CFLAGS) -Wno-missing-prototypes $(ALL_LDFLAGS) -o $@ bench/bench.c $(STATIC) $(LDLIBS) -ldl

bench: $(BUILD)/bench
	@BUILD=$(BUILD) PYTHON=$(PYTHON) sh bench/run.sh
	@sh bench/mpi.sh

# libFuzzer targets for every parser (needs clang); FUZZ_SECONDS per target
fuzz:
	@FUZZ_SECONDS=$(or $(FUZZ_SECONDS),60) sh tests/fuzz/run.sh

example: $(STATIC)
	@BUILD=$(BUILD) CC="$(CC)" ALL_CFLAGS="$(ALL_CFLAGS)" ALL_LDFLAGS="$(ALL_LDFLAGS)" LDLIBS="$(LDLIBS)" \
	  sh tests/readme_example.sh run

$(BUILD)/nabla.pc: Makefile
	@mkdir -p $(BUILD)
	@printf 'prefix=%s\nlibdir=$${prefix}/lib\nincludedir=$${prefix}/include\n\nName: nabla\nDescription: neural networks trained by backpropagation, in C\nVersion: 0.1.0\nLibs: -L$${libdir} -lnabla\nLibs.private: -lm -pthread %s\nCflags: -I$${includedir}\n' \
	  "$(PREFIX)" "$(PC_LIBS)" > $@

install: all $(BUILD)/nabla.pc
	install -d $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/bin
	install -m 644 include/nabla.h $(DESTDIR)$(PREFIX)/include/
	install -m 644 $(STATIC) $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(SHARED) $(DESTDIR)$(PREFIX)/lib/libnabla.so.0
	ln -sf libnabla.so.0 $(DESTDIR)$(PREFIX)/lib/libnabla.so
	install -m 644 $(BUILD)/nabla.pc $(DESTDIR)$(PREFIX)/lib/pkgconfig/
	install -m 755 $(NABLA) $(DESTDIR)$(PREFIX)/bin/

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/include/nabla.h $(DESTDIR)$(PREFIX)/lib/libnabla.a \
	  $(DESTDIR)$(PREFIX)/lib/libnabla.so $(DESTDIR)$(PREFIX)/lib/libnabla.so.0 \
	  $(DESTDIR)$(PREFIX)/lib/pkgconfig/nabla.pc $(DESTDIR)$(PREFIX)/bin/nabla

clean:
	rm -rf build build-san build-*/

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(TEST_OBJ:.o=.d) $(BUILD)/tests/optim_trace.d
