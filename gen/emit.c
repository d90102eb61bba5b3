// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "emit.h"

void bk_emit_init(struct bk_emit *e, bool annotate)
{
	e->cnt = 0;
	e->nr_labels = 0;
	e->nr_fix = 0;
	e->nr_lines = 0;
	e->nr_subprogs = 0;
	e->annotate = annotate;
	e->pending_comment = -1;
	e->text_len = 0;
	e->err = 0;
}

void bk_emit_release(struct bk_emit *e)
{
	free(e->insn);
	free(e->comment);
	free(e->label_pos);
	free(e->fix);
	free(e->line);
	free(e->text);
	memset(e, 0, sizeof(*e));
}

/*
 * Room in array *@arr (of @size-byte elements, *@cap of them) for element
 * @n: doubled as needed up to @max.  False, with the error set, if not.
 */
static bool grow(struct bk_emit *e, void **arr, int *cap, int n, int max, size_t size)
{
	int want = *cap ? *cap : 64;
	void *p;

	if (n < *cap)
		return true;
	if (n >= max) {
		e->err = -E2BIG;
		return false;
	}
	while (want <= n)
		want *= 2;
	if (want > max)
		want = max;
	p = realloc(*arr, (size_t)want * size);
	if (!p) {
		e->err = -ENOMEM;
		return false;
	}
	*arr = p;
	*cap = want;
	return true;
}

/* Room for instruction @n: the instructions and their comments grow together. */
static bool grow_insns(struct bk_emit *e, int n)
{
	int cap = e->cap_insns;

	if (n < cap)
		return true;
	if (!grow(e, (void **)&e->insn, &cap, n, BK_MAX_INSNS, sizeof(*e->insn)))
		return false;
	cap = e->cap_insns;
	if (!grow(e, (void **)&e->comment, &cap, n, BK_MAX_INSNS, sizeof(*e->comment)))
		return false;
	e->cap_insns = cap;
	return true;
}

int bk_label(struct bk_emit *e)
{
	if (!grow(e, (void **)&e->label_pos, &e->cap_labels, e->nr_labels, BK_MAX_LABELS,
		  sizeof(*e->label_pos)))
		return 0;
	e->label_pos[e->nr_labels] = -1;
	return e->nr_labels++;
}

void bk_bind(struct bk_emit *e, int label)
{
	if (label < e->nr_labels)
		e->label_pos[label] = e->cnt;
}

bool bk_label_used(const struct bk_emit *e, int label)
{
	int i;

	for (i = 0; i < e->nr_fix; i++)
		if (e->fix[i].label == label)
			return true;
	return false;
}

void bk_insn(struct bk_emit *e, struct bpf_insn insn)
{
	if (!grow_insns(e, e->cnt))
		return;
	e->comment[e->cnt] = e->pending_comment;
	e->pending_comment = -1;
	e->insn[e->cnt++] = insn;
}

void bk_jmp(struct bk_emit *e, struct bpf_insn insn, int label)
{
	if (!grow(e, (void **)&e->fix, &e->cap_fix, e->nr_fix, BK_MAX_INSNS, sizeof(*e->fix)))
		return;
	e->fix[e->nr_fix].insn = e->cnt;
	e->fix[e->nr_fix++].label = label;
	bk_insn(e, insn);
}

void bk_ld_imm64(struct bk_emit *e, int dst, int pseudo, unsigned long long imm)
{
	bk_insn(e, BPF_LD_IMM64_RAW_1(dst, pseudo, imm));
	bk_insn(e, BPF_LD_IMM64_RAW_2(imm));
}

void bk_map_lookup(struct bk_emit *e, int map_fd, int fp_key)
{
	bk_ld_imm64(e, BPF_REG_1, BPF_PSEUDO_MAP_FD, (unsigned)map_fd);
	bk_insn(e, BPF_MOV64_REG(BPF_REG_2, BPF_REG_10));
	bk_insn(e, BPF_ALU64_IMM(BPF_ADD, BPF_REG_2, fp_key));
	bk_insn(e, BPF_EMIT_CALL(BPF_FUNC_map_lookup_elem));
}

static int text_vadd(struct bk_emit *e, const char *fmt, va_list ap)
{
	va_list again;
	int n, off = e->text_len;

	va_copy(again, ap);
	n = vsnprintf(NULL, 0, fmt, again);
	va_end(again);
	if (n < 0) {
		e->err = -EINVAL;
		return -1;
	}
	if (!grow(e, (void **)&e->text, &e->cap_text, off + n, BK_TEXT_BYTES, 1))
		return -1;
	vsnprintf(e->text + off, n + 1, fmt, ap);
	e->text_len += n + 1;
	return off;
}

