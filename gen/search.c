// SPDX-License-Identifier: GPL-2.0
/*
 * The per-format node search: pack the search position lossily into the
 * node's format (spec 7.2), then binary-search the node's key table for
 * the first key at or above it by packed comparison (spec 10): with
 * EXACT, key >= packed; with SMALLER (the greatest representable position
 * below the search), key > packed; with FAIL every packed key is above.
 * Keys stored unpacked are compared by position.  user/btree.c's
 * bk_node_lower_bound() is the same algorithm in C.
 *
 * Registers: r6 the search ctl, r7 the node, r8 lo, r9 hi; the packed
 * search key's words and the mode live in the search ctl.  The search
 * ctl is the run's own slot of the ctl map (gen/abi.h), which also holds
 * a lookup batch's queries and results.
 */
#include <errno.h>
#include <string.h>

#include "gen.h"

#define R_CTL	BPF_REG_6
#define R_NODE	BPF_REG_7
#define R_LO	BPF_REG_8
#define R_HI	BPF_REG_9

#define FP_KEYIDX	(-8)		/* u32: map key for the node lookup */
#define FP_CTX		(-16)		/* the program's context, for tail calls */
#define FP_SLOT		(-24)		/* u32: the run's slot, the key of its ctl */
/* the bpf_loop search's callback context: the search ctl and the node */
#define FP_CB_CTX	(-40)
#define CB_CTL		0
#define CB_NODE		8
/* in the ctl map value (r6) */
#define C_MODE		BK_SCTL_OFF_LOSSY	/* u32: 0 EXACT, 1 SMALLER, 2 FAIL */
#define C_P(w)		(BK_SCTL_OFF_PACKED + 8 * (int)(w))
#define C_PSHIFT	BK_SCTL_OFF_PSHIFT

static bool fits_s32(uint64_t v)
{
	return (int64_t)v == (int32_t)v;
}

/*
 * A field's offset as an operand: the format's constant, or (a shape
 * program) the u64 the node's format holds, loaded into the scratch
 * register when it is used.
 */
struct field_off {
	uint64_t	imm;
	int		node_off;	/* from R_NODE; -1: use imm */
};

static struct field_off field_off(const struct bk_plan *P, bool by_shape, unsigned field)
{
	return (struct field_off){
		.imm = P->fp[field].offset,
		.node_off = by_shape ? BK_NODE_OFF_FORMAT + (int)offsetof(struct bkey_format,
									  field_offset[field]) : -1,
	};
}

/* if (reg OP imm64) goto label, with a scratch register when needed */
static void jmp_imm64(struct bk_emit *e, int op, int reg, uint64_t imm, int scratch, int label)
{
	if (fits_s32(imm)) {
		bk_jmp(e, BPF_JMP_IMM(op, reg, (int32_t)imm, 0), label);
	} else {
		bk_ld_imm64(e, scratch, 0, imm);
		bk_jmp(e, BPF_JMP_REG(op, reg, scratch, 0), label);
	}
}

static void sub_imm64(struct bk_emit *e, int reg, uint64_t imm, int scratch)
{
	if (!imm)
		return;
	if (fits_s32(imm)) {
		bk_insn(e, BPF_ALU64_IMM(BPF_SUB, reg, (int32_t)imm));
	} else {
		bk_ld_imm64(e, scratch, 0, imm);
		bk_insn(e, BPF_ALU64_REG(BPF_SUB, reg, scratch));
	}
}

/* if (reg OP offset) goto label; 32-bit compares for the snapshot */
static void jmp_off(struct bk_emit *e, int op, int reg, struct field_off o, bool is32,
		    int scratch, int label)
{
	if (o.node_off < 0) {
		if (is32)
			bk_jmp(e, BPF_JMP32_IMM(op, reg, (int32_t)(uint32_t)o.imm, 0), label);
		else
			jmp_imm64(e, op, reg, o.imm, scratch, label);
		return;
	}
	bk_insn(e, BPF_LDX_MEM(is32 ? BPF_W : BPF_DW, scratch, R_NODE, o.node_off));
	if (is32)
		bk_jmp(e, BPF_JMP32_REG(op, reg, scratch, 0), label);
	else
		bk_jmp(e, BPF_JMP_REG(op, reg, scratch, 0), label);
}

/* reg -= offset */
static void sub_off(struct bk_emit *e, int reg, struct field_off o, bool is32, int scratch)
{
	if (o.node_off < 0) {
		if (is32)
			bk_insn(e, BPF_ALU32_IMM(BPF_SUB, reg, (int32_t)(uint32_t)o.imm));
		else
			sub_imm64(e, reg, o.imm, scratch);
		return;
	}
	bk_insn(e, BPF_LDX_MEM(is32 ? BPF_W : BPF_DW, scratch, R_NODE, o.node_off));
	if (is32)
		bk_insn(e, BPF_ALU32_REG(BPF_SUB, reg, scratch));
	else
		bk_insn(e, BPF_ALU64_REG(BPF_SUB, reg, scratch));
}

static void mov_imm64(struct bk_emit *e, int reg, uint64_t imm)
{
	if (fits_s32(imm))
		bk_insn(e, BPF_MOV64_IMM(reg, (int32_t)imm));
	else
		bk_ld_imm64(e, reg, 0, imm);
}

/* The lowest word that holds key bits, and how many key bits are in it. */
static void key_words(const struct bk_plan *P, unsigned *lo_word, unsigned *nr_key_bits)
{
	unsigned nkb = bkey_format_nr_key_bits(&P->f);

	*nr_key_bits = nkb;
	*lo_word = nkb ? (64 * P->key_u64s - nkb) / 64 : P->key_u64s - 1;
}

/*
 * Spec 7.2 with the format's constants (a shape program: the node's
 * format's offsets): I, O, S in r1, r2, r3; the mode and the packed
 * words into the ctl map.  FAIL jumps to @fail.
 */
