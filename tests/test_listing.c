// SPDX-License-Identifier: GPL-2.0
/*
 * The listing's disassembler (gen/emit.c bk_insn_str()): every instruction
 * class, in the kernel's syntax.  "classes" is a test_verifier-style table
 * of instructions and the text each must print as; "kernel" loads
 * programs of every class the kernel loads as written, and checks our
 * text of each instruction against the running kernel's own (its verifier
 * log) and, for the classes Debian's bpftool knows, against bpftool's
 * text of the xlated code.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "test_progs.h"
#include "emit.h"

#define MAX_SLOTS	2

struct insn_case {
	struct bpf_insn	insn[MAX_SLOTS];
	const char	*text;
};

static const struct insn_case cases[] = {
	/* ALU64 and ALU, register and immediate */
	{ { BPF_ALU64_REG(BPF_ADD, 1, 2) }, "r1 += r2" },
	{ { BPF_ALU32_REG(BPF_SUB, 3, 4) }, "w3 -= w4" },
	{ { BPF_ALU64_IMM(BPF_LSH, 0, 3) }, "r0 <<= 3" },
	{ { BPF_ALU32_IMM(BPF_ARSH, 5, 7) }, "w5 s>>= 7" },
	{ { BPF_ALU64_IMM(BPF_AND, 2, -16) }, "r2 &= -16" },
	{ { BPF_MOV64_REG(6, 1) }, "r6 = r1" },
	{ { BPF_MOV32_IMM(3, -1) }, "w3 = -1" },
	{ { { .code = BPF_ALU64 | BPF_NEG, .dst_reg = 4 } }, "r4 = -r4" },
	/* cpu v4: signed division and modulo, sign-extending moves */
	{ { { .code = BPF_ALU64 | BPF_DIV | BPF_X, .dst_reg = 1, .src_reg = 2, .off = 1 } },
	  "r1 s/= r2" },
	{ { { .code = BPF_ALU | BPF_MOD | BPF_K, .dst_reg = 1, .off = 1, .imm = 3 } },
	  "w1 s%= 3" },
	{ { { .code = BPF_ALU64 | BPF_MOV | BPF_X, .dst_reg = 1, .src_reg = 2, .off = 16 } },
	  "r1 = (s16)r2" },
	{ { { .code = BPF_ALU64 | BPF_MOV | BPF_X, .dst_reg = 1, .src_reg = 2, .off = 1,
	      .imm = 1 << 16 } }, "r1 = addr_space_cast(r2, 1, 0)" },
	/* off 1 makes only division and modulo signed */
	{ { { .code = BPF_ALU64 | BPF_ADD | BPF_K, .dst_reg = 1, .off = 1, .imm = 3 } },
	  "r1 += 3" },
	/* BPF_END: to big or little endian, and cpu v4's unconditional swap */
	{ { BPF_ENDIAN(BPF_TO_BE, 1, 16) }, "r1 = be16 r1" },
	{ { BPF_ENDIAN(BPF_TO_LE, 2, 32) }, "r2 = le32 r2" },
	{ { { .code = BPF_ALU64 | BPF_END, .dst_reg = 3, .imm = 64 } }, "r3 = bswap64 r3" },
	/* loads and stores */
	{ { BPF_LDX_MEM(BPF_W, 0, 1, 8) }, "r0 = *(u32 *)(r1 +8)" },
	{ { { .code = BPF_LDX | BPF_B | BPF_MEMSX, .dst_reg = 2, .src_reg = 3, .off = -1 } },
	  "r2 = *(s8 *)(r3 -1)" },
	{ { BPF_STX_MEM(BPF_DW, 10, 6, -8) }, "*(u64 *)(r10 -8) = r6" },
	{ { BPF_ST_MEM(BPF_H, 7, 2, 5) }, "*(u16 *)(r7 +2) = 5" },
	/* atomics */
	{ { BPF_ATOMIC_OP(BPF_DW, BPF_ADD, 10, 1, -8) }, "lock *(u64 *)(r10 -8) += r1" },
	{ { BPF_ATOMIC_OP(BPF_W, BPF_XOR, 2, 3, 4) }, "lock *(u32 *)(r2 +4) ^= r3" },
	{ { BPF_ATOMIC_OP(BPF_DW, BPF_ADD | BPF_FETCH, 10, 1, -8) },
	  "r1 = atomic64_fetch_add((u64 *)(r10 -8), r1)" },
	{ { BPF_ATOMIC_OP(BPF_W, BPF_OR | BPF_FETCH, 2, 3, 0) },
	  "r3 = atomic_fetch_or((u32 *)(r2 +0), r3)" },
	{ { BPF_ATOMIC_OP(BPF_DW, BPF_AND | BPF_FETCH, 2, 3, 0) },
	  "r3 = atomic64_fetch_and((u64 *)(r2 +0), r3)" },
	{ { BPF_ATOMIC_OP(BPF_DW, BPF_XCHG, 10, 2, -16) },
	  "r2 = atomic64_xchg((u64 *)(r10 -16), r2)" },
	{ { BPF_ATOMIC_OP(BPF_W, BPF_CMPXCHG, 10, 2, -16) },
	  "r0 = atomic_cmpxchg((u32 *)(r10 -16), r0, r2)" },
	/* 64-bit immediates: plain, a map, a map's value, a function */
	{ { BPF_LD_IMM64_RAW_1(1, 0, 0x1122334455667788ull),
	    BPF_LD_IMM64_RAW_2(0x1122334455667788ull) }, "r1 = 0x1122334455667788 ll" },
	{ { BPF_LD_IMM64_RAW_1(2, BPF_PSEUDO_MAP_FD, 7), BPF_LD_IMM64_RAW_2(0) },
	  "r2 = map[fd:7] ll" },
	{ { BPF_LD_IMM64_RAW_1(2, BPF_PSEUDO_MAP_VALUE, 7), { .imm = 24 } },
	  "r2 = map[fd:7][0]+24 ll" },
	{ { BPF_LD_IMM64_RAW_1(2, BPF_PSEUDO_FUNC, 12), BPF_LD_IMM64_RAW_2(0) },
	  "r2 = subprog[+12] ll" },
	/* jumps, calls, exit */
	{ { BPF_JMP_REG(BPF_JGT, 1, 2, 3) }, "if r1 > r2 goto pc+3 (-> 4)" },
	{ { BPF_JMP32_IMM(BPF_JSLT, 1, 16, -1) }, "if w1 s< 0x10 goto pc-1 (-> 0)" },
	{ { BPF_JMP_IMM(BPF_JSET, 0, 0x7f, 2) }, "if r0 & 0x7f goto pc+2 (-> 3)" },
	{ { BPF_JMP32_IMM(BPF_JNE, 4, 0, 1) }, "if w4 != 0x0 goto pc+1 (-> 2)" },
	{ { BPF_JMP_A(5) }, "goto pc+5 (-> 6)" },
	{ { { .code = BPF_JMP32 | BPF_JA, .imm = 70000 } }, "gotol pc+70000 (-> 70001)" },
	{ { BPF_MAY_GOTO_INSN(2) }, "may_goto pc+2 (-> 3)" },
	{ { BPF_EMIT_CALL(BPF_FUNC_map_lookup_elem) }, "call helper#1" },
	{ { { .code = BPF_JMP | BPF_CALL, .src_reg = BPF_PSEUDO_CALL, .imm = 9 } }, "call pc+9" },
	{ { BPF_EXIT_INSN() }, "exit" },
};

