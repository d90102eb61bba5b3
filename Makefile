# SPDX-License-Identifier: GPL-2.0
# bkey-bpf.  Quiet by default; V=1 shows the commands.  Outputs go to .output/.
OUTPUT ?= .output
CC ?= gcc
CLANG ?= clang
BPFTOOL ?= bpftool
ARCH ?= $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/' -e 's/riscv64/riscv/')

CFLAGS ?= -g -O2
KERNELS ?= 6.1 6.12 7.3
CFLAGS += -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers -std=gnu11
# Include paths follow the layering (bkey <- gen <- user): a layer sees
# only the layers below it, so gen/ cannot include user/.
INC_bkey := -Ibkey
INC_gen := $(INC_bkey) -Igen
INC_user := $(INC_gen) -Iuser
INC_tests := $(INC_user) -Itests
INC_bench := $(INC_user) -Ibench -Ibpf -I$(OUTPUT)
INC_bpf := -Igen -Ibpf -I$(OUTPUT)
INC_kmod := $(INC_gen)
inc = $(INC_$(firstword $(subst /, ,$(1))))
# each object's headers, as the compiler found them (.d beside the .o);
# every object also depends on this Makefile (flags, include paths)
DEPFLAGS = -MMD -MP
LDLIBS := -lbpf -lelf -lz -lzstd

ifeq ($(V),1)
	Q =
	msg =
else
	Q = @
	msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
	MAKEFLAGS += --no-print-directory
endif

BKEY_SRCS := bkey/bkey.c bkey/ondisk.c
GEN_SRCS := gen/emit.c gen/plan.c gen/unpack.c gen/search.c gen/lookup.c gen/load.c gen/obj.c
USER_LIB_SRCS := user/keytext.c user/btree.c user/nodecache.c user/image.c user/pin.c
USER_SRCS := user/loader.c user/cmd.c user/unpackcmd.c user/democmd.c user/lookupcmd.c \
	user/gencmd.c user/dumpcmd.c user/run.c user/imagecmd.c user/kmodcmd.c \
	user/caps.c user/demo.c user/workload.c \
	$(USER_LIB_SRCS)