static void emit_pack_pos_lossy(struct bk_emit *e, const struct bk_plan *P, bool by_shape,
				int fail)
{
	const struct bk_field_plan *fi = &P->fp[BKEY_FIELD_INODE];
	const struct bk_field_plan *fo = &P->fp[BKEY_FIELD_OFFSET];
	const struct bk_field_plan *fs = &P->fp[BKEY_FIELD_SNAPSHOT];
	struct field_off oi = field_off(P, by_shape, BKEY_FIELD_INODE);
	struct field_off oo = field_off(P, by_shape, BKEY_FIELD_OFFSET);
	struct field_off os = field_off(P, by_shape, BKEY_FIELD_SNAPSHOT);
	int step2 = bk_label(e), step3 = bk_label(e), dec_o = bk_label(e);
	const struct bk_field_plan *fp[3] = { fi, fo, fs };
	const struct field_off off[3] = { oi, oo, os };
	unsigned lo_word, nkb, w, i;

	if (by_shape)
		bk_line(e, "pack the search position lossily (spec 7.2): the node's offsets; widths %u, %u, %u",
			fi->bits, fo->bits, fs->bits);
	else
		bk_line(e, "pack the search position lossily (spec 7.2): offsets %#llx, %#llx, %#llx; "
			"widths %u, %u, %u", (unsigned long long)fi->offset,
			(unsigned long long)fo->offset, (unsigned long long)fs->offset,
			fi->bits, fo->bits, fs->bits);
	bk_insn(e, BPF_ST_MEM(BPF_W, R_CTL, C_MODE, 0));
	/* 1. snapshot underflow: the position just below, at snapshot U32_MAX */
	jmp_off(e, BPF_JGE, BPF_REG_3, os, true, BPF_REG_4, step2);
	bk_jmp(e, BPF_JMP_IMM(BPF_JNE, BPF_REG_2, 0, 0), dec_o);
	bk_jmp(e, BPF_JMP_IMM(BPF_JEQ, BPF_REG_1, 0, 0), fail);
	bk_insn(e, BPF_ALU64_IMM(BPF_SUB, BPF_REG_1, 1));
	bk_bind(e, dec_o);
	bk_insn(e, BPF_ALU64_IMM(BPF_SUB, BPF_REG_2, 1));
	bk_insn(e, BPF_MOV32_IMM(BPF_REG_3, -1));
	bk_insn(e, BPF_ST_MEM(BPF_W, R_CTL, C_MODE, 1));
	/* 2. offset underflow: the last position of the previous inode */
	bk_bind(e, step2);
	jmp_off(e, BPF_JGE, BPF_REG_2, oo, false, BPF_REG_4, step3);
	bk_jmp(e, BPF_JMP_IMM(BPF_JEQ, BPF_REG_1, 0, 0), fail);
	bk_insn(e, BPF_ALU64_IMM(BPF_SUB, BPF_REG_1, 1));
	bk_insn(e, BPF_MOV64_IMM(BPF_REG_2, -1));
	bk_insn(e, BPF_MOV32_IMM(BPF_REG_3, -1));
	bk_insn(e, BPF_ST_MEM(BPF_W, R_CTL, C_MODE, 1));
	/* 3. inode underflow: below every representable position */
	bk_bind(e, step3);
	jmp_off(e, BPF_JLT, BPF_REG_1, oi, false, BPF_REG_4, fail);

	/* 4. overflow: saturate the field and every less significant one */
	for (i = 0; i < 3; i++) {
		int reg = BPF_REG_1 + i, ok = bk_label(e);
		uint64_t mask = bkey_mask(fp[i]->bits);

		sub_off(e, reg, off[i], i == 2, BPF_REG_4);
		if (fp[i]->bits >= bkey_field_width[i])
			continue;	/* full width: never overflows */
		jmp_imm64(e, BPF_JLE, reg, mask, BPF_REG_4, ok);
		mov_imm64(e, reg, mask);
		if (i < 1)
			bk_insn(e, BPF_MOV64_IMM(BPF_REG_2, -1));
		if (i < 2)
			bk_insn(e, BPF_MOV32_IMM(BPF_REG_3, -1));
		bk_insn(e, BPF_ST_MEM(BPF_W, R_CTL, C_MODE, 1));
		bk_bind(e, ok);
	}

	/* place the three fields into the key words (the rest stay 0) */
	key_words(P, &lo_word, &nkb);
	for (w = lo_word; w < P->key_u64s; w++)
		bk_insn(e, BPF_ST_MEM(BPF_DW, R_CTL, C_P(w), 0));
	for (i = 0; i < 3; i++) {
		const struct bk_field_plan *f = fp[i];
		int reg = BPF_REG_1 + i;

		if (!f->bits)
			continue;
		bk_insn(e, BPF_MOV64_REG(BPF_REG_0, reg));
		if (f->sh)
			bk_insn(e, BPF_ALU64_IMM(BPF_LSH, BPF_REG_0, f->sh));
		bk_insn(e, BPF_LDX_MEM(BPF_DW, BPF_REG_5, R_CTL, C_P(f->word)));
		bk_insn(e, BPF_ALU64_REG(BPF_OR, BPF_REG_5, BPF_REG_0));
		bk_insn(e, BPF_STX_MEM(BPF_DW, R_CTL, BPF_REG_5, C_P(f->word)));
		if (f->kind == BK_FIELD_STRADDLE) {
			bk_insn(e, BPF_MOV64_REG(BPF_REG_0, reg));
			bk_insn(e, BPF_ALU64_IMM(BPF_RSH, BPF_REG_0, 64 - f->sh));
			bk_insn(e, BPF_LDX_MEM(BPF_DW, BPF_REG_5, R_CTL, C_P(f->word + 1)));
			bk_insn(e, BPF_ALU64_REG(BPF_OR, BPF_REG_5, BPF_REG_0));
			bk_insn(e, BPF_STX_MEM(BPF_DW, R_CTL, BPF_REG_5, C_P(f->word + 1)));
		}
	}
	/* the lowest key word compares only its top key bits: pre-shift it */
	if (nkb % 64) {
		bk_insn(e, BPF_LDX_MEM(BPF_DW, BPF_REG_5, R_CTL, C_P(lo_word)));
		bk_insn(e, BPF_ALU64_IMM(BPF_RSH, BPF_REG_5, 64 - nkb % 64));
		bk_insn(e, BPF_STX_MEM(BPF_DW, R_CTL, BPF_REG_5, C_PSHIFT));
	}
}

/*
 * Packed comparison of the key at r3 against the packed search key over
 * the key bits, high word first: goes to @above if the key is greater,
 * @below if smaller, falls through if equal.
 */
static void emit_packed_cmp(struct bk_emit *e, const struct bk_plan *P, int above, int below)
{
	unsigned lo_word, nkb, w;

	key_words(P, &lo_word, &nkb);
	if (!nkb)
		return;		/* no key bits: every key compares equal */
	bk_line(e, "compare the top %u key bits, words %u..%u, high word first", nkb,
		P->key_u64s - 1, lo_word);
	for (w = P->key_u64s; w-- > lo_word;) {
		bool partial = w == lo_word && nkb % 64;

		bk_insn(e, BPF_LDX_MEM(BPF_DW, BPF_REG_0, BPF_REG_3, 8 * w));
		if (partial)
			bk_insn(e, BPF_ALU64_IMM(BPF_RSH, BPF_REG_0, 64 - nkb % 64));
		bk_insn(e, BPF_LDX_MEM(BPF_DW, BPF_REG_4, R_CTL, partial ? C_PSHIFT : C_P(w)));
		bk_jmp(e, BPF_JMP_REG(BPF_JGT, BPF_REG_0, BPF_REG_4, 0), above);
		bk_jmp(e, BPF_JMP_REG(BPF_JLT, BPF_REG_0, BPF_REG_4, 0), below);
	}
}