void bk_comment(struct bk_emit *e, const char *fmt, ...)
{
	va_list ap;

	if (!e->annotate)
		return;
	va_start(ap, fmt);
	e->pending_comment = text_vadd(e, fmt, ap);
	va_end(ap);
}

void bk_line(struct bk_emit *e, const char *fmt, ...)
{
	va_list ap;
	int off;

	if (!grow(e, (void **)&e->line, &e->cap_lines, e->nr_lines, BK_MAX_LINES, sizeof(*e->line)))
		return;
	va_start(ap, fmt);
	off = text_vadd(e, fmt, ap);
	va_end(ap);
	if (off < 0)
		return;
	/* two lines before one instruction: the later one wins */
	if (e->nr_lines && e->line[e->nr_lines - 1].insn == e->cnt)
		e->nr_lines--;
	e->line[e->nr_lines].insn = e->cnt;
	e->line[e->nr_lines++].text = off;
}

void bk_fix_func(struct bk_emit *e, int ld_func)
{
	if (ld_func < 0 || ld_func >= e->cnt) {
		e->err = e->err ?: -EINVAL;
		return;
	}
	e->insn[ld_func].imm = e->cnt - (ld_func + 1);
}

void bk_subprog(struct bk_emit *e)
{
	if (e->nr_subprogs >= BK_MAX_SUBPROGS) {
		e->err = -E2BIG;
		return;
	}
	e->subprog_start[e->nr_subprogs++] = e->cnt;
}

int bk_emit_finish(struct bk_emit *e)
{
	int i;

	if (e->err)
		return e->err;
	for (i = 0; i < e->nr_fix; i++) {
		int at = e->fix[i].insn, to = e->label_pos[e->fix[i].label];
		int off = to - (at + 1);

		if (to < 0 || off < -32768 || off > 32767)
			return -EINVAL;
		e->insn[at].off = off;
	}
	return 0;
}

/*
 * ---- Disassembly, in the syntax bpftool and the verifier log use ----
 * (tests/test_listing.c checks it against the running kernel), plus
 * each jump's target and llvm's "ll" on 64-bit immediates.
 */

static const char *alu_op(int op)
{
	switch (op) {
	case BPF_ADD:	return "+=";
	case BPF_SUB:	return "-=";
	case BPF_MUL:	return "*=";
	case BPF_DIV:	return "/=";
	case BPF_OR:	return "|=";
	case BPF_AND:	return "&=";
	case BPF_LSH:	return "<<=";
	case BPF_RSH:	return ">>=";
	case BPF_MOD:	return "%=";
	case BPF_XOR:	return "^=";
	case BPF_MOV:	return "=";
	case BPF_ARSH:	return "s>>=";
	}
	return "?=";
}

/* cpu v4's signed division and modulo: off 1 on BPF_DIV and BPF_MOD. */
static bool signed_div(const struct bpf_insn *in)
{
	return in->off == 1 && (BPF_OP(in->code) == BPF_DIV || BPF_OP(in->code) == BPF_MOD);
}

/* The name an atomic read-modify-write has in its fetch form. */
static const char *atomic_op(int op)
{
	switch (op) {
	case BPF_ADD:	return "add";
	case BPF_AND:	return "and";
	case BPF_OR:	return "or";
	case BPF_XOR:	return "xor";
	}
	return "?";
}

static const char *jmp_op(int op)
{
	switch (op) {
	case BPF_JEQ:	return "==";
	case BPF_JGT:	return ">";
	case BPF_JGE:	return ">=";
	case BPF_JSET:	return "&";
	case BPF_JNE:	return "!=";
	case BPF_JSGT:	return "s>";
	case BPF_JSGE:	return "s>=";
	case BPF_JLT:	return "<";
	case BPF_JLE:	return "<=";
	case BPF_JSLT:	return "s<";
	case BPF_JSLE:	return "s<=";
	}
	return "?";
}

static const char *size_str(int size)
{
	switch (size) {
	case BPF_B:	return "u8";
	case BPF_H:	return "u16";
	case BPF_W:	return "u32";
	case BPF_DW:	return "u64";
	}
	return "?";
}