static void classes(void)
{
	unsigned i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct insn_case *c = &cases[i];
		bool wide = c->insn[0].code == (BPF_LD | BPF_DW | BPF_IMM);
		char buf[128];
		int slots = bk_insn_str(c->insn, 0, buf, sizeof(buf));

		if (!ASSERT_STREQ(buf, c->text, "the instruction's text") ||
		    !ASSERT_EQ(slots, wide ? 2 : 1, "slots it takes"))
			fprintf(stderr, "  case %u: code %#04x\n", i, c->insn[0].code);
	}
	test__count("instructions printed as the table says", i);
}

/* What bpftool prints for each xlated instruction of @prog_id, prefixes cut. */
static int bpftool_lines(__u32 prog_id, char lines[][128], int max)
{
	char cmd[128], line[256];
	FILE *f;
	int n = 0;

	snprintf(cmd, sizeof(cmd), "bpftool prog dump xlated id %u 2>/dev/null", prog_id);
	f = popen(cmd, "r");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		char *text = strstr(line, ") ");
		unsigned idx;

		/* "   3: (07) r1 += 5": the index and the opcode go */
		if (sscanf(line, " %u: (", &idx) != 1 || !text || n >= max)
			continue;
		text += 2;
		text[strcspn(text, "\n")] = 0;
		snprintf(lines[n++], 128, "%s", text);
	}
	return pclose(f) ? -EIO : n;
}