/* A key stored unpacked at r3 against the search position, exactly. */
static void emit_unpacked_cmp(struct bk_emit *e, int above, int below)
{
	static const struct { int koff, coff, size; } f[] = {
		{ 32, BK_SCTL_OFF_INODE, BPF_DW },
		{ 24, BK_SCTL_OFF_OFFSET, BPF_DW },
		{ 20, BK_SCTL_OFF_SNAPSHOT, BPF_W },
	};
	unsigned i;

	bk_line(e, "a key stored unpacked: compare inode, offset, snapshot with the search");
	for (i = 0; i < 3; i++) {
		bk_insn(e, BPF_LDX_MEM(f[i].size, BPF_REG_0, BPF_REG_3, f[i].koff));
		bk_insn(e, BPF_LDX_MEM(f[i].size, BPF_REG_4, R_CTL, f[i].coff));
		bk_jmp(e, BPF_JMP_REG(BPF_JGT, BPF_REG_0, BPF_REG_4, 0), above);
		bk_jmp(e, BPF_JMP_REG(BPF_JLT, BPF_REG_0, BPF_REG_4, 0), below);
	}
	bk_jmp(e, BPF_JMP_A(0), above);		/* equal: at the search */
}

/*
 * r3 = the u16 at r2 + @tab_off.  An instruction's offset is 16 bits,
 * signed: past 32767 (nodes over 32 KiB) the pointer moves first.
 */
static void emit_load_tab(struct bk_emit *e, unsigned tab_off)
{
	if (tab_off > INT16_MAX) {
		bk_insn(e, BPF_ALU64_IMM(BPF_ADD, BPF_REG_2, tab_off));
		tab_off = 0;
	}
	bk_insn(e, BPF_LDX_MEM(BPF_H, BPF_REG_3, BPF_REG_2, tab_off));
}

/* If anything jumps to @label: there r0 = @status, then on to @finish. */
static void emit_status_block(struct bk_emit *e, int label, int status, int finish)
{
	if (!bk_label_used(e, label))
		return;
	bk_bind(e, label);
	bk_insn(e, BPF_MOV64_IMM(BPF_REG_0, status));
	bk_jmp(e, BPF_JMP_A(0), finish);
}

/*
 * A lookup run's entry, which is also every tail call's.  The caller runs
 * a batch in one test run with repeats (gen/lookup.c): each repeat is a
 * new run of the root's program with a fresh tail-call count.  The status
 * tells them apart: ~0 is the caller's first run or a run going on; a run
 * that ended between lookups (BK_ERR_TAIL at the root) starts the next
 * one; anything else (answered, failed, or a walk stopped below the root,
 * which that node's program must resume) leaves the batch as it is.
 */
static void emit_lookup_entry(struct bk_emit *e, int idle)
{
	int go = bk_label(e);

	bk_comment(e, "a run of the caller's repeats: go on from the root after one that ended "
		   "between lookups, else leave the batch be");
	bk_insn(e, BPF_LDX_MEM(BPF_W, BPF_REG_1, R_CTL, BK_SCTL_OFF_STATUS));
	bk_jmp(e, BPF_JMP32_IMM(BPF_JEQ, BPF_REG_1, -1, 0), go);
	bk_jmp(e, BPF_JMP32_IMM(BPF_JNE, BPF_REG_1, BK_ERR_TAIL, 0), idle);
	bk_insn(e, BPF_LDX_MEM(BPF_W, BPF_REG_1, R_CTL, BK_SCTL_OFF_NODE));
	bk_insn(e, BPF_LDX_MEM(BPF_W, BPF_REG_2, R_CTL, BK_SCTL_OFF_ROOT));
	bk_jmp(e, BPF_JMP_REG(BPF_JNE, BPF_REG_1, BPF_REG_2, 0), idle);
	bk_insn(e, BPF_ST_MEM(BPF_W, R_CTL, BK_SCTL_OFF_STATUS, -1));
	bk_bind(e, go);
}

/* r0 = the node whose index is in r5 (r1-r5 clobbered); NULL goes to @bad. */
static void emit_node_ptr(struct bk_emit *e, const struct bk_search_opts *o, int bad)
{
	bk_insn(e, BPF_STX_MEM(BPF_W, BPF_REG_10, BPF_REG_5, FP_KEYIDX));
	bk_map_lookup(e, o->nodes_fd, FP_KEYIDX);
	bk_jmp(e, BPF_JMP_IMM(BPF_JEQ, BPF_REG_0, 0, 0), bad);
}

/* Tail call the program at index r3; if it returns, the budget is spent. */
static void emit_tail_call(struct bk_emit *e, const struct bk_search_opts *o, int finish)
{
	bk_insn(e, BPF_LDX_MEM(BPF_DW, BPF_REG_1, BPF_REG_10, FP_CTX));
	bk_ld_imm64(e, BPF_REG_2, BPF_PSEUDO_MAP_FD, (unsigned)o->progs_fd);
	bk_insn(e, BPF_EMIT_CALL(BPF_FUNC_tail_call));
	bk_comment(e, "still here: the tail call budget is spent; the caller runs again");
	bk_insn(e, BPF_MOV64_IMM(BPF_REG_0, BK_ERR_TAIL));
	bk_jmp(e, BPF_JMP_A(0), finish);
}

/* r4 = &results[ctl->q], in the slot after the queries */
static void emit_result_ptr(struct bk_emit *e, int bad)
{
	bk_insn(e, BPF_LDX_MEM(BPF_W, BPF_REG_4, R_CTL, BK_SCTL_OFF_Q));
	bk_jmp(e, BPF_JMP_IMM(BPF_JGE, BPF_REG_4, BK_BATCH, 0), bad);
	bk_insn(e, BPF_ALU64_IMM(BPF_MUL, BPF_REG_4, sizeof(struct bk_result)));
	bk_insn(e, BPF_ALU64_REG(BPF_ADD, BPF_REG_4, R_CTL));
	bk_insn(e, BPF_ALU64_IMM(BPF_ADD, BPF_REG_4, BK_LSLOT_OFF_RESULTS));
}

/*
 * The key the search found (r8 < nr_keys) is checked before it is used,
 * as a child pointer or an answer: it starts and ends inside the node,
 * its u64s equals the table's stride, its format byte is 0 or 1, and it
 * has its key words and at most 250 value words.  A node that went bad
 * in the map stops the lookup with an error, never a wrong answer.
 * Leaves r3 = the key, r0 = its format byte.
 */