/*
 * BPF_END: a byte swap to big or little endian (BPF_ALU), or an
 * unconditional one (BPF_ALU64, cpu v4), of imm bits: "r1 = be16 r1".
 */
static void alu_end_str(const struct bpf_insn *in, char *buf, size_t len)
{
	const char *how = BPF_CLASS(in->code) == BPF_ALU64 ? "bswap" :
			  BPF_SRC(in->code) == BPF_TO_BE ? "be" : "le";

	snprintf(buf, len, "r%d = %s%d r%d", in->dst_reg, how, in->imm, in->dst_reg);
}

/*
 * BPF_STX | BPF_ATOMIC: imm holds the operation, BPF_FETCH when the old
 * value comes back in src (r0 for cmpxchg).
 */
static void atomic_str(const struct bpf_insn *in, char *buf, size_t len)
{
	const char *sz = size_str(BPF_SIZE(in->code));
	const char *w = BPF_SIZE(in->code) == BPF_DW ? "64" : "";
	int op = in->imm & ~BPF_FETCH;

	if (in->imm == BPF_XCHG)
		snprintf(buf, len, "r%d = atomic%s_xchg((%s *)(r%d %+d), r%d)", in->src_reg, w, sz,
			 in->dst_reg, in->off, in->src_reg);
	else if (in->imm == BPF_CMPXCHG)
		snprintf(buf, len, "r0 = atomic%s_cmpxchg((%s *)(r%d %+d), r0, r%d)", w, sz,
			 in->dst_reg, in->off, in->src_reg);
	else if (in->imm & BPF_FETCH)
		snprintf(buf, len, "r%d = atomic%s_fetch_%s((%s *)(r%d %+d), r%d)", in->src_reg, w,
			 atomic_op(op), sz, in->dst_reg, in->off, in->src_reg);
	else
		snprintf(buf, len, "lock *(%s *)(r%d %+d) %s r%d", sz, in->dst_reg, in->off,
			 alu_op(op), in->src_reg);
}

int bk_insn_str(const struct bpf_insn *in, int idx, char *buf, size_t len)
{
	return bk_insn_str_named(in, idx, buf, len, NULL, 0);
}