TEST_SRCS := $(wildcard tests/*.c)
# benchmark only: never linked into the product
BENCH_SRCS := bench/bench.c bench/x86.c bench/combined.c bench/floor.c
BPF_SRCS := $(wildcard bpf/*.bpf.c)
BPF_SKELS := $(patsubst bpf/%.bpf.c,$(OUTPUT)/%.skel.h,$(BPF_SRCS))

obj = $(patsubst %.c,$(OUTPUT)/%.o,$(1))
BKEY_OBJS := $(call obj,$(BKEY_SRCS))
GEN_OBJS := $(call obj,$(GEN_SRCS))
USER_OBJS := $(call obj,$(USER_SRCS))
USER_LIB_OBJS := $(call obj,$(USER_LIB_SRCS))
TEST_OBJS := $(call obj,$(TEST_SRCS))
BENCH_OBJS := $(call obj,$(BENCH_SRCS))

.PHONY: all
all: loader $(OUTPUT)/test_progs $(OUTPUT)/faultinj.so $(BPF_SKELS)

# the product: model, generator library, loader
loader: $(USER_OBJS) $(GEN_OBJS) $(BKEY_OBJS)
	$(call msg,BINARY,$@)
	$(Q)$(CC) $(CFLAGS) $^ $(LDLIBS) -o $@

$(OUTPUT)/test_progs: $(TEST_OBJS) $(USER_LIB_OBJS) $(GEN_OBJS) $(BKEY_OBJS)
	$(call msg,BINARY,$@)
	$(Q)$(CC) $(CFLAGS) $^ $(LDLIBS) -o $@

# fault injection for the loader, LD_PRELOADed by tests/test_faults.c
$(OUTPUT)/faultinj.so: tests/fault/faultinj.c | $(OUTPUT)
	$(call msg,LIB,$@)
	$(Q)$(CC) -O2 -Wall -shared -fPIC $< -ldl -o $@

$(OUTPUT)/bench/bench.o $(OUTPUT)/bench/floor.o: $(BPF_SKELS)

$(OUTPUT)/bkbench: $(BENCH_OBJS) $(OUTPUT)/user/demo.o $(OUTPUT)/user/btree.o \
		$(OUTPUT)/user/keytext.o $(GEN_OBJS) $(BKEY_OBJS)
	$(call msg,BINARY,$@)
	$(Q)$(CC) $(CFLAGS) $^ $(LDLIBS) -o $@

$(OUTPUT)/%.o: %.c Makefile | $(OUTPUT)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS) $(DEPFLAGS) $(call inc,$<) -c $< -o $@

# vmlinux.h from the running kernel's BTF, for BPF C in bpf/
$(OUTPUT)/vmlinux.h: | $(OUTPUT)
	$(call msg,GEN,$@)
	$(Q)$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $@.tmp && mv $@.tmp $@

# BPF C: bpf/X.bpf.c -> .output/X.bpf.o -> .output/X.skel.h
$(OUTPUT)/%.bpf.o: bpf/%.bpf.c $(OUTPUT)/vmlinux.h | $(OUTPUT)
	$(call msg,BPF,$@)
	$(Q)$(CLANG) -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) $(DEPFLAGS) $(INC_bpf) -c $< -o $@

$(OUTPUT)/%.skel.h: $(OUTPUT)/%.bpf.o
	$(call msg,GEN-SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< > $@

$(OUTPUT):
	$(Q)mkdir -p $@

.PHONY: test
# Runs every selftest (needs root for the kernel parts; they SKIP otherwise).
test: all
	$(Q)$(OUTPUT)/test_progs $(TEST_ARGS)

# a static selftest binary for VMs (busybox initramfs, no libraries there)
$(OUTPUT)/test_progs-static: $(TEST_OBJS) $(USER_LIB_OBJS) $(GEN_OBJS) $(BKEY_OBJS)
	$(call msg,BINARY,$@)
	$(Q)$(CC) $(CFLAGS) -static $^ -lbpf -lelf -lz -lzstd -o $@ 2>&1 | grep -v 'statically linked applications' || true
	$(Q)test -x $@

# the loader, static, for the same guests
$(OUTPUT)/loader-static: $(USER_OBJS) $(GEN_OBJS) $(BKEY_OBJS)
	$(call msg,BINARY,$@)
	$(Q)$(CC) $(CFLAGS) -static $^ -lbpf -lelf -lz -lzstd -o $@ 2>&1 | grep -v 'statically linked applications' || true
	$(Q)test -x $@

# make vmtest ARCH=arm64|riscv64: the same suite cross-built for the
# architecture against a sysroot of Debian's static libraries for it
# (tests/vm/sysroot.sh: bookworm's for arm64, sid's for riscv64, the only
# suite serving riscv64 here; sid's libraries need tests/vm/isoc23.c).
VM_ARCH := $(if $(filter arm64 aarch64,$(ARCH)),arm64,$(if $(filter riscv64 riscv,$(ARCH)),riscv64,x86_64))
ARM64_CC ?= aarch64-linux-gnu-gcc
RISCV64_CC ?= riscv64-linux-gnu-gcc
CROSS_CC := $(if $(filter arm64,$(VM_ARCH)),$(ARM64_CC),$(RISCV64_CC))
CROSS_LIBDIR := $(if $(filter arm64,$(VM_ARCH)),aarch64-linux-gnu,riscv64-linux-gnu)
CROSS_SYSROOT := $(OUTPUT)/vm/sysroot-$(VM_ARCH)
CROSS_OBJ = $(patsubst %.c,$(OUTPUT)/$(VM_ARCH)/%.o,$(1))
CROSS_SHIM := $(if $(filter riscv64,$(VM_ARCH)),tests/vm/isoc23.c)

$(CROSS_SYSROOT)/.done: tests/vm/sysroot.sh
	$(call msg,SYSROOT,$(CROSS_SYSROOT))
	$(Q)tests/vm/sysroot.sh $(VM_ARCH) $(OUTPUT) >/dev/null

$(OUTPUT)/$(VM_ARCH)/%.o: %.c Makefile $(CROSS_SYSROOT)/.done
	$(call msg,CC-$(VM_ARCH),$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CROSS_CC) $(CFLAGS) -Wall -std=gnu11 $(DEPFLAGS) $(call inc,$<) -I$(CROSS_SYSROOT)/usr/include -c $< -o $@

$(OUTPUT)/$(VM_ARCH)/test_progs-static: $(call CROSS_OBJ,$(TEST_SRCS) $(USER_LIB_SRCS) $(GEN_SRCS) $(BKEY_SRCS) $(CROSS_SHIM))
	$(call msg,BINARY,$@)
	$(Q)$(CROSS_CC) -static $^ -L$(CROSS_SYSROOT)/usr/lib/$(CROSS_LIBDIR) \
		-lbpf -lelf -lz -lzstd -o $@ 2>&1 | grep -v 'statically linked applications' || true
	$(Q)test -x $@

$(OUTPUT)/$(VM_ARCH)/loader-static: $(call CROSS_OBJ,$(USER_SRCS) $(GEN_SRCS) $(BKEY_SRCS) $(CROSS_SHIM))
	$(call msg,BINARY,$@)
	$(Q)$(CROSS_CC) -static $^ -L$(CROSS_SYSROOT)/usr/lib/$(CROSS_LIBDIR) \
		-lbpf -lelf -lz -lzstd -o $@ 2>&1 | grep -v 'statically linked applications' || true
	$(Q)test -x $@

VM_TESTBIN := $(if $(filter x86_64,$(VM_ARCH)),$(OUTPUT)/test_progs-static,$(OUTPUT)/$(VM_ARCH)/test_progs-static)
VM_LOADER := $(if $(filter x86_64,$(VM_ARCH)),$(OUTPUT)/loader-static,$(OUTPUT)/$(VM_ARCH)/loader-static)
# a real image for the guests' loader, where ../shared has one
VM_IMAGE ?= $(wildcard ../shared/data/bcachefs/images/include4k.img.zst)
# riscv64: sid's kernel is the only one here (trixie's riscv64 indexes fail)
VM_KERNELS := $(if $(and $(filter riscv64,$(VM_ARCH)),$(filter file,$(origin KERNELS))),7.2,$(KERNELS))

.PHONY: kmod
# kmod/'s module for a kernel whose build directory is KDIR (the running
# kernel's by default: Debian's linux-headers-$(uname -r)); make vmtest
# builds one per guest kernel itself.  Out of the tree: $(OUTPUT)/kmod.
KDIR ?= /lib/modules/$(shell uname -r)/build
kmod:
	$(call msg,KMOD,$(OUTPUT)/kmod/bkey_kmod.ko)
	$(Q)kmod/build.sh $(KDIR) $(OUTPUT)/kmod

.PHONY: vmtest
# Selftests in VMs booting stock Debian kernels (root; qemu-system-x86,
# busybox-static, debootstrap; for ARCH=arm64 also qemu-system-arm, gcc-aarch64-linux-gnu,
# libc6-dev-arm64-cross; for ARCH=riscv64 qemu-system-misc,
# gcc-riscv64-linux-gnu, libc6-dev-riscv64-cross).  KERNELS="6.1 6.12 7.3"
# selects them (riscv64: 7.2, sid's).
vmtest: $(VM_TESTBIN) $(VM_LOADER)
	$(Q)KERNELS="$(VM_KERNELS)" VM_ARCH=$(VM_ARCH) BUSYBOX=$(CROSS_SYSROOT)/bin/busybox \
		VM_LOADER=$(VM_LOADER) VM_IMAGE="$(VM_IMAGE)" \
		tests/vm/vmtest.sh $(VM_TESTBIN) $(OUTPUT)

# The whole suite under AddressSanitizer and UndefinedBehaviorSanitizer:
# everything rebuilt into $(OUTPUT)/san, the loader under test included.
SAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
SAN_OBJ = $(patsubst %.c,$(OUTPUT)/san/%.o,$(1))

$(OUTPUT)/san/%.o: %.c Makefile
	$(call msg,CC-SAN,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS) $(SAN_FLAGS) $(DEPFLAGS) $(call inc,$<) -c $< -o $@

$(OUTPUT)/san/loader: $(call SAN_OBJ,$(USER_SRCS) $(GEN_SRCS) $(BKEY_SRCS))
	$(call msg,BINARY,$@)
	$(Q)$(CC) $(CFLAGS) $(SAN_FLAGS) $^ $(LDLIBS) -o $@

$(OUTPUT)/san/test_progs: $(call SAN_OBJ,$(TEST_SRCS) $(USER_LIB_SRCS) $(GEN_SRCS) $(BKEY_SRCS))
	$(call msg,BINARY,$@)
	$(Q)$(CC) $(CFLAGS) $(SAN_FLAGS) $^ $(LDLIBS) -o $@

.PHONY: sanitize
# (the fault tests LD_PRELOAD a shim, which ASan's runtime does not allow:
# they run the plain loader)
sanitize: $(OUTPUT)/san/loader $(OUTPUT)/san/test_progs loader $(OUTPUT)/faultinj.so
	$(Q)ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		BKEY_LOADER=$(OUTPUT)/san/loader BKEY_FAULT_LOADER=./loader \
		BKEY_RANDOM_FORMATS=$${BKEY_RANDOM_FORMATS:-20000} \
		$(OUTPUT)/san/test_progs $(TEST_ARGS)

# libFuzzer targets (clang, ASan, UBSan).  make fuzz runs each for
# FUZZ_RUNS executions (at most FUZZ_TIME seconds); node and diff need root.
FUZZ_TARGETS := format keystream keytext node diff ondisk
# real bcachefs nodes seed the ondisk target where ../shared is present
BKEY_SHARED ?= ../shared
ONDISK_SEEDS := $(wildcard $(BKEY_SHARED)/data/bcachefs/nodes/include4k)
FUZZ_RUNS ?= 1000000
FUZZ_TIME ?= 600
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_OBJ = $(patsubst %.c,$(OUTPUT)/fuzz/obj/%.o,$(1))

$(OUTPUT)/fuzz/obj/%.o: %.c Makefile
	$(call msg,CC-FUZZ,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CLANG) -g -O1 $(FUZZ_SAN) -fsanitize=fuzzer-no-link $(DEPFLAGS) $(call inc,$<) -c $< -o $@

$(OUTPUT)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(call FUZZ_OBJ,$(BKEY_SRCS) $(GEN_SRCS) $(USER_LIB_SRCS))
	$(call msg,FUZZER,$@)
	$(Q)$(CLANG) -g -O1 $(FUZZ_SAN) -fsanitize=fuzzer $(INC_tests) $^ $(LDLIBS) -o $@

.PHONY: fuzz
fuzz: $(patsubst %,$(OUTPUT)/fuzz/fuzz_%,$(FUZZ_TARGETS))
	$(Q)for t in $(FUZZ_TARGETS); do \
		mkdir -p $(OUTPUT)/fuzz/corpus/$$t; \
		printf '  %-8s %s\n' FUZZ $$t; \
		$(OUTPUT)/fuzz/fuzz_$$t -runs=$(FUZZ_RUNS) -max_total_time=$(FUZZ_TIME) \
			-print_final_stats=1 -artifact_prefix=$(OUTPUT)/fuzz/$$t- \
			$(OUTPUT)/fuzz/corpus/$$t tests/fuzz/corpus/$$t $$([ $$t = ondisk ] && echo $(ONDISK_SEEDS)) \
			2>$(OUTPUT)/fuzz/$$t.log || { tail -40 $(OUTPUT)/fuzz/$$t.log; exit 1; }; \
		grep -E '^Done|^fuzz_' $(OUTPUT)/fuzz/$$t.log | sed 's/^/           /'; \
	done

.PHONY: bench
# Benchmark (root): prints a table, writes bench.json and bench.png (gnuplot).
bench: $(OUTPUT)/bkbench
	$(Q)$(OUTPUT)/bkbench $(OUTPUT)/bench.json
	$(Q)cp $(OUTPUT)/bench.json bench.json
	$(Q)if command -v gnuplot >/dev/null; then \
		gnuplot -e "dat='$(OUTPUT)/bench.json.dat'; out='bench.png'" bench/plot.gp && echo "wrote bench.png"; \
	else echo "gnuplot not installed (apt-get install gnuplot-nox): no bench.png"; fi

.PHONY: clean
clean:
	$(call msg,CLEAN)
	$(Q)rm -rf $(OUTPUT) loader bench.json bench.png

.DELETE_ON_ERROR:
.SECONDARY:

# the headers each object was built from (-MMD); none before the first build
DEP_DIRS := $(OUTPUT) $(foreach d,bkey gen user tests bench,$(OUTPUT)/$(d) $(OUTPUT)/san/$(d) \
	$(OUTPUT)/fuzz/obj/$(d) $(OUTPUT)/$(VM_ARCH)/$(d))
-include $(wildcard $(addsuffix /*.d,$(DEP_DIRS)))