static void emit_check_found(struct bk_emit *e, const struct bk_plan *P, unsigned node_words,
			     unsigned tab_off, int bad)
{
	unsigned ku = P->key_u64s;
	int packed = bk_label(e), ok = bk_label(e);

	bk_line(e, "check the key found: inside the node, u64s == the table's stride, format 0 or 1, "
		"%u <= u64s <= %u (or 5 <= u64s unpacked)", ku, ku + BKEY_VAL_U64s_MAX);
	bk_insn(e, BPF_MOV64_REG(BPF_REG_2, R_LO));
	bk_insn(e, BPF_ALU64_IMM(BPF_LSH, BPF_REG_2, 1));
	bk_insn(e, BPF_ALU64_REG(BPF_ADD, BPF_REG_2, R_NODE));
	if (tab_off > INT16_MAX - 2) {
		bk_insn(e, BPF_ALU64_IMM(BPF_ADD, BPF_REG_2, tab_off));
		tab_off = 0;
	}
	bk_insn(e, BPF_LDX_MEM(BPF_H, BPF_REG_3, BPF_REG_2, tab_off));
	bk_insn(e, BPF_LDX_MEM(BPF_H, BPF_REG_5, BPF_REG_2, tab_off + 2));
	bk_jmp(e, BPF_JMP_IMM(BPF_JGE, BPF_REG_3, node_words, 0), bad);
	bk_comment(e, "the key ends inside the node");
	bk_jmp(e, BPF_JMP_IMM(BPF_JGT, BPF_REG_5, node_words, 0), bad);
	bk_insn(e, BPF_ALU64_REG(BPF_SUB, BPF_REG_5, BPF_REG_3));
	bk_insn(e, BPF_ALU64_IMM(BPF_LSH, BPF_REG_3, 3));
	bk_insn(e, BPF_ALU64_REG(BPF_ADD, BPF_REG_3, R_NODE));
	bk_insn(e, BPF_ALU64_IMM(BPF_ADD, BPF_REG_3, BK_NODE_WORDS_OFF));
	bk_insn(e, BPF_LDX_MEM(BPF_B, BPF_REG_0, BPF_REG_3, 1));
	bk_insn(e, BPF_ALU64_IMM(BPF_AND, BPF_REG_0, 0x7f));
	bk_insn(e, BPF_LDX_MEM(BPF_B, BPF_REG_4, BPF_REG_3, 0));
	bk_comment(e, "the table agrees with the key");
	bk_jmp(e, BPF_JMP_REG(BPF_JNE, BPF_REG_4, BPF_REG_5, 0), bad);
	bk_jmp(e, BPF_JMP_IMM(BPF_JEQ, BPF_REG_0, 0, 0), packed);
	bk_jmp(e, BPF_JMP_IMM(BPF_JNE, BPF_REG_0, KEY_FORMAT_CURRENT, 0), bad);
	bk_jmp(e, BPF_JMP_IMM(BPF_JLT, BPF_REG_4, BKEY_U64s, 0), bad);
	bk_jmp(e, BPF_JMP_A(0), ok);
	bk_bind(e, packed);
	bk_jmp(e, BPF_JMP_IMM(BPF_JLT, BPF_REG_4, ku, 0), bad);
	if (ku + BKEY_VAL_U64s_MAX < BKEY_U64s_MAX)
		bk_jmp(e, BPF_JMP_IMM(BPF_JGT, BPF_REG_4, ku + BKEY_VAL_U64s_MAX, 0), bad);
	bk_bind(e, ok);
}

/*
 * After the search (r8 = the first key >= the position): descend or
 * answer, then the next query.  r3 = the key, r0 its format byte.
 */