/* Our text without the listing's own " (-> N)" jump target. */
static void cut_target(char *buf)
{
	char *arrow = strstr(buf, " (-> ");

	if (arrow)
		*arrow = 0;
}

/*
 * The running kernel's text of each instruction, from its verifier log
 * ("12: (bf) r1 = r2   ; R1_w=..."): the first time each is printed.
 */
static void verifier_lines(const char *log, char lines[][128], unsigned cnt)
{
	const char *l;

	for (l = log; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
		unsigned idx, code;
		int at;
		char text[128];
		size_t len;

		if (sscanf(l, "%u: (%x) %n", &idx, &code, &at) != 2 || idx >= cnt || lines[idx][0])
			continue;
		len = strcspn(l + at, "\n");
		snprintf(text, sizeof(text), "%.*s", (int)len, l + at);
		/* the register state the log appends */
		if (strstr(text, " ; "))
			*strstr(text, " ; ") = 0;
		len = strlen(text);
		while (len && text[len - 1] == ' ')
			text[--len] = 0;
		snprintf(lines[idx], 128, "%s", text);
	}
}

static char vlog[1 << 16];

/*
 * Loads @insns as a socket filter, and compares our text of each
 * instruction with the running kernel's (its verifier log) and, where
 * this bpftool knows the instruction, with bpftool's of the xlated
 * code.  *loaded: whether the kernel took the program.
 */
static bool round_trip(const char *what, const struct bpf_insn *insns, unsigned cnt,
		       bool with_bpftool, bool *loaded)
{
	LIBBPF_OPTS(bpf_prog_load_opts, opts, .log_buf = vlog, .log_size = sizeof(vlog),
		    .log_level = 2);
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);
	struct bpf_insn x[64];
	char want[64][128] = {}, got[128];
	int fd, n, i;
	bool ok = true;

	vlog[0] = 0;
	fd = bpf_prog_load(BPF_PROG_TYPE_SOCKET_FILTER, NULL, "GPL", insns, cnt, &opts);
	*loaded = fd >= 0;
	if (fd < 0)
		return true;
	verifier_lines(vlog, want, cnt);
	for (i = 0; i < (int)cnt; i++) {
		bk_insn_str(&insns[i], i, got, sizeof(got));
		cut_target(got);
		if (!ASSERT_STREQ(got, want[i], what))
			fprintf(stderr, "  instruction %d (the verifier log's)\n", i);
	}
	if (!with_bpftool)
		goto out;
	info.xlated_prog_len = sizeof(x);
	info.xlated_prog_insns = (unsigned long)x;
	if (!ASSERT_OK(bpf_obj_get_info_by_fd(fd, &info, &len), "xlated instructions read")) {
		ok = false;
		goto out;
	}
	n = bpftool_lines(info.id, want, 64);
	ok &= ASSERT_EQ(n, (int)(info.xlated_prog_len / sizeof(x[0])), "bpftool prints each one");
	for (i = 0; ok && i < n; i++) {
		bk_insn_str(&x[i], i, got, sizeof(got));
		cut_target(got);
		if (!ASSERT_STREQ(got, want[i], "our text of the xlated code is bpftool's"))
			fprintf(stderr, "  instruction %d (bpftool's)\n", i);
	}
out:
	close(fd);
	return ok;
}