int bk_insn_str_named(const struct bpf_insn *in, int idx, char *buf, size_t len,
		      const struct bk_map_name *names, int nr_names)
{
	int cls = BPF_CLASS(in->code), op = BPF_OP(in->code);
	const char *r = cls == BPF_ALU || cls == BPF_JMP32 ? "w" : "r";

	switch (cls) {
	case BPF_ALU:
	case BPF_ALU64:
		if (op == BPF_END)
			alu_end_str(in, buf, len);
		else if (op == BPF_NEG)
			snprintf(buf, len, "%s%d = -%s%d", r, in->dst_reg, r, in->dst_reg);
		else if (op == BPF_MOV && BPF_SRC(in->code) == BPF_X && cls == BPF_ALU64 &&
			 in->off == 1)
			snprintf(buf, len, "r%d = addr_space_cast(r%d, %u, %u)", in->dst_reg,
				 in->src_reg, (unsigned)in->imm >> 16, (unsigned)in->imm & 0xffff);
		else if (op == BPF_MOV && BPF_SRC(in->code) == BPF_X &&
			 (in->off == 8 || in->off == 16 || in->off == 32))
			snprintf(buf, len, "%s%d = (s%d)%s%d", r, in->dst_reg, in->off, r, in->src_reg);
		else if (BPF_SRC(in->code) == BPF_X)
			snprintf(buf, len, "%s%d %s%s %s%d", r, in->dst_reg, signed_div(in) ? "s" : "",
				 alu_op(op), r, in->src_reg);
		else
			snprintf(buf, len, "%s%d %s%s %d", r, in->dst_reg, signed_div(in) ? "s" : "",
				 alu_op(op), in->imm);
		return 1;
	case BPF_LDX:
		snprintf(buf, len, "r%d = *(%s%s *)(r%d %+d)", in->dst_reg,
			 BPF_MODE(in->code) == BPF_MEMSX ? "s" : "u",
			 size_str(BPF_SIZE(in->code)) + 1, in->src_reg, in->off);
		return 1;
	case BPF_STX:
		if (BPF_MODE(in->code) == BPF_ATOMIC)
			atomic_str(in, buf, len);
		else
			snprintf(buf, len, "*(%s *)(r%d %+d) = r%d", size_str(BPF_SIZE(in->code)),
				 in->dst_reg, in->off, in->src_reg);
		return 1;
	case BPF_ST:
		snprintf(buf, len, "*(%s *)(r%d %+d) = %d", size_str(BPF_SIZE(in->code)),
			 in->dst_reg, in->off, in->imm);
		return 1;
	case BPF_LD:
		if (in->code == (BPF_LD | BPF_DW | BPF_IMM)) {
			unsigned long long v = (unsigned)in[0].imm |
					       (unsigned long long)(unsigned)in[1].imm << 32;

			int i;

			for (i = 0; in->src_reg == BPF_PSEUDO_MAP_VALUE && i < nr_names; i++)
				if (names[i].fd == in[0].imm) {
					snprintf(buf, len, "r%d = map[%s][0]+%u ll", in->dst_reg,
						 names[i].name, (unsigned)in[1].imm);
					return 2;
				}
			for (i = 0; in->src_reg == BPF_PSEUDO_MAP_FD && i < nr_names; i++)
				if (names[i].fd == in[0].imm) {
					snprintf(buf, len, "r%d = map[%s] ll", in->dst_reg, names[i].name);
					return 2;
				}
			if (in->src_reg == BPF_PSEUDO_MAP_FD)
				snprintf(buf, len, "r%d = map[fd:%d] ll", in->dst_reg, in[0].imm);
			else if (in->src_reg == BPF_PSEUDO_MAP_VALUE)
				snprintf(buf, len, "r%d = map[fd:%d][0]+%u ll", in->dst_reg,
					 in[0].imm, (unsigned)in[1].imm);
			else if (in->src_reg == BPF_PSEUDO_FUNC)
				snprintf(buf, len, "r%d = subprog[%+d] ll", in->dst_reg, in->imm);
			else
				snprintf(buf, len, "r%d = 0x%llx ll", in->dst_reg, v);
			return 2;
		}
		break;
	case BPF_JMP:
	case BPF_JMP32:
		if (op == BPF_EXIT) {
			snprintf(buf, len, "exit");
			return 1;
		}
		if (op == BPF_CALL) {
			if (in->src_reg == BPF_PSEUDO_CALL)
				snprintf(buf, len, "call pc%+d", in->imm);
			else
				snprintf(buf, len, "call helper#%d", in->imm);
			return 1;
		}
		if (op == BPF_JA && cls == BPF_JMP32) {	/* cpu v4: a 32-bit offset in imm */
			snprintf(buf, len, "gotol pc%+d (-> %d)", in->imm, idx + 1 + in->imm);
			return 1;
		}
		if (op == BPF_JA) {
			snprintf(buf, len, "goto pc%+d (-> %d)", in->off, idx + 1 + in->off);
			return 1;
		}
		if (op == BPF_JCOND) {
			snprintf(buf, len, "may_goto pc%+d (-> %d)", in->off, idx + 1 + in->off);
			return 1;
		}
		if (BPF_SRC(in->code) == BPF_X)
			snprintf(buf, len, "if %s%d %s %s%d goto pc%+d (-> %d)", r, in->dst_reg,
				 jmp_op(op), r, in->src_reg, in->off, idx + 1 + in->off);
		else
			snprintf(buf, len, "if %s%d %s 0x%x goto pc%+d (-> %d)", r, in->dst_reg,
				 jmp_op(op), in->imm, in->off, idx + 1 + in->off);
		return 1;
	}
	snprintf(buf, len, "(code %#04x)", in->code);
	return 1;
}

void bk_listing(const struct bk_emit *e, FILE *out, const struct bk_map_name *names,
		int nr_names)
{
	int i, l = 0, s = 0;

	for (i = 0; i < e->cnt;) {
		char buf[128];
		int slots;

		if (s < e->nr_subprogs && e->subprog_start[s] == i)
			fprintf(out, "%s<func#%d>:\n", s ? "\n" : "", s), s++;
		for (; l < e->nr_lines && e->line[l].insn == i; l++)
			fprintf(out, "; %s\n", bk_text(e, e->line[l].text));
		slots = bk_insn_str_named(&e->insn[i], i, buf, sizeof(buf), names, nr_names);
		if (e->comment[i] >= 0)
			fprintf(out, "%4d: %-44s # %s\n", i, buf, bk_text(e, e->comment[i]));
		else
			fprintf(out, "%4d: %s\n", i, buf);
		i += slots;
	}
}