static void emit_lookup_tail(struct bk_emit *e, const struct bk_plan *P,
			     const struct bk_search_opts *o, int bad, int finish)
{
	unsigned node_words = o->node_size / 8, tab_off = bk_node_tab_off(o->node_size);
	int none = bk_label(e), leaf = bk_label(e), ptr_unpacked = bk_label(e);
	int have_child = bk_label(e), leaf_unpacked = bk_label(e), answered = bk_label(e);
	int next = bk_label(e), nothing = bk_label(e), more = bk_label(e);
	int bad_ptr = bk_label(e), bad_level = bk_label(e), bad_hops = bk_label(e);
	int bad_tmpl = bk_label(e);
	const struct bk_tmpl_at tmpl = { .reg = R_NODE, .off = BK_NODE_OFF_TMPL };
	unsigned i;

	bk_line(e, "lookup: past the last key of an interior node: nothing (its last key is its max)");
	bk_insn(e, BPF_LDX_MEM(BPF_W, R_HI, R_NODE, offsetof(struct bk_node_hdr, nr_keys)));
	bk_jmp(e, BPF_JMP_REG(BPF_JGE, R_LO, R_HI, 0), none);
	bk_jmp(e, BPF_JMP_IMM(BPF_JGE, R_LO, node_words, 0), bad);
	emit_check_found(e, P, node_words, tab_off, bad);
	bk_insn(e, BPF_LDX_MEM(BPF_W, BPF_REG_4, R_NODE, offsetof(struct bk_node_hdr, level)));
	bk_jmp(e, BPF_JMP_IMM(BPF_JEQ, BPF_REG_4, 0, 0), leaf);

	bk_line(e, "interior node: the btree_ptr_v2 value's mem_ptr is the child, one level down; "
		"tail call its program");
	bk_insn(e, BPF_MOV64_REG(R_HI, BPF_REG_4));
	bk_insn(e, BPF_ALU64_IMM(BPF_SUB, R_HI, 1));
	bk_comment(e, "an interior node's keys are btree_ptr_v2: else its level lies");
	bk_insn(e, BPF_LDX_MEM(BPF_B, BPF_REG_1, BPF_REG_3, offsetof(struct bkey, type)));
	bk_jmp(e, BPF_JMP_IMM(BPF_JNE, BPF_REG_1, KEY_TYPE_btree_ptr_v2, 0), bad_level);
	bk_jmp(e, BPF_JMP_IMM(BPF_JNE, BPF_REG_0, 0, 0), ptr_unpacked);
	bk_insn(e, BPF_LDX_MEM(BPF_DW, BPF_REG_5, BPF_REG_3, 8 * P->key_u64s));
	bk_jmp(e, BPF_JMP_A(0), have_child);
	bk_bind(e, ptr_unpacked);
	bk_insn(e, BPF_LDX_MEM(BPF_DW, BPF_REG_5, BPF_REG_3, 8 * BKEY_U64s));
	bk_bind(e, have_child);
	bk_line(e, "to node r5 at level r9: one of the tree's, of that level");
	bk_insn(e, BPF_LDX_MEM(BPF_W, BPF_REG_1, R_CTL, BK_SCTL_OFF_SLOT_FIRST));
	bk_insn(e, BPF_LDX_MEM(BPF_W, BPF_REG_2, R_CTL, BK_SCTL_OFF_SLOT_END));
	bk_jmp(e, BPF_JMP_REG(BPF_JLT, BPF_REG_5, BPF_REG_1, 0), bad_ptr);
	bk_jmp(e, BPF_JMP_REG(BPF_JGE, BPF_REG_5, BPF_REG_2, 0), bad_ptr);
	bk_insn(e, BPF_STX_MEM(BPF_W, R_CTL, BPF_REG_5, BK_SCTL_OFF_NODE));
	emit_node_ptr(e, o, bad);
	bk_insn(e, BPF_LDX_MEM(BPF_W, BPF_REG_1, BPF_REG_0, offsetof(struct bk_node_hdr, level)));
	bk_jmp(e, BPF_JMP_REG(BPF_JNE, BPF_REG_1, R_HI, 0), bad_level);
	bk_insn(e, BPF_LDX_MEM(BPF_W, BPF_REG_3, BPF_REG_0, offsetof(struct bk_node_hdr, format_id)));
	emit_tail_call(e, o, finish);

	bk_bind(e, leaf);
	bk_line(e, "leaf: unpack the key into results[q]");
	if (o->by_shape)
		bk_emit_check_template(e, P, R_NODE, bad_tmpl);
	bk_insn(e, BPF_MOV64_REG(BPF_REG_1, BPF_REG_3));
	emit_result_ptr(e, bad);
	bk_jmp(e, BPF_JMP_IMM(BPF_JNE, BPF_REG_0, 0, 0), leaf_unpacked);
	bk_insn(e, BPF_LDX_MEM(BPF_W, BPF_REG_2, BPF_REG_1, 0));
	bk_emit_unpack_packed(e, P, o->strict_align, o->by_shape ? &tmpl : NULL);
	bk_jmp(e, BPF_JMP_A(0), answered);
	bk_bind(e, leaf_unpacked);
	for (i = 0; i < BKEY_U64s; i++) {
		bk_insn(e, BPF_LDX_MEM(BPF_DW, BPF_REG_0, BPF_REG_1, 8 * i));
		bk_insn(e, BPF_STX_MEM(BPF_DW, BPF_REG_4, BPF_REG_0, 8 * i));
	}
	bk_bind(e, answered);
	bk_insn(e, BPF_LDX_MEM(BPF_W, BPF_REG_0, R_CTL, BK_SCTL_OFF_NODE));
	bk_insn(e, BPF_STX_MEM(BPF_W, BPF_REG_4, BPF_REG_0, offsetof(struct bk_result, node)));
	bk_insn(e, BPF_STX_MEM(BPF_W, BPF_REG_4, R_LO, offsetof(struct bk_result, idx)));
	bk_insn(e, BPF_ST_MEM(BPF_W, BPF_REG_4, offsetof(struct bk_result, found), 1));
	bk_jmp(e, BPF_JMP_A(0), next);
	bk_bind(e, none);
	bk_line(e, "past a leaf's last key: the next leaf answers, if there is one");
	bk_insn(e, BPF_LDX_MEM(BPF_W, BPF_REG_4, R_NODE, offsetof(struct bk_node_hdr, level)));
	bk_jmp(e, BPF_JMP_IMM(BPF_JNE, BPF_REG_4, 0, 0), nothing);
	bk_insn(e, BPF_LDX_MEM(BPF_W, BPF_REG_5, R_NODE, offsetof(struct bk_node_hdr, next_leaf)));
	bk_jmp(e, BPF_JMP_IMM(BPF_JEQ, BPF_REG_5, 0, 0), nothing);
	bk_insn(e, BPF_ALU64_IMM(BPF_SUB, BPF_REG_5, 1));
	bk_comment(e, "a hop per node of the tree at most: else the next-leaf links loop");
	bk_insn(e, BPF_LDX_MEM(BPF_W, BPF_REG_1, R_CTL, BK_SCTL_OFF_HOPS));
	bk_insn(e, BPF_ALU64_IMM(BPF_ADD, BPF_REG_1, 1));
	bk_insn(e, BPF_STX_MEM(BPF_W, R_CTL, BPF_REG_1, BK_SCTL_OFF_HOPS));
	bk_insn(e, BPF_LDX_MEM(BPF_W, BPF_REG_2, R_CTL, BK_SCTL_OFF_SLOT_END));
	bk_insn(e, BPF_LDX_MEM(BPF_W, BPF_REG_3, R_CTL, BK_SCTL_OFF_SLOT_FIRST));
	bk_insn(e, BPF_ALU64_REG(BPF_SUB, BPF_REG_2, BPF_REG_3));
	bk_jmp(e, BPF_JMP_REG(BPF_JGT, BPF_REG_1, BPF_REG_2, 0), bad_hops);
	bk_comment(e, "the next leaf is a leaf");
	bk_insn(e, BPF_MOV64_IMM(R_HI, 0));
	bk_jmp(e, BPF_JMP_A(0), have_child);
	bk_bind(e, nothing);
	emit_result_ptr(e, bad);
	bk_insn(e, BPF_ST_MEM(BPF_W, BPF_REG_4, offsetof(struct bk_result, found), 0));

	bk_bind(e, next);
	bk_line(e, "the next query of the batch, from the root");
	bk_insn(e, BPF_ST_MEM(BPF_W, R_CTL, BK_SCTL_OFF_HOPS, 0));
	bk_insn(e, BPF_LDX_MEM(BPF_W, BPF_REG_4, R_CTL, BK_SCTL_OFF_Q));
	bk_insn(e, BPF_ALU64_IMM(BPF_ADD, BPF_REG_4, 1));
	bk_insn(e, BPF_STX_MEM(BPF_W, R_CTL, BPF_REG_4, BK_SCTL_OFF_Q));
	bk_insn(e, BPF_LDX_MEM(BPF_W, BPF_REG_5, R_CTL, BK_SCTL_OFF_NQ));
	bk_insn(e, BPF_MOV64_IMM(BPF_REG_0, BK_OK));
	bk_jmp(e, BPF_JMP_REG(BPF_JGE, BPF_REG_4, BPF_REG_5, 0), finish);
	bk_jmp(e, BPF_JMP_IMM(BPF_JGE, BPF_REG_4, BK_BATCH, 0), bad);
	bk_insn(e, BPF_ALU64_IMM(BPF_MUL, BPF_REG_4, sizeof(struct bk_query)));
	bk_insn(e, BPF_ALU64_REG(BPF_ADD, BPF_REG_4, R_CTL));
	bk_insn(e, BPF_ALU64_IMM(BPF_ADD, BPF_REG_4, BK_LSLOT_OFF_QUERIES));
	bk_insn(e, BPF_LDX_MEM(BPF_DW, BPF_REG_0, BPF_REG_4, offsetof(struct bk_query, inode)));
	bk_insn(e, BPF_STX_MEM(BPF_DW, R_CTL, BPF_REG_0, BK_SCTL_OFF_INODE));
	bk_insn(e, BPF_LDX_MEM(BPF_DW, BPF_REG_0, BPF_REG_4, offsetof(struct bk_query, offset)));
	bk_insn(e, BPF_STX_MEM(BPF_DW, R_CTL, BPF_REG_0, BK_SCTL_OFF_OFFSET));
	bk_insn(e, BPF_LDX_MEM(BPF_W, BPF_REG_0, BPF_REG_4, offsetof(struct bk_query, snapshot)));
	bk_insn(e, BPF_STX_MEM(BPF_W, R_CTL, BPF_REG_0, BK_SCTL_OFF_SNAPSHOT));
	bk_insn(e, BPF_LDX_MEM(BPF_W, BPF_REG_0, R_CTL, BK_SCTL_OFF_ROOT));
	bk_insn(e, BPF_STX_MEM(BPF_W, R_CTL, BPF_REG_0, BK_SCTL_OFF_NODE));
	bk_insn(e, BPF_LDX_MEM(BPF_W, BPF_REG_4, R_CTL, BK_SCTL_OFF_BUDGET));
	bk_insn(e, BPF_ALU64_IMM(BPF_SUB, BPF_REG_4, 1));
	bk_insn(e, BPF_STX_MEM(BPF_W, R_CTL, BPF_REG_4, BK_SCTL_OFF_BUDGET));
	bk_jmp(e, BPF_JMP32_IMM(BPF_JNE, BPF_REG_4, 0, 0), more);
	bk_comment(e, "this run's lookups spent: end between lookups, with the budget refilled "
		   "for the caller's next run");
	bk_insn(e, BPF_LDX_MEM(BPF_W, BPF_REG_4, R_CTL, BK_SCTL_OFF_PER_RUN));
	bk_insn(e, BPF_STX_MEM(BPF_W, R_CTL, BPF_REG_4, BK_SCTL_OFF_BUDGET));
	bk_insn(e, BPF_MOV64_IMM(BPF_REG_0, BK_ERR_TAIL));
	bk_jmp(e, BPF_JMP_A(0), finish);
	bk_bind(e, more);
	bk_insn(e, BPF_LDX_MEM(BPF_W, BPF_REG_3, R_CTL, BK_SCTL_OFF_ROOT_FID));
	emit_tail_call(e, o, finish);

	bk_line(e, "a pointer that lies: outside the tree, to the wrong level, or next leaves that loop "
		"(ctl->node names the node)");
	bk_bind(e, bad_ptr);
	bk_insn(e, BPF_STX_MEM(BPF_W, R_CTL, BPF_REG_5, BK_SCTL_OFF_NODE));
	bk_insn(e, BPF_MOV64_IMM(BPF_REG_0, BK_ERR_NODE_PTR));
	bk_jmp(e, BPF_JMP_A(0), finish);
	emit_status_block(e, bad_level, BK_ERR_NODE_LEVEL, finish);
	emit_status_block(e, bad_hops, BK_ERR_LEAF_HOPS, finish);
	emit_status_block(e, bad_tmpl, BK_ERR_NODE_TMPL, finish);
}