/* Every class the kernel prints as written: ALU, END, loads, stores, atomics, jumps. */
static const struct bpf_insn base_prog[] = {
	BPF_LDX_MEM(BPF_W, 1, 1, 0),		/* skb->len: unknown to the verifier */
	BPF_MOV64_IMM(0, 0),
	BPF_ALU64_IMM(BPF_ADD, 1, 5),
	BPF_ALU32_REG(BPF_MOV, 2, 1),
	BPF_ALU32_IMM(BPF_LSH, 2, 3),
	BPF_ALU64_IMM(BPF_ARSH, 1, 1),
	{ .code = BPF_ALU64 | BPF_NEG, .dst_reg = 2 },
	BPF_ENDIAN(BPF_TO_BE, 1, 16),
	BPF_ENDIAN(BPF_TO_LE, 1, 32),
	BPF_STX_MEM(BPF_DW, 10, 1, -8),
	BPF_ST_MEM(BPF_W, 10, -16, 7),
	BPF_ST_MEM(BPF_W, 10, -12, 0),
	BPF_LDX_MEM(BPF_W, 3, 10, -16),
	BPF_ATOMIC_OP(BPF_DW, BPF_ADD, 10, 3, -8),
	BPF_ATOMIC_OP(BPF_W, BPF_OR, 10, 3, -16),
	BPF_ATOMIC_OP(BPF_DW, BPF_ADD | BPF_FETCH, 10, 3, -8),
	BPF_ATOMIC_OP(BPF_W, BPF_XOR | BPF_FETCH, 10, 3, -16),
	BPF_ATOMIC_OP(BPF_DW, BPF_XCHG, 10, 3, -8),
	BPF_ATOMIC_OP(BPF_DW, BPF_CMPXCHG, 10, 3, -8),
	BPF_JMP_REG(BPF_JGT, 1, 3, 1),
	BPF_JMP32_IMM(BPF_JSLT, 3, 16, 0),
	BPF_JMP_IMM(BPF_JSET, 1, 0x7f, 0),
	BPF_JMP_IMM(BPF_JEQ, 1, 0, 0),
	BPF_JMP_A(0),
	BPF_MOV64_IMM(0, 0),
	BPF_EXIT_INSN(),
};

/* cpu v4 (kernel 6.6+): signed division, sign-extending moves and loads, bswap */
static const struct bpf_insn v4_prog[] = {
	BPF_LDX_MEM(BPF_W, 1, 1, 0),
	BPF_MOV64_IMM(2, 7),
	{ .code = BPF_ALU64 | BPF_DIV | BPF_X, .dst_reg = 1, .src_reg = 2, .off = 1 },
	{ .code = BPF_ALU | BPF_MOD | BPF_K, .dst_reg = 1, .off = 1, .imm = 3 },
	{ .code = BPF_ALU64 | BPF_MOV | BPF_X, .dst_reg = 3, .src_reg = 1, .off = 8 },
	{ .code = BPF_ALU64 | BPF_END, .dst_reg = 3, .imm = 64 },
	BPF_STX_MEM(BPF_DW, 10, 3, -8),
	{ .code = BPF_LDX | BPF_H | BPF_MEMSX, .dst_reg = 0, .src_reg = 10, .off = -8 },
	BPF_MOV64_IMM(0, 0),
	BPF_EXIT_INSN(),
};

static void kernel_text(void)
{
	bool bpftool = !system("command -v bpftool >/dev/null 2>&1"), loaded;

	if (!bpftool)
		printf("  (no bpftool: the verifier log's text only)\n");
	if (!round_trip("our text is the kernel's", base_prog,
			sizeof(base_prog) / sizeof(base_prog[0]), bpftool, &loaded))
		return;
	if (!loaded) {
		test__skip("the kernel loads no atomic fetch (5.12+): %s", strerror(errno));
		return;
	}
	test__count("instructions printed as the kernel prints them",
		    sizeof(base_prog) / sizeof(base_prog[0]));
	/* Debian 12's bpftool predates cpu v4: the kernel's log alone */
	if (!round_trip("our text of cpu v4 instructions is the kernel's", v4_prog,
			sizeof(v4_prog) / sizeof(v4_prog[0]), false, &loaded))
		return;
	if (!loaded)
		test__skip("the kernel has no cpu v4 instructions (6.6+): %s", strerror(errno));
	else
		test__count("cpu v4 instructions printed as the kernel prints them",
			    sizeof(v4_prog) / sizeof(v4_prog[0]));
}

DEFINE_TEST(listing)
{
	if (test__start_subtest("classes"))
		classes();
	if (test__start_subtest("kernel"))
		kernel_text();
}