/*
 * One step of the binary search: lo and hi from the map (so the
 * verifier's states are unknown scalars, not constants), lo >= hi goes to
 * @found, else the key at mid is compared and lo or hi stored; then on to
 * @next (the loop's head, or the next unrolled step).
 */
static void emit_search_step(struct bk_emit *e, const struct bk_plan *P, unsigned max_keys,
			     unsigned node_words, unsigned tab_off, int next, int found, int bad)
{
	int above = bk_label(e), below = bk_label(e), unpacked = bk_label(e);

	bk_insn(e, BPF_LDX_MEM(BPF_W, R_LO, R_CTL, BK_SCTL_OFF_LO));
	bk_insn(e, BPF_LDX_MEM(BPF_W, R_HI, R_CTL, BK_SCTL_OFF_HI));
	bk_comment(e, "a node holds at most one key per word");
	bk_jmp(e, BPF_JMP_IMM(BPF_JGT, R_HI, max_keys, 0), bad);
	bk_jmp(e, BPF_JMP_REG(BPF_JGE, R_LO, R_HI, 0), found);
	bk_insn(e, BPF_MOV64_REG(BPF_REG_1, R_LO));
	bk_insn(e, BPF_ALU64_REG(BPF_ADD, BPF_REG_1, R_HI));
	bk_insn(e, BPF_ALU64_IMM(BPF_RSH, BPF_REG_1, 1));
	bk_comment(e, "for the verifier: lo < hi <= max keys");
	bk_jmp(e, BPF_JMP_IMM(BPF_JGE, BPF_REG_1, max_keys, 0), bad);
	bk_insn(e, BPF_MOV64_REG(BPF_REG_2, BPF_REG_1));
	bk_insn(e, BPF_ALU64_IMM(BPF_LSH, BPF_REG_2, 1));
	bk_insn(e, BPF_ALU64_REG(BPF_ADD, BPF_REG_2, R_NODE));
	emit_load_tab(e, tab_off);
	bk_comment(e, "the key lies inside the node");
	bk_jmp(e, BPF_JMP_IMM(BPF_JGE, BPF_REG_3, node_words, 0), bad);
	bk_insn(e, BPF_ALU64_IMM(BPF_LSH, BPF_REG_3, 3));
	bk_insn(e, BPF_ALU64_REG(BPF_ADD, BPF_REG_3, R_NODE));
	bk_insn(e, BPF_ALU64_IMM(BPF_ADD, BPF_REG_3, BK_NODE_WORDS_OFF));
	bk_insn(e, BPF_LDX_MEM(BPF_B, BPF_REG_0, BPF_REG_3, 1));
	bk_jmp(e, BPF_JMP_IMM(BPF_JSET, BPF_REG_0, 0x7f, 0), unpacked);
	bk_insn(e, BPF_LDX_MEM(BPF_W, BPF_REG_0, R_CTL, C_MODE));
	bk_comment(e, "FAIL: every packed key is above the search");
	bk_jmp(e, BPF_JMP_IMM(BPF_JEQ, BPF_REG_0, 2, 0), above);
	emit_packed_cmp(e, P, above, below);
	bk_line(e, "equal key bits: at the search if EXACT, below it if SMALLER");
	bk_insn(e, BPF_LDX_MEM(BPF_W, BPF_REG_0, R_CTL, C_MODE));
	bk_jmp(e, BPF_JMP_IMM(BPF_JEQ, BPF_REG_0, 0, 0), above);
	bk_bind(e, below);
	bk_insn(e, BPF_ALU64_IMM(BPF_ADD, BPF_REG_1, 1));
	bk_insn(e, BPF_STX_MEM(BPF_W, R_CTL, BPF_REG_1, BK_SCTL_OFF_LO));
	bk_jmp(e, BPF_JMP_A(0), next);
	bk_bind(e, above);
	bk_insn(e, BPF_STX_MEM(BPF_W, R_CTL, BPF_REG_1, BK_SCTL_OFF_HI));
	bk_jmp(e, BPF_JMP_A(0), next);
	bk_bind(e, unpacked);
	bk_insn(e, BPF_ALU64_IMM(BPF_AND, BPF_REG_0, 0x7f));
	bk_jmp(e, BPF_JMP_IMM(BPF_JNE, BPF_REG_0, KEY_FORMAT_CURRENT, 0), bad);
	emit_unpacked_cmp(e, above, below);
}

const char *bk_search_loop_name(enum bk_search_loop loop)
{
	switch (loop) {
	case BK_SEARCH_MAY_GOTO:	return "may_goto";
	case BK_SEARCH_UNROLLED:	return "unrolled";
	case BK_SEARCH_BPF_LOOP:	return "bpf_loop";
	}
	return "?";
}

/* Steps that end any search of [0, hi) with hi <= @max_keys. */
static unsigned search_steps(unsigned max_keys)
{
	unsigned steps = 1;

	while ((1u << steps) <= max_keys)
		steps++;
	return steps;
}

/*
 * After the steps (unrolled, or bpf_loop's callbacks): lo and hi from the
 * map; the search has ended only if lo >= hi.  A step that found a bad
 * key or table entry left lo < hi, so it ends at @bad too.
 */
static void emit_search_ended(struct bk_emit *e, unsigned max_keys, int found, int bad)
{
	bk_insn(e, BPF_LDX_MEM(BPF_W, R_LO, R_CTL, BK_SCTL_OFF_LO));
	bk_insn(e, BPF_LDX_MEM(BPF_W, R_HI, R_CTL, BK_SCTL_OFF_HI));
	bk_comment(e, "the steps always end the search: otherwise the node lied");
	bk_jmp(e, BPF_JMP_IMM(BPF_JGT, R_HI, max_keys, 0), bad);
	bk_jmp(e, BPF_JMP_REG(BPF_JGE, R_LO, R_HI, 0), found);
	bk_jmp(e, BPF_JMP_A(0), bad);
}

/*
 * The bpf_loop search's call: bpf_loop(steps, callback, &{ctl, node}, 0).
 * r6-r9 survive the helper call.  Returns the instruction that
 * emit_search_callback() fixes up.
 */
static int emit_search_loop_call(struct bk_emit *e, unsigned steps)
{
	int ld_func;

	bk_insn(e, BPF_STX_MEM(BPF_DW, BPF_REG_10, R_CTL, FP_CB_CTX + CB_CTL));
	bk_insn(e, BPF_STX_MEM(BPF_DW, BPF_REG_10, R_NODE, FP_CB_CTX + CB_NODE));
	bk_insn(e, BPF_MOV64_IMM(BPF_REG_1, steps));
	ld_func = e->cnt;
	bk_ld_imm64(e, BPF_REG_2, BPF_PSEUDO_FUNC, 0);	/* fixed up by emit_search_callback() */
	bk_insn(e, BPF_MOV64_REG(BPF_REG_3, BPF_REG_10));
	bk_insn(e, BPF_ALU64_IMM(BPF_ADD, BPF_REG_3, FP_CB_CTX));
	bk_insn(e, BPF_MOV64_IMM(BPF_REG_4, 0));
	bk_insn(e, BPF_EMIT_CALL(BPF_FUNC_loop));
	return ld_func;
}

/*
 * The callback, long cb(u64 step, void *ctx): one step of the search with
 * the ctl and node from the context; returns 0 to go on, 1 once the
 * search has ended or met a bad node (the caller tells which from lo and
 * hi).
 */
static void emit_search_callback(struct bk_emit *e, const struct bk_plan *P, unsigned max_keys,
				 unsigned node_words, unsigned tab_off, int ld_func)
{
	int next = bk_label(e), stop = bk_label(e);

	bk_fix_func(e, ld_func);
	bk_subprog(e);
	bk_line(e, "callback: one step of the binary search; ctl and node from the context (r2)");
	bk_insn(e, BPF_LDX_MEM(BPF_DW, R_CTL, BPF_REG_2, CB_CTL));
	bk_insn(e, BPF_LDX_MEM(BPF_DW, R_NODE, BPF_REG_2, CB_NODE));
	emit_search_step(e, P, max_keys, node_words, tab_off, next, stop, stop);
	bk_bind(e, next);
	bk_insn(e, BPF_MOV64_IMM(BPF_REG_0, 0));
	bk_insn(e, BPF_EXIT_INSN());
	bk_bind(e, stop);
	bk_comment(e, "ended, or a bad node: stop the loop");
	bk_insn(e, BPF_MOV64_IMM(BPF_REG_0, 1));
	bk_insn(e, BPF_EXIT_INSN());
}

int bk_gen_search(const struct bkey_format *f, const struct bk_search_opts *o,
		  struct bk_prog *p, struct bkey_format_err *err)
{
	struct bk_emit *e = &p->e;
	unsigned node_words = o->node_size / 8, max_keys = node_words;
	unsigned tab_off = bk_node_tab_off(o->node_size);
	int fail, search, loop, found, bad, limit, finish, no_slot, bad_shape, bad_offsets, bad_root;
	int idle;
	int ld_func = -1;
	unsigned steps, k;
	char fs[200];
	int ret;

	ret = bk_plan_format(f, &p->plan, err);
	if (ret)
		return ret;
	if (o->node_size < 64 || o->node_size % 8 || o->node_size > 8 * BK_IDX_MASK)
		return -EINVAL;
	/* the unrolled and bpf_loop searches need no may_goto */
	p->shape = o->loop == BK_SEARCH_MAY_GOTO ? BK_SHAPE_MAY_GOTO : BK_SHAPE_BPF_LOOP;
	p->walk = BK_WALK_TABLE;
	p->by_shape = o->by_shape;
	if (o->by_shape)
		bk_prog_names_shape(f, p->name, p->func_name);
	else
		bk_prog_names(f, p->name, p->func_name);
	/* "bs..": the node search of the format, "bl..": its lookup */
	p->name[1] = o->lookup ? 'l' : 's';
	p->func_name[1] = p->name[1];
	snprintf(p->file_name, sizeof(p->file_name), "%s.bkgen", p->func_name);
	bk_emit_init(e, o->annotate);
	fail = bk_label(e);
	search = bk_label(e);
	loop = bk_label(e);
	found = bk_label(e);
	bad = bk_label(e);
	limit = bk_label(e);
	finish = bk_label(e);
	no_slot = bk_label(e);
	bad_shape = bk_label(e);
	bad_offsets = bk_label(e);
	bad_root = bk_label(e);
	idle = bk_label(e);

	bk_subprog(e);
	bkey_format_to_str(f, fs, sizeof(fs));
	if (o->by_shape)
		bk_line(e, "%s: first key >= a position in %s, every format of shape key_u64s=%u "
			"bits=%u,%u,%u,%u,%u,%u (offsets from the node)", p->name,
			o->lookup ? "the btree (this node, then its child or the answer)" : "one node",
			f->key_u64s, f->bits_per_field[0], f->bits_per_field[1], f->bits_per_field[2],
			f->bits_per_field[3], f->bits_per_field[4], f->bits_per_field[5]);
	else
		bk_line(e, "%s: first key >= a position in %s, format %s", p->name,
			o->lookup ? "the btree (this node, then its child or the answer)" : "one node", fs);
	if (o->lookup)
		bk_insn(e, BPF_STX_MEM(BPF_DW, BPF_REG_10, BPF_REG_1, FP_CTX));
	bk_comment(e, "the run's slot (its context's cb[0]): its search ctl");
	bk_insn(e, BPF_LDX_MEM(BPF_W, BPF_REG_2, BPF_REG_1, BK_CTX_OFF_SLOT));
	bk_insn(e, BPF_STX_MEM(BPF_W, BPF_REG_10, BPF_REG_2, FP_SLOT));
	bk_map_lookup(e, o->ctl_fd, FP_SLOT);
	bk_jmp(e, BPF_JMP_IMM(BPF_JEQ, BPF_REG_0, 0, 0), no_slot);
	bk_insn(e, BPF_MOV64_REG(R_CTL, BPF_REG_0));
	if (o->lookup)
		emit_lookup_entry(e, idle);
	bk_insn(e, BPF_LDX_MEM(BPF_W, BPF_REG_1, R_CTL, BK_SCTL_OFF_NODE));
	bk_insn(e, BPF_STX_MEM(BPF_W, BPF_REG_10, BPF_REG_1, FP_KEYIDX));
	bk_map_lookup(e, o->nodes_fd, FP_KEYIDX);
	bk_insn(e, BPF_MOV64_IMM(R_LO, 0));
	bk_jmp(e, BPF_JMP_IMM(BPF_JEQ, BPF_REG_0, 0, 0), bad);
	bk_insn(e, BPF_MOV64_REG(R_NODE, BPF_REG_0));
	bk_emit_check_format(e, R_NODE, &p->plan.f, !o->by_shape, bad_shape);
	if (o->lookup) {
		int not_root = bk_label(e);

		bk_comment(e, "the root is at the root's level: a node never descends into itself");
		bk_insn(e, BPF_LDX_MEM(BPF_W, BPF_REG_1, R_CTL, BK_SCTL_OFF_NODE));
		bk_insn(e, BPF_LDX_MEM(BPF_W, BPF_REG_2, R_CTL, BK_SCTL_OFF_ROOT));
		bk_jmp(e, BPF_JMP_REG(BPF_JNE, BPF_REG_1, BPF_REG_2, 0), not_root);
		bk_insn(e, BPF_LDX_MEM(BPF_W, BPF_REG_1, R_NODE, offsetof(struct bk_node_hdr, level)));
		bk_insn(e, BPF_LDX_MEM(BPF_W, BPF_REG_2, R_CTL, BK_SCTL_OFF_ROOT_LEVEL));
		bk_jmp(e, BPF_JMP_REG(BPF_JNE, BPF_REG_1, BPF_REG_2, 0), bad_root);
		bk_bind(e, not_root);
	}
	if (o->by_shape) {
		/* the search takes the snapshot's offset in 32 bits, where the
		 * model takes all 64: a valid format's fits 32 (9.1) */
		bk_comment(e, "the snapshot field's offset fits 32 bits");
		bk_insn(e, BPF_LDX_MEM(BPF_W, BPF_REG_1, R_NODE, BK_NODE_OFF_FORMAT + 4 +
				       (int)offsetof(struct bkey_format, field_offset[BKEY_FIELD_SNAPSHOT])));
		bk_jmp(e, BPF_JMP32_IMM(BPF_JNE, BPF_REG_1, 0, 0), bad_offsets);
	}
	bk_insn(e, BPF_LDX_MEM(BPF_W, R_HI, R_NODE, offsetof(struct bk_node_hdr, nr_keys)));
	bk_insn(e, BPF_ST_MEM(BPF_W, R_CTL, BK_SCTL_OFF_LO, 0));
	bk_insn(e, BPF_STX_MEM(BPF_W, R_CTL, R_HI, BK_SCTL_OFF_HI));
	bk_insn(e, BPF_LDX_MEM(BPF_DW, BPF_REG_1, R_CTL, BK_SCTL_OFF_INODE));
	bk_insn(e, BPF_LDX_MEM(BPF_DW, BPF_REG_2, R_CTL, BK_SCTL_OFF_OFFSET));
	bk_insn(e, BPF_LDX_MEM(BPF_W, BPF_REG_3, R_CTL, BK_SCTL_OFF_SNAPSHOT));
	emit_pack_pos_lossy(e, &p->plan, o->by_shape, fail);
	bk_jmp(e, BPF_JMP_A(0), search);
	bk_bind(e, fail);
	bk_line(e, "FAIL: the position is below every position the format can hold");
	bk_insn(e, BPF_ST_MEM(BPF_W, R_CTL, C_MODE, 2));

	bk_bind(e, search);
	switch (o->loop) {
	case BK_SEARCH_UNROLLED:
		/* no loop: the verifier walks every step; lo < hi <= max_keys
		 * halves each time, so steps + 1 tests end it */
		steps = search_steps(max_keys);
		bk_line(e, "binary search of the key table for the first key >= the search in [lo, hi), "
			"unrolled: %u steps (no loop, for kernels without may_goto)", steps);
		for (k = 0; k < steps; k++) {
			int next = bk_label(e);

			emit_search_step(e, &p->plan, max_keys, node_words, tab_off, next, found, bad);
			bk_bind(e, next);
		}
		emit_search_ended(e, max_keys, found, bad);
		break;
	case BK_SEARCH_BPF_LOOP:
		steps = search_steps(max_keys);
		bk_line(e, "binary search of the key table for the first key >= the search in [lo, hi): "
			"bpf_loop(%u, a step per callback, &{ctl, node}, 0) (for kernels without may_goto)",
			steps);
		ld_func = emit_search_loop_call(e, steps);
		emit_search_ended(e, max_keys, found, bad);
		break;
	case BK_SEARCH_MAY_GOTO:
		bk_bind(e, loop);
		bk_line(e, "binary search of the key table for the first key >= the search in [lo, hi), "
			"lo and hi through the map so the verifier's passes converge");
		bk_jmp(e, BPF_MAY_GOTO_INSN(0), limit);
		emit_search_step(e, &p->plan, max_keys, node_words, tab_off, loop, found, bad);
		break;
	default:
		return -EINVAL;
	}

	bk_bind(e, found);
	bk_line(e, "found: the index (or nr_keys), the lossy result, status");
	bk_insn(e, BPF_STX_MEM(BPF_W, R_CTL, R_LO, BK_SCTL_OFF_IDX));
	if (o->lookup)
		emit_lookup_tail(e, &p->plan, o, bad, finish);	/* always jumps on */
	else
		bk_insn(e, BPF_MOV64_IMM(BPF_REG_0, BK_OK));
	bk_bind(e, finish);
	bk_insn(e, BPF_STX_MEM(BPF_W, R_CTL, BPF_REG_0, BK_SCTL_OFF_STATUS));
	bk_insn(e, BPF_EXIT_INSN());
	bk_bind(e, bad);
	bk_line(e, "a bad node: a key table or format byte out of range");
	bk_insn(e, BPF_MOV64_IMM(BPF_REG_0, BK_ERR_BAD_KEY));
	bk_jmp(e, BPF_JMP_A(0), finish);
	bk_bind(e, bad_shape);
	bk_line(e, "a node of another format: its format id lies");
	bk_insn(e, BPF_MOV64_IMM(BPF_REG_0, BK_ERR_NODE_SHAPE));
	bk_jmp(e, BPF_JMP_A(0), finish);
	/* a root not at the root's level; a format no valid node has */
	emit_status_block(e, bad_root, BK_ERR_NODE_LEVEL, finish);
	emit_status_block(e, bad_offsets, BK_ERR_NODE_TMPL, finish);
	emit_status_block(e, limit, BK_ERR_LOOP_LIMIT, finish);
	if (o->lookup) {
		bk_line(e, "the batch is answered or failed, or its walk goes on in another program: "
			"this run of the caller's repeats leaves it as it is");
		bk_bind(e, idle);
		bk_insn(e, BPF_MOV64_IMM(BPF_REG_0, 0));
		bk_insn(e, BPF_EXIT_INSN());
	}
	bk_line(e, "no such slot: nothing of the run's to write the status to");
	bk_bind(e, no_slot);
	bk_insn(e, BPF_MOV64_IMM(BPF_REG_0, BK_ERR_ARGS));
	bk_insn(e, BPF_EXIT_INSN());
	if (ld_func >= 0)
		emit_search_callback(e, &p->plan, max_keys, node_words, tab_off, ld_func);
	return bk_emit_finish(e);
}
