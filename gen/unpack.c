// SPDX-License-Identifier: GPL-2.0
/*
 * The per-format unpack generator.
 *
 * Register use inside the walk by u64s (both shapes):
 *   r6 in base (map value)    r7 out base (map value)
 *   r8 byte offset of the key r9 byte offset of the output bkey
 *   r5 byte offset where the run ends
 *   r1 key pointer, r4 output pointer, r2 the key's first 4 bytes,
 *   r0, r2, r3 scratch once the header is stored.
 * The walk by table (may_goto shape) keeps the table in r7 and the out
 * map in r9; r8 is the byte offset of key i's table entry (2 * i), r5 the
 * entry where the run ends, and key i goes to out[i]: r4 = r9 + 20 * r8,
 * so no second cursor needs a bounds check of its own.  Over the in map,
 * r7 is the ctl map's value, which holds the table at BK_TAB_OFF after
 * the arguments and results; over a nodes map, the node's table.
 * The walk state comes from the ctl map, so the verifier sees unknown
 * scalars with a known range: a may_goto loop converges after about two
 * passes instead of being walked key by key.
 *
 * ctl, in and out are the run's own slot's elements (gen/abi.h): the
 * prologue looks them up with the slot its context names, and the ctl
 * pointer waits on the stack for the finish.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "gen.h"

/*
 * Registers, one name each, except r7 and r9, which the two walks use
 * for different things (a program has one walk):
 *
 *   r0  T0      scratch
 *   r1  R_KEY   the key being unpacked
 *   r2  R_HDR   the key's first word (u64s, format, type) from its locate
 *               to the header's store; scratch in the field code after
 *   r3  R_NEXT  the next key's place (its words, by table)
 *   r4  R_OUT   where the bkey goes
 *   r5  R_END   the walk's end (bytes)
 *   r6  R_IN    the in slot (or the node's keys)
 *   r7  by u64s: R_OBASE, the out slot;  by table: R_TAB, the key table
 *   r8  R_IOFF  the walk's cursor (bytes)
 *   r9  by u64s: R_OOFF, the output's offset;  by table: R_OUTMAP, the
 *       out slot
 */
#define T0	BPF_REG_0
#define R_KEY	BPF_REG_1
#define R_HDR	BPF_REG_2
#define R_NEXT	BPF_REG_3
#define R_OUT	BPF_REG_4
#define R_END	BPF_REG_5
#define R_IN	BPF_REG_6
#define R_OBASE	BPF_REG_7	/* by u64s */
#define R_TAB	BPF_REG_7	/* by table */
#define R_IOFF	BPF_REG_8
#define R_OOFF	BPF_REG_9	/* by u64s */
#define R_OUTMAP BPF_REG_9	/* by table */

#define IN_LIMIT	(BK_IN_CAP_WORDS * 8 - 8)	/* last byte offset a key may start at */
#define OUT_LIMIT	(BK_OUT_VALUE_SIZE - 40)

/* Whether the program walks a node of a nodes map (a node size given), not the in map. */
static bool over_nodes(const struct bk_gen_opts *o)
{
	return o->node_size != 0;
}

/* where the table starts from r7: after struct bk_ctl, or a node's own table */
static int tab_off(const struct bk_gen_opts *o)
{
	return over_nodes(o) ? 0 : BK_TAB_OFF;
}

const char *bk_walk_name(enum bk_walk w)
{
	return w == BK_WALK_TABLE ? "table" : "u64s";
}

const char *bk_shape_name(enum bk_shape s)
{
	switch (s) {
	case BK_SHAPE_AUTO:	return "auto";
	case BK_SHAPE_MAY_GOTO:	return "may_goto";
	case BK_SHAPE_BPF_LOOP:	return "bpf_loop";
	}
	return "?";
}

/* Labels shared by every copy of the walk step. */
struct walk_labels {
	int	bad_key;		/* r8 = the bad key */
	int	bounds;
	int	full;
	int	fail;			/* r0 = status */
	int	no_slot;		/* the context names no slot: nothing to write to */
	int	shape;			/* the node is not of the program's format */
	int	tmpl;			/* its template is not its format's */
};

#define FP_SLOT		(-8)	/* u32: the run's slot, the key of its elements */
#define FP_NODE		(-4)	/* u32: the node, the key of its element */
#define FP_CTL		(-16)	/* the slot's ctl, for the finish */
/* the bpf_loop shape's callback context: the slot's out, in and ctl */
#define FP_CB_CTX	(-48)
#define CB_OUT		0
#define CB_IN		8
#define CB_CTL		16
#define CB_TAB		24	/* the table walk's: the node's key table */
static bool fits_s32(uint64_t v)
{
	return (int64_t)v == (int32_t)v;
}

static void store64(struct bk_emit *e, const struct bk_gen_opts *o, int reg, unsigned off)
{
	if (o->strict_align && off % 8) {
		/* version_lo sits at bkey+4: two aligned 32-bit stores */
		bk_insn(e, BPF_STX_MEM(BPF_W, R_OUT, reg, off));
		bk_insn(e, BPF_ALU64_IMM(BPF_RSH, reg, 32));
		bk_insn(e, BPF_STX_MEM(BPF_W, R_OUT, reg, off + 4));
	} else {
		bk_insn(e, BPF_STX_MEM(BPF_DW, R_OUT, reg, off));
	}
}

static void emit_const_field(struct bk_emit *e, const struct bk_gen_opts *o,
			     const struct bk_field_plan *fp)
{
	uint64_t v = fp->offset;

	if (fp->slot_size == 4) {
		bk_insn(e, BPF_ST_MEM(BPF_W, R_OUT, fp->slot_off, (int32_t)(uint32_t)v));
	} else if (o->strict_align && fp->slot_off % 8) {
		bk_insn(e, BPF_ST_MEM(BPF_W, R_OUT, fp->slot_off, (int32_t)(uint32_t)v));
		bk_insn(e, BPF_ST_MEM(BPF_W, R_OUT, fp->slot_off + 4, (int32_t)(uint32_t)(v >> 32)));
	} else if (fits_s32(v)) {
		bk_insn(e, BPF_ST_MEM(BPF_DW, R_OUT, fp->slot_off, (int32_t)v));
	} else {
		bk_comment(e, "64-bit constant: does not fit a sign-extended imm32");
		bk_ld_imm64(e, T0, 0, v);
		store64(e, o, T0, fp->slot_off);
	}
}

/*
 * One load that holds the whole field: @size bytes at byte @off of the key
 * (keys are little-endian words, so the field's bits are contiguous
 * bytes even where it straddles two words), then >> @sh, then a mask if
 * bits above the field came along.
 */
struct narrow_load {
	unsigned	size, off, sh;
	bool		mask;
	unsigned	cost;		/* instructions */
};

static unsigned narrow_cost(unsigned size, unsigned sh, unsigned b, bool mask)
{
	if (mask && size == 8 && b >= 32 && b < 64)
		return 3;		/* load, shift pair */
	return 1 + !!sh + mask;
}

static void narrow_consider(struct narrow_load *best, const struct bk_field_plan *fp,
			    bool strict_align, unsigned size, unsigned off)
{
	unsigned kbit = fp->kbit, b = fp->bits, sh = kbit - 8 * off, cost;
	/* bits above the field came along, unless a 32-bit slot drops them */
	bool mask = sh + b < 8 * size && !(fp->slot_size == 4 && b == 32);

	if (8 * off > kbit || sh + b > 8 * size || (strict_align && off % size))
		return;
	cost = narrow_cost(size, sh, b, mask);
	if (cost < best->cost || (cost == best->cost && size < best->size))
		*best = (struct narrow_load){ size, off, sh, mask, cost };
}

/*
 * The cheapest single load for a field: the narrowest chunk that ends
 * where the field ends (nothing to mask) or starts at its low byte.
 * Unaligned chunks only where the verifier allows them.  False if no one
 * load holds it (a field across a word boundary under strict alignment,
 * or one whose bits span nine bytes).
 */
static bool pick_narrow_load(const struct bk_field_plan *fp, bool strict_align,
			     struct narrow_load *best)
{
	static const unsigned sizes[] = { 1, 2, 4, 8 };
	unsigned kbit = fp->kbit, end = kbit + fp->bits, i;

	best->cost = ~0u;
	for (i = 0; i < 4; i++) {
		unsigned s = sizes[i];

		if (end % 8 == 0 && end / 8 >= s)
			narrow_consider(best, fp, strict_align, s, end / 8 - s);
		narrow_consider(best, fp, strict_align, s, kbit / 8);
		narrow_consider(best, fp, strict_align, s, kbit / 8 & ~(s - 1));
	}
	return best->cost != ~0u;
}

static const int load_size_code[9] = { [1] = BPF_B, [2] = BPF_H, [4] = BPF_W, [8] = BPF_DW };

static void emit_narrow(struct bk_emit *e, const struct bk_field_plan *fp,
			const struct narrow_load *n)
{
	unsigned b = fp->bits;
	bool wide = n->size == 8;	/* 64-bit operations needed */

	if (n->size < 8 || n->off % 8)
		bk_comment(e, "bytes %u..%u of the key hold the field", n->off, n->off + n->size - 1);
	bk_insn(e, BPF_LDX_MEM(load_size_code[n->size], T0, R_KEY, n->off));
	if (n->mask && wide && b >= 32 && b < 64) {
		bk_comment(e, "drop the bits above the field");
		bk_insn(e, BPF_ALU64_IMM(BPF_LSH, T0, 64 - n->sh - b));
		bk_insn(e, BPF_ALU64_IMM(BPF_RSH, T0, 64 - b));
		return;
	}
	if (n->sh)
		bk_insn(e, wide ? BPF_ALU64_IMM(BPF_RSH, T0, n->sh) : BPF_ALU32_IMM(BPF_RSH, T0, n->sh));
	if (!n->mask)
		return;
	if (b == 32)
		bk_insn(e, BPF_MOV32_REG(T0, T0));	/* zero-extends */
	else
		bk_insn(e, BPF_ALU32_IMM(BPF_AND, T0, (int32_t)bkey_mask(b)));
}

/* Leaves the field's raw bits in T0 (for 32-bit slots only the low 32 count). */
static void emit_extract(struct bk_emit *e, const struct bk_field_plan *fp, bool strict_align)
{
	unsigned b = fp->bits, sh = fp->sh;
	bool slot32 = fp->slot_size == 4;
	struct narrow_load n;

	if (pick_narrow_load(fp, strict_align, &n)) {
		emit_narrow(e, fp, &n);
		return;
	}

	/* straddles (a field inside one word always has its load): low part
	 * from word w, high part from word w + 1 */
	bk_insn(e, BPF_LDX_MEM(BPF_DW, T0, R_KEY, 8 * fp->word));
	bk_comment(e, "low %u bits from w%u", 64 - sh, fp->word);
	bk_insn(e, BPF_ALU64_IMM(BPF_RSH, T0, sh));
	bk_comment(e, "high %u bits from w%u", sh + b - 64, fp->word + 1);
	bk_insn(e, BPF_LDX_MEM(BPF_DW, R_HDR, R_KEY, 8 * (fp->word + 1)));
	if (slot32 || b < 32) {
		bk_insn(e, BPF_ALU64_IMM(BPF_LSH, R_HDR, 64 - sh));
		bk_insn(e, BPF_ALU64_REG(BPF_OR, T0, R_HDR));
		if (b == 32)
			return;
		if (slot32)
			bk_insn(e, BPF_ALU32_IMM(BPF_AND, T0, (int32_t)bkey_mask(b)));
		else
			bk_insn(e, BPF_ALU64_IMM(BPF_AND, T0, (int32_t)bkey_mask(b)));
		return;
	}
	/* 32..64 bits: clear the bits above the field in the high word itself */
	bk_insn(e, BPF_ALU64_IMM(BPF_LSH, R_HDR, 128 - sh - b));
	if (b < 64)
		bk_insn(e, BPF_ALU64_IMM(BPF_RSH, R_HDR, 64 - b));
	bk_insn(e, BPF_ALU64_REG(BPF_OR, T0, R_HDR));
}

static void emit_field(struct bk_emit *e, const struct bk_gen_opts *o,
		       const struct bk_field_plan *fp)
{
	char line[160];

	bk_field_line(fp, line, sizeof(line));
	bk_line(e, "%s", line);
	if (fp->kind == BK_FIELD_CONST) {
		emit_const_field(e, o, fp);
		return;
	}
	emit_extract(e, fp, o->strict_align);
	if (fp->slot_size == 4) {
		if ((uint32_t)fp->offset)
			bk_insn(e, BPF_ALU32_IMM(BPF_ADD, T0, (int32_t)(uint32_t)fp->offset));
		bk_insn(e, BPF_STX_MEM(BPF_W, R_OUT, T0, fp->slot_off));
		return;
	}
	if (fp->offset && fits_s32(fp->offset)) {
		bk_insn(e, BPF_ALU64_IMM(BPF_ADD, T0, (int32_t)fp->offset));
	} else if (fp->offset) {
		bk_comment(e, "offset needs a 64-bit immediate");
		bk_ld_imm64(e, R_HDR, 0, fp->offset);
		bk_insn(e, BPF_ALU64_REG(BPF_ADD, T0, R_HDR));
	}
	store64(e, o, T0, fp->slot_off);
}

/*
 * Constants that ride on wider stores: the header is computed in 32 bits,
 * so a 64-bit store of it also writes version_lo's low half as 0; if
 * version_lo's high half and version_hi are constants as well, one more
 * store covers bkey+8..15.  Returns which fields that leaves done.
 */
struct merged_stores {
	bool	header64;	/* store the header as 64 bits (bkey+4..7 = 0) */
	bool	words_8_15;	/* one 64-bit store of imm at bkey+8 */
	int32_t	imm_8_15;
	bool	done[BKEY_NR_FIELDS];
};

static void plan_merges(const struct bk_plan *P, struct merged_stores *m)
{
	const struct bk_field_plan *lo = &P->fp[BKEY_FIELD_VERSION_LO];
	const struct bk_field_plan *hi = &P->fp[BKEY_FIELD_VERSION_HI];
	uint64_t w;

	memset(m, 0, sizeof(*m));
	if (lo->kind != BK_FIELD_CONST || (uint32_t)lo->offset)
		return;
	m->header64 = true;
	if (hi->kind != BK_FIELD_CONST)
		return;
	w = lo->offset >> 32 | hi->offset << 32;
	if (!fits_s32(w))
		return;
	m->words_8_15 = true;
	m->imm_8_15 = (int32_t)w;
	m->done[BKEY_FIELD_VERSION_LO] = m->done[BKEY_FIELD_VERSION_HI] = true;
}

/* At entry (r1 = the context): the run's slot, cb[0], to FP_SLOT. */
static void emit_slot_key(struct bk_emit *e)
{
	bk_comment(e, "the run's slot: its context's cb[0]");
	bk_insn(e, BPF_LDX_MEM(BPF_W, BPF_REG_2, BPF_REG_1, BK_CTX_OFF_SLOT));
	bk_insn(e, BPF_STX_MEM(BPF_W, BPF_REG_10, BPF_REG_2, FP_SLOT));
}

/* @reg = the slot's element of array map @fd (r0-r5 clobbered). */
static void emit_slot_value(struct bk_emit *e, const struct walk_labels *L, int reg, int fd,
			    const char *what)
{
	bk_comment(e, "%s: the slot's element", what);
	bk_map_lookup(e, fd, FP_SLOT);
	bk_jmp(e, BPF_JMP_IMM(BPF_JEQ, BPF_REG_0, 0, 0), L->no_slot);
	bk_insn(e, BPF_MOV64_REG(reg, BPF_REG_0));
}

/* r4 = the output bkey */
static void emit_out_ptr(struct bk_emit *e, enum bk_walk walk)
{
	if (walk == BK_WALK_TABLE) {
		/* key i (r8 = 2 * i) goes to out[i], 40 * i = 20 * r8 */
		bk_insn(e, BPF_MOV64_REG(R_OUT, R_IOFF));
		bk_insn(e, BPF_ALU64_IMM(BPF_MUL, R_OUT, 20));
		bk_insn(e, BPF_ALU64_REG(BPF_ADD, R_OUT, R_OUTMAP));
		return;
	}
	bk_insn(e, BPF_MOV64_REG(R_OUT, R_OBASE));
	bk_insn(e, BPF_ALU64_REG(BPF_ADD, R_OUT, R_OOFF));
}

static void emit_advance(struct bk_emit *e, enum bk_walk walk)
{
	if (walk == BK_WALK_TABLE)
		bk_insn(e, BPF_ALU64_IMM(BPF_ADD, R_IOFF, 2));
	else
		bk_insn(e, BPF_ALU64_IMM(BPF_ADD, R_OOFF, 40));
}

/* u64s range of a packed key in @reg (the walk by u64s) */
static void emit_u64s_range(struct bk_emit *e, const struct walk_labels *L, int reg, unsigned ku)
{
	bk_comment(e, "u64s covers the key (and is not 0)");
	bk_jmp(e, BPF_JMP_IMM(BPF_JLT, reg, ku, 0), L->bad_key);
	if (ku + BKEY_VAL_U64s_MAX < BKEY_U64s_MAX) {
		bk_comment(e, "value at most 250 words");
		bk_jmp(e, BPF_JMP_IMM(BPF_JGT, reg, ku + BKEY_VAL_U64s_MAX, 0), L->bad_key);
	}
}

/*
 * Walk by u64s: r1 = the key at in+r8, r2 its first 4 bytes; checks it and
 * moves r8 to the next key; r4 = the output.
 */
static void emit_locate_u64s(struct bk_emit *e, const struct bk_gen_opts *o,
			     const struct walk_labels *L, unsigned ku, int unpacked)
{
	bk_line(e, "key at in+r8: format byte, key_u64s <= u64s <= 250 + key_u64s, key and value inside the run");
	bk_comment(e, "for the verifier: the key lies inside the in map");
	bk_jmp(e, BPF_JMP_IMM(BPF_JGT, R_IOFF, IN_LIMIT, 0), L->bounds);
	bk_jmp(e, BPF_JMP_IMM(BPF_JGT, R_OOFF, OUT_LIMIT, 0), L->full);
	bk_insn(e, BPF_MOV64_REG(R_KEY, R_IN));
	bk_insn(e, BPF_ALU64_REG(BPF_ADD, R_KEY, R_IOFF));
	bk_comment(e, "u64s, format|needs_whiteout, type, pad");
	bk_insn(e, BPF_LDX_MEM(BPF_W, R_HDR, R_KEY, 0));
	bk_comment(e, "format byte != 0: stored unpacked (or bad)");
	bk_jmp(e, BPF_JMP_IMM(BPF_JSET, R_HDR, 0x7f00, 0), unpacked);
	bk_insn(e, BPF_LDX_MEM(BPF_B, R_NEXT, R_KEY, 0));
	emit_u64s_range(e, L, R_NEXT, ku);
	bk_insn(e, BPF_ALU64_IMM(BPF_LSH, R_NEXT, 3));
	bk_insn(e, BPF_ALU64_REG(BPF_ADD, R_NEXT, R_IOFF));
	bk_comment(e, "the key and its value end inside the run");
	bk_jmp(e, BPF_JMP_REG(BPF_JGT, R_NEXT, R_END, 0), L->bad_key);
	bk_insn(e, BPF_MOV64_REG(R_IOFF, R_NEXT));
	emit_out_ptr(e, BK_WALK_U64S);
}

/*
 * The runs (bk_run_words(), bk_run_keys()) store whole words and table
 * entries, so the cursors are aligned; masking proves it to verifiers that check alignment (riscv64:
 * no efficient unaligned access), without BPF_F_ANY_ALIGNMENT.  Where
 * unaligned access is allowed nothing needs proving.
 */
static void emit_align_cursor(struct bk_emit *e, const struct bk_gen_opts *o, int reg, int mask)
{
	if (o->strict_align)
		bk_insn(e, BPF_ALU64_IMM(BPF_AND, reg, mask));
}

/*
 * The table walk's cursor r8, bounded where it is used: it addresses the
 * table and, times 20, the output bkey.  r8 < r5 holds at run time, but
 * what a verifier keeps of that across the may_goto loop's states differs
 * between kernels (Debian's 6.12 builds bound 20 * r8 from r8's var_off,
 * 0..0x1ffff, and reject the store; docs/kernels.md), so the bound is
 * proved here, on every pass.  Over the in map one mask does it
 * (and proves alignment): r8 <= 0x1fffe keeps tab[i + 1] inside ctl and
 * out[i] inside the out map.  Over a nodes map the node's table is
 * smaller: a key index below node_size / 8, which also bounds out[i].
 */
static void emit_bound_table_cursor(struct bk_emit *e, const struct bk_gen_opts *o,
				    const struct walk_labels *L)
{
	if (!over_nodes(o)) {
		bk_comment(e, "bound the cursor: 2 * i, i < 2^16 (out[i] and tab[i + 1] inside their maps)");
		bk_insn(e, BPF_ALU64_IMM(BPF_AND, R_IOFF, BK_IDX_MASK << 1));
		return;
	}
	bk_comment(e, "bound the cursor: 2 * i, i < node_size / 8 (the node's table, out[i])");
	bk_jmp(e, BPF_JMP_IMM(BPF_JGE, R_IOFF, 2 * (o->node_size / 8), 0), L->bounds);
	emit_align_cursor(e, o, R_IOFF, -2);
}

/*
 * Walk by table: r8 indexes tab (bytes); r1 = the key at in + 8*tab[i],
 * r3 = tab[i+1] - tab[i], which must equal its u64s.  No key's address
 * depends on the previous key's load.  One test covers the format byte
 * and the table: the low 15 bits of the header (u64s, format) equal r3
 * only for format 0 (r3 < 256 then, see below) and the table's u64s; a
 * key stored unpacked (or bad) goes to @odd with r0 = those bits and r4
 * = its output.
 */
static void emit_locate_table(struct bk_emit *e, const struct bk_gen_opts *o,
			      const struct walk_labels *L, unsigned ku, int odd)
{
	bk_line(e, "key i at in + 8*tab[i]: format byte 0, u64s == tab[i+1] - tab[i], key_u64s <= u64s <= 250 + key_u64s");
	emit_bound_table_cursor(e, o, L);
	bk_insn(e, BPF_MOV64_REG(R_KEY, R_TAB));
	bk_insn(e, BPF_ALU64_REG(BPF_ADD, R_KEY, R_IOFF));
	bk_insn(e, BPF_LDX_MEM(BPF_H, R_NEXT, R_KEY, tab_off(o) + 2));
	bk_insn(e, BPF_LDX_MEM(BPF_H, R_KEY, R_KEY, tab_off(o)));
	if (over_nodes(o)) {
		bk_comment(e, "the key ends inside the node");
		bk_jmp(e, BPF_JMP_IMM(BPF_JGT, R_NEXT, o->node_size / 8, 0), L->bad_key);
	}
	bk_comment(e, "the key's words, as the table says");
	bk_insn(e, BPF_ALU64_REG(BPF_SUB, R_NEXT, R_KEY));
	if (over_nodes(o)) {
		bk_comment(e, "the key starts inside the node");
		bk_jmp(e, BPF_JMP_IMM(BPF_JGE, R_KEY, o->node_size / 8, 0), L->bad_key);
	} else {
		bk_comment(e, "a 16-bit word offset: inside the in map");
	}
	bk_insn(e, BPF_ALU64_IMM(BPF_LSH, R_KEY, 3));
	bk_insn(e, BPF_ALU64_REG(BPF_ADD, R_KEY, R_IN));
	bk_comment(e, "u64s, format|needs_whiteout, type, pad");
	bk_insn(e, BPF_LDX_MEM(BPF_W, R_HDR, R_KEY, 0));
	emit_out_ptr(e, BK_WALK_TABLE);
	bk_insn(e, BPF_MOV32_REG(T0, R_HDR));
	bk_comment(e, "u64s | format << 8");
	bk_insn(e, BPF_ALU32_IMM(BPF_AND, T0, 0x7fff));
	bk_comment(e, "format 0 and the table agrees (else unpacked or bad)");
	bk_jmp(e, BPF_JMP_REG(BPF_JNE, T0, R_NEXT, 0), odd);
	bk_insn(e, BPF_ALU32_IMM(BPF_SUB, T0, ku));
	bk_comment(e, "u64s - key_u64s in 0..250: wraps if u64s < key_u64s; > 250 also if r3 >= 256");
	bk_jmp(e, BPF_JMP32_IMM(BPF_JGT, T0, BKEY_VAL_U64s_MAX, 0), L->bad_key);
}

static void emit_tmpl_load(struct bk_emit *e, const struct bk_tmpl_at *t, int reg, int size,
			   unsigned off)
{
	bk_insn(e, BPF_LDX_MEM(size, reg, t->reg, t->off + (int)off));
}

/* 9.1: a field as wide as its slot has offset 0, which the shape tells. */
static bool offset_known_zero(const struct bk_field_plan *fp)
{
	return fp->kind != BK_FIELD_CONST && fp->bits == bkey_field_width[fp->field];
}

/*
 * One field of a shape program, as emit_field() does it with the offset
 * from the template's slot of the field (the same place and width as in
 * the bkey): a constant is copied; a variable field gets the offset added
 * unless it is as wide as its slot (offset 0 by 9.1).
 */
static void emit_field_shape(struct bk_emit *e, const struct bk_gen_opts *o,
			     const struct bk_field_plan *fp, const struct bk_tmpl_at *t)
{
	int size = fp->slot_size == 4 ? BPF_W : BPF_DW;
	char line[160];

	if (fp->kind == BK_FIELD_CONST) {
		bk_line(e, "%s: 0 bits, the template's value -> bkey+%u", bkey_field_name[fp->field],
			fp->slot_off);
		emit_tmpl_load(e, t, T0, size, fp->slot_off);
		bk_insn(e, BPF_STX_MEM(size, R_OUT, T0, fp->slot_off));
		return;
	}
	bk_field_line(fp, line, sizeof(line));
	bk_line(e, "%s; %s", line, offset_known_zero(fp) ? "as wide as its slot: offset 0" :
		"the offset from the template");
	emit_extract(e, fp, o->strict_align);
	if (!offset_known_zero(fp)) {
		emit_tmpl_load(e, t, R_HDR, size, fp->slot_off);
		bk_insn(e, size == BPF_W ? BPF_ALU32_REG(BPF_ADD, T0, R_HDR) :
					   BPF_ALU64_REG(BPF_ADD, T0, R_HDR));
	}
	bk_insn(e, BPF_STX_MEM(size, R_OUT, T0, fp->slot_off));
}

/*
 * Goes to @bad unless the node's template (at @node_reg + BK_NODE_OFF_TMPL)
 * is its format's (bk_unpack_template()): the header's constant, and each
 * field's slot equal to the format's offset in the slot's width; a field
 * as wide as its slot, whose template the unpack never reads, must have
 * offset 0 (9.1) since the search subtracts it.  The search packs with the
 * format's offsets and the unpack adds the template's, so a node whose two
 * disagree would answer with a key it never searched for.  Compared in
 * 32-bit halves: the template's slots are only 4-byte aligned.  r1 and r2
 * are clobbered.
 */
void bk_emit_check_template(struct bk_emit *e, const struct bk_plan *P, int node_reg, int bad)
{
	unsigned i, h;

	bk_comment(e, "the node's template is its format's: header constant, each field's offset");
	bk_insn(e, BPF_LDX_MEM(BPF_W, BPF_REG_1, node_reg, BK_NODE_OFF_TMPL));
	bk_jmp(e, BPF_JMP32_IMM(BPF_JNE, BPF_REG_1, (int32_t)P->header_add, 0), bad);
	for (i = 0; i < BKEY_NR_FIELDS; i++) {
		const struct bk_field_plan *fp = &P->fp[i];
		int fmt_off = BK_NODE_OFF_FORMAT + (int)offsetof(struct bkey_format, field_offset[i]);

		for (h = 0; h < fp->slot_size / 4; h++) {
			bk_insn(e, BPF_LDX_MEM(BPF_W, BPF_REG_1, node_reg, fmt_off + 4 * h));
			if (offset_known_zero(fp)) {
				bk_jmp(e, BPF_JMP32_IMM(BPF_JNE, BPF_REG_1, 0, 0), bad);
				continue;
			}
			bk_insn(e, BPF_LDX_MEM(BPF_W, BPF_REG_2, node_reg,
					       BK_NODE_OFF_TMPL + fp->slot_off + 4 * h));
			bk_jmp(e, BPF_JMP32_REG(BPF_JNE, BPF_REG_1, BPF_REG_2, 0), bad);
		}
		/* a 64-bit offset of a 32-bit field: the search uses all of it */
		if (fp->slot_size == 4) {
			bk_insn(e, BPF_LDX_MEM(BPF_W, BPF_REG_1, node_reg, fmt_off + 4));
			bk_jmp(e, BPF_JMP32_IMM(BPF_JNE, BPF_REG_1, 0, 0), bad);
		}
	}
}

/*
 * The shape program's unpack (gen/abi.h): the header, then each field
 * with its offset from the template.  The template's first 4 bytes hold
 * the header's constant (u64s += 5 - key_u64s, format 1), so that with a
 * constant version_lo one 64-bit add and store make bkey+0..7.  A
 * variable version_lo (bkey+4..11) is stored last, over its neighbours.
 */
static void emit_unpack_shape(struct bk_emit *e, const struct bk_plan *P, bool strict_align,
			      const struct bk_tmpl_at *t)
{
	struct bk_gen_opts o = { .strict_align = strict_align };
	const struct bk_field_plan *vlo = &P->fp[BKEY_FIELD_VERSION_LO];
	const struct bk_field_plan *vhi = &P->fp[BKEY_FIELD_VERSION_HI];
	bool vlo_const = vlo->kind == BK_FIELD_CONST;
	unsigned i;

	bk_line(e, "header: u64s += %d (5 - key_u64s), format 0 -> 1, needs_whiteout and type kept, "
		"pad = 0%s", (int)(BKEY_U64s - P->key_u64s),
		vlo_const ? "; the template's word 0: that constant, version_lo's low half" : "");
	bk_insn(e, BPF_ALU32_IMM(BPF_AND, R_HDR, 0xffffff));
	if (vlo_const) {
		emit_tmpl_load(e, t, T0, BPF_DW, 0);
		bk_insn(e, BPF_ALU64_REG(BPF_ADD, T0, R_HDR));
		bk_insn(e, BPF_STX_MEM(BPF_DW, R_OUT, T0, 0));
		if (vhi->kind == BK_FIELD_CONST) {
			bk_line(e, "version_lo's high half, version_hi: 0 bits, the template's word 1");
			emit_tmpl_load(e, t, T0, BPF_DW, 8);
			bk_insn(e, BPF_STX_MEM(BPF_DW, R_OUT, T0, 8));
		} else {
			bk_line(e, "version_lo's high half: the template's");
			emit_tmpl_load(e, t, T0, BPF_W, 8);
			bk_insn(e, BPF_STX_MEM(BPF_W, R_OUT, T0, 8));
		}
	} else {
		bk_insn(e, BPF_ALU32_IMM(BPF_ADD, R_HDR, P->header_add));
		bk_insn(e, BPF_STX_MEM(BPF_W, R_OUT, R_HDR, 0));
	}
	for (i = 0; i < BKEY_NR_FIELDS; i++) {
		const struct bk_field_plan *fp = &P->fp[i];

		if (i == BKEY_FIELD_VERSION_LO ||
		    (i == BKEY_FIELD_VERSION_HI && vlo_const && fp->kind == BK_FIELD_CONST))
			continue;
		emit_field_shape(e, &o, fp, t);
	}
	if (vlo_const)
		return;
	bk_line(e, "version_lo; %s, stored over bkey+4..11", offset_known_zero(vlo) ?
		"as wide as its slot: offset 0" : "the offset from the template");
	emit_extract(e, vlo, strict_align);
	if (!offset_known_zero(vlo)) {
		if (strict_align) {
			emit_tmpl_load(e, t, R_HDR, BPF_W, vlo->slot_off + 4);
			bk_insn(e, BPF_ALU64_IMM(BPF_LSH, R_HDR, 32));
			emit_tmpl_load(e, t, BPF_REG_3, BPF_W, vlo->slot_off);
			bk_insn(e, BPF_ALU64_REG(BPF_OR, R_HDR, BPF_REG_3));
		} else {
			emit_tmpl_load(e, t, R_HDR, BPF_DW, vlo->slot_off);
		}
		bk_insn(e, BPF_ALU64_REG(BPF_ADD, T0, R_HDR));
	}
	store64(e, &o, T0, vlo->slot_off);
}

/*
 * Unpacks the packed key at r1 into the bkey at r4, r2 holding the key's
 * first 4 bytes: the header transform, then every field.  Clobbers r0
 * and r2 (and r3 with a template).  Shared by the unpack walks and the
 * lookups.  With @tmpl, a shape program's: the offsets from the template
 * there.
 */
void bk_emit_unpack_packed(struct bk_emit *e, const struct bk_plan *P, bool strict_align,
			   const struct bk_tmpl_at *tmpl)
{
	struct bk_gen_opts o = { .strict_align = strict_align };
	struct merged_stores m;
	unsigned i;

	if (tmpl) {
		emit_unpack_shape(e, P, strict_align, tmpl);
		return;
	}
	plan_merges(P, &m);
	bk_line(e, "header: u64s += %d (5 - key_u64s), format 0 -> 1, needs_whiteout and type kept, pad = 0%s",
		(int)(BKEY_U64s - P->key_u64s), m.header64 ? "; as 64 bits, also version_lo's low half = 0" : "");
	bk_insn(e, BPF_ALU32_IMM(BPF_AND, R_HDR, 0xffffff));
	bk_insn(e, BPF_ALU32_IMM(BPF_ADD, R_HDR, P->header_add));
	bk_insn(e, BPF_STX_MEM(m.header64 ? BPF_DW : BPF_W, R_OUT, R_HDR, 0));
	if (m.words_8_15) {
		bk_line(e, "version_lo, version_hi: 0 bits, constants %#" PRIx64 ", %#" PRIx64
			" -> bkey+4..15 (with the header)", P->fp[BKEY_FIELD_VERSION_LO].offset,
			P->fp[BKEY_FIELD_VERSION_HI].offset);
		bk_insn(e, BPF_ST_MEM(BPF_DW, R_OUT, 8, m.imm_8_15));
	}
	for (i = 0; i < BKEY_NR_FIELDS; i++)
		if (!m.done[i])
			emit_field(e, &o, &P->fp[i]);
}

/*
 * One packed key, the hot path: check it, unpack it, advance r8/r9, and
 * fall through.  A format byte != 0 goes to @unpacked (emit_walk_cold());
 * a bad key goes to L->bad_key with r8 still at it (see abi.h).
 */
static void emit_walk_hot(struct bk_emit *e, const struct bk_prog *p,
			  const struct bk_gen_opts *o, const struct walk_labels *L,
			  int unpacked, int advance)
{
	const struct bk_plan *P = &p->plan;
	unsigned ku = P->key_u64s;

	/* a shape program's template: in the node header before the words,
	 * or in ctl (r7) */
	struct bk_tmpl_at tmpl = {
		.reg = over_nodes(o) ? R_IN : R_TAB,
		.off = over_nodes(o) ? BK_NODE_OFF_TMPL - BK_NODE_WORDS_OFF : (int)BK_CTL_OFF_TMPL,
	};

	if (p->walk == BK_WALK_TABLE)
		emit_locate_table(e, o, L, ku, unpacked);
	else
		emit_locate_u64s(e, o, L, ku, unpacked);
	bk_emit_unpack_packed(e, P, o->strict_align, o->by_shape ? &tmpl : NULL);
	if (advance >= 0)
		bk_bind(e, advance);
	emit_advance(e, p->walk);
}

/* Copies the 40-byte key at r1 unchanged into the bkey at r4. */
static void emit_copy_unpacked(struct bk_emit *e)
{
	unsigned i;

	for (i = 0; i < BKEY_U64s; i++) {
		bk_insn(e, BPF_LDX_MEM(BPF_DW, T0, R_KEY, 8 * i));
		bk_insn(e, BPF_STX_MEM(BPF_DW, R_OUT, T0, 8 * i));
	}
}

/*
 * The cold path of a key whose format byte is not 0; then goes to @cont
 * (the walk by table: to the advance of r8, with r0 = the header's low 15
 * bits, r3 = the table's u64s and r4 = the output, from
 * emit_locate_table()).
 */
static void emit_walk_cold(struct bk_emit *e, const struct bk_gen_opts *o, enum bk_walk walk,
			   const struct walk_labels *L, int unpacked, int cont)
{
	bk_bind(e, unpacked);
	if (walk == BK_WALK_TABLE) {
		bk_line(e, "stored unpacked (format byte 1), u64s == tab[i+1] - tab[i], 5 <= u64s; copy the 40-byte key unchanged");
		bk_comment(e, "format 1: the low 15 bits become u64s");
		bk_insn(e, BPF_ALU32_IMM(BPF_SUB, T0, KEY_FORMAT_CURRENT << 8));
		bk_jmp(e, BPF_JMP_REG(BPF_JNE, T0, R_NEXT, 0), L->bad_key);
		bk_comment(e, "u64s in 5..255 (so value <= 250), which also pins the format to 1");
		bk_insn(e, BPF_ALU32_IMM(BPF_SUB, R_NEXT, BKEY_U64s));
		bk_jmp(e, BPF_JMP32_IMM(BPF_JGT, R_NEXT, BKEY_U64s_MAX - BKEY_U64s, 0), L->bad_key);
		emit_copy_unpacked(e);
		bk_jmp(e, BPF_JMP_A(0), cont);
		return;
	}
	bk_line(e, "stored unpacked (format byte 1): 5 <= u64s (so value <= 250); copy the 40-byte key unchanged");
	bk_insn(e, BPF_ALU64_IMM(BPF_AND, R_HDR, 0x7f00));
	bk_jmp(e, BPF_JMP_IMM(BPF_JNE, R_HDR, KEY_FORMAT_CURRENT << 8, 0), L->bad_key);
	bk_insn(e, BPF_LDX_MEM(BPF_B, R_NEXT, R_KEY, 0));
	bk_jmp(e, BPF_JMP_IMM(BPF_JLT, R_NEXT, BKEY_U64s, 0), L->bad_key);
	bk_insn(e, BPF_ALU64_IMM(BPF_LSH, R_NEXT, 3));
	bk_insn(e, BPF_ALU64_REG(BPF_ADD, R_NEXT, R_IOFF));
	bk_jmp(e, BPF_JMP_REG(BPF_JGT, R_NEXT, R_END, 0), L->bad_key);
	bk_insn(e, BPF_MOV64_REG(R_IOFF, R_NEXT));
	emit_out_ptr(e, walk);
	emit_copy_unpacked(e);
	emit_advance(e, walk);
	bk_jmp(e, BPF_JMP_A(0), cont);
}

/* @label: the context names no slot, so there is no ctl to write the status to. */
void bk_emit_check_format(struct bk_emit *e, int node_reg, const struct bkey_format *f,
			  bool exact, int bad)
{
	uint64_t w[sizeof(*f) / 8];
	unsigned i, n = exact ? sizeof(*f) / 8 : 1;

	memcpy(w, f, sizeof(w));
	bk_comment(e, "the node's format is %s: key_u64s, the widths%s", exact ? "this one" :
		   "of this shape", exact ? ", the offsets" : "");
	for (i = 0; i < n; i++) {
		bk_insn(e, BPF_LDX_MEM(BPF_DW, BPF_REG_1, node_reg, BK_NODE_OFF_FORMAT + 8 * i));
		bk_ld_imm64(e, BPF_REG_2, 0, w[i]);
		bk_jmp(e, BPF_JMP_REG(BPF_JNE, BPF_REG_1, BPF_REG_2, 0), bad);
	}
}

static void emit_no_slot(struct bk_emit *e, int label)
{
	bk_line(e, "no such slot: nothing of the run's to write the status to");
	bk_bind(e, label);
	bk_insn(e, BPF_MOV64_IMM(T0, BK_ERR_ARGS));
	bk_insn(e, BPF_EXIT_INSN());
}

/* Error blocks: set r0 to the status and go to L->fail (only those jumped to). */
static void emit_error_blocks(struct bk_emit *e, const struct walk_labels *L)
{
	const struct { int label; int status; } blk[] = {
		{ L->bad_key, BK_ERR_BAD_KEY }, { L->bounds, BK_ERR_ARGS },
		{ L->full, BK_ERR_OUT_FULL }, { L->shape, BK_ERR_NODE_SHAPE },
		{ L->tmpl, BK_ERR_NODE_TMPL },
	};
	unsigned i;

	bk_line(e, "errors: r8 points at the bad key; the caller names the reason");
	for (i = 0; i < sizeof(blk) / sizeof(blk[0]); i++) {
		if (!bk_label_used(e, blk[i].label))
			continue;
		bk_bind(e, blk[i].label);
		bk_insn(e, BPF_MOV64_IMM(T0, blk[i].status));
		bk_jmp(e, BPF_JMP_A(0), L->fail);
	}
	if (bk_label_used(e, L->no_slot))
		emit_no_slot(e, L->no_slot);
}

static void walk_labels_init(struct bk_emit *e, struct walk_labels *L)
{
	L->bad_key = bk_label(e);
	L->bounds = bk_label(e);
	L->full = bk_label(e);
	L->fail = bk_label(e);
	L->no_slot = bk_label(e);
	L->shape = bk_label(e);
	L->tmpl = bk_label(e);
}


/*
 * The walk by u64s: reads the walk state (bytes, set and checked by
 * bk_run_words()) into r8, r5, r9.  Masking the end lets the verifier
 * carry r8 < r5 <= cap through the loop; r8 and r9 are bounded where they are used.
 * (The walk by table has emit_prologue_table().)
 */
static void emit_prologue(struct bk_emit *e, const struct bk_gen_opts *o)
{
	bk_insn(e, BPF_LDX_MEM(BPF_W, R_IOFF, BPF_REG_1, BK_CTL_OFF_ARG_IN));
	bk_insn(e, BPF_LDX_MEM(BPF_W, R_END, BPF_REG_1, BK_CTL_OFF_ARG_END));
	bk_insn(e, BPF_LDX_MEM(BPF_W, R_OOFF, BPF_REG_1, BK_CTL_OFF_ARG_OUT));
	bk_insn(e, BPF_ALU64_IMM(BPF_AND, R_END, BK_IDX_MASK << 3));
	emit_align_cursor(e, o, R_IOFF, -8);
	emit_align_cursor(e, o, R_OOFF, -8);
}

/*
 * The table walk's r8 and r5 (bytes into the table, set and checked by
 * bk_run_keys()); there is no output cursor, key i goes to out[i].  A nodes
 * map program also refuses a run that ends past the node's table.  The
 * loop bounds r8 itself where it uses it (emit_bound_table_cursor()):
 * nothing here is relied on across the loop's states.
 */
static void emit_prologue_table(struct bk_emit *e, const struct bk_gen_opts *o,
				const struct walk_labels *L, int ctl)
{
	bk_insn(e, BPF_LDX_MEM(BPF_W, R_IOFF, ctl, BK_CTL_OFF_ARG_IN));
	bk_insn(e, BPF_LDX_MEM(BPF_W, R_END, ctl, BK_CTL_OFF_ARG_END));
	bk_insn(e, BPF_ALU64_IMM(BPF_AND, R_END, BK_IDX_MASK << 1));
	if (over_nodes(o)) {
		bk_comment(e, "the run ends inside the node's table");
		bk_jmp(e, BPF_JMP_IMM(BPF_JGT, R_END, 2 * (o->node_size / 8), 0), L->bounds);
	}
}

/*
 * r0 = status, r8/r9 = byte offsets: store them in ctl (the runs turn
 * the offsets into in_pos and out_pos) and return r0.  The walk by table has
 * only r8: its output index is its key index; over the in map, r7 is ctl.
 */
static void emit_finish(struct bk_emit *e, const struct bk_gen_opts *o)
{
	int ctl = BPF_REG_1;

	bk_line(e, "finish: status and where the walk stopped (bytes) into ctl");
	if (o->walk == BK_WALK_TABLE && !over_nodes(o))
		ctl = R_TAB;
	else
		bk_insn(e, BPF_LDX_MEM(BPF_DW, ctl, BPF_REG_10, FP_CTL));
	bk_insn(e, BPF_STX_MEM(BPF_W, ctl, T0, BK_CTL_OFF_STATUS));
	bk_insn(e, BPF_STX_MEM(BPF_W, ctl, R_IOFF, BK_CTL_OFF_CUR_IN));
	if (o->walk != BK_WALK_TABLE)
		bk_insn(e, BPF_STX_MEM(BPF_W, ctl, R_OOFF, BK_CTL_OFF_CUR_OUT));
	bk_insn(e, BPF_EXIT_INSN());
}

static void emit_title(struct bk_emit *e, const struct bk_prog *p)
{
	char fmt[200];

	bkey_format_to_str(&p->plan.f, fmt, sizeof(fmt));
	if (p->by_shape) {
		const uint8_t *b = p->plan.f.bits_per_field;

		bk_line(e, "%s: unpack a run of keys, every format of shape key_u64s=%u bits=%u,%u,%u,%u,%u,%u "
			"(offsets from the template; %s shape, walk by %s)", p->name, p->plan.key_u64s,
			b[0], b[1], b[2], b[3], b[4], b[5], bk_shape_name(p->shape), bk_walk_name(p->walk));
		return;
	}
	bk_line(e, "%s: unpack a run of keys, format %s (%s shape, walk by %s)", p->name, fmt,
		bk_shape_name(p->shape), bk_walk_name(p->walk));
}

/*
 * The table walk over node ctl->node of a nodes map (a scan): the slot's
 * out (r9) and ctl (at FP_CTL), the node's keys (r6) and table (r7), and
 * r8 = 0.  No such node goes to L->bounds.
 */
static void emit_node_prologue(struct bk_emit *e, const struct bk_prog *p,
			       const struct bk_gen_opts *o, const struct walk_labels *L)
{
	bk_line(e, "node ctl->node of the nodes map: its keys at +%u, its key table at +%u",
		BK_NODE_WORDS_OFF, bk_node_tab_off(o->node_size));
	emit_slot_key(e);
	emit_slot_value(e, L, R_OUTMAP, o->out_fd, "out");
	emit_slot_value(e, L, BPF_REG_1, o->ctl_fd, "ctl");
	bk_insn(e, BPF_STX_MEM(BPF_DW, BPF_REG_10, BPF_REG_1, FP_CTL));
	bk_insn(e, BPF_LDX_MEM(BPF_W, BPF_REG_2, BPF_REG_1, BK_CTL_OFF_NODE));
	bk_insn(e, BPF_STX_MEM(BPF_W, BPF_REG_10, BPF_REG_2, FP_NODE));
	bk_map_lookup(e, o->nodes_fd, FP_NODE);
	bk_insn(e, BPF_MOV64_IMM(R_IOFF, 0));
	bk_comment(e, "no such node: r0 = 0, then the status");
	bk_jmp(e, BPF_JMP_IMM(BPF_JEQ, BPF_REG_0, 0, 0), L->bounds);
	bk_insn(e, BPF_MOV64_REG(R_IN, BPF_REG_0));
	bk_emit_check_format(e, R_IN, &p->plan.f, !p->by_shape, L->shape);
	if (p->by_shape)
		bk_emit_check_template(e, &p->plan, R_IN, L->tmpl);
	bk_insn(e, BPF_ALU64_IMM(BPF_ADD, R_IN, BK_NODE_WORDS_OFF));
	bk_insn(e, BPF_MOV64_REG(R_TAB, R_IN));
	bk_insn(e, BPF_ALU64_IMM(BPF_ADD, R_TAB, bk_node_tab_off(o->node_size) - BK_NODE_WORDS_OFF));
}

static void gen_may_goto(struct bk_prog *p, const struct bk_gen_opts *o)
{
	struct bk_emit *e = &p->e;
	struct walk_labels L;
	int loop = bk_label(e), bottom = bk_label(e), done = bk_label(e), limit = bk_label(e);
	unsigned chunk = o->chunk ? o->chunk : 1, i;
	int unpacked[BK_CHUNK_MAX], cont[BK_CHUNK_MAX], adv[BK_CHUNK_MAX];

	walk_labels_init(e, &L);
	bk_subprog(e);
	emit_title(e, p);
	if (over_nodes(o)) {
		emit_node_prologue(e, p, o, &L);
		bk_insn(e, BPF_LDX_MEM(BPF_DW, BPF_REG_1, BPF_REG_10, FP_CTL));
		emit_prologue_table(e, o, &L, BPF_REG_1);
	} else if (p->walk == BK_WALK_TABLE) {
		emit_slot_key(e);
		emit_slot_value(e, &L, R_IN, o->in_fd, "in");
		emit_slot_value(e, &L, R_OUTMAP, o->out_fd, "out");
		emit_slot_value(e, &L, R_TAB, o->ctl_fd, "ctl: the arguments, then the table");
		emit_prologue_table(e, o, &L, R_TAB);
	} else {
		emit_slot_key(e);
		emit_slot_value(e, &L, R_IN, o->in_fd, "in");
		emit_slot_value(e, &L, R_OBASE, o->out_fd, "out");
		emit_slot_value(e, &L, BPF_REG_1, o->ctl_fd, "ctl");
		bk_insn(e, BPF_STX_MEM(BPF_DW, BPF_REG_10, BPF_REG_1, FP_CTL));
		emit_prologue(e, o);
	}
	bk_comment(e, "enter at the loop test: an empty run does nothing");
	bk_jmp(e, BPF_JMP_A(0), bottom);

	bk_bind(e, loop);
	bk_line(e, "loop: %u key%s per pass (walk by %s), the exit test at the bottom; may_goto bounds it for the verifier",
		chunk, chunk > 1 ? "s" : "", bk_walk_name(p->walk));
	bk_jmp(e, BPF_MAY_GOTO_INSN(0), limit);
	for (i = 0; i < chunk; i++) {
		unpacked[i] = bk_label(e);
		cont[i] = i + 1 < chunk ? bk_label(e) : bottom;
		/* the table walk's cold path rejoins at the advance of r8 */
		adv[i] = p->walk == BK_WALK_TABLE ? bk_label(e) : -1;
		emit_walk_hot(e, p, o, &L, unpacked[i], adv[i]);
		if (i + 1 < chunk) {
			bk_bind(e, cont[i]);
			bk_jmp(e, BPF_JMP_REG(BPF_JGE, R_IOFF, R_END, 0), done);
		}
	}
	bk_bind(e, bottom);
	bk_jmp(e, BPF_JMP_REG(BPF_JLT, R_IOFF, R_END, 0), loop);
	bk_bind(e, done);
	bk_insn(e, BPF_MOV64_IMM(T0, BK_OK));
	bk_bind(e, L.fail);
	emit_finish(e, o);

	/* out of the hot path */
	for (i = 0; i < chunk; i++)
		emit_walk_cold(e, o, p->walk, &L, unpacked[i],
			       p->walk == BK_WALK_TABLE ? adv[i] : cont[i]);
	emit_error_blocks(e, &L);
	bk_bind(e, limit);
	bk_insn(e, BPF_MOV64_IMM(T0, BK_ERR_LOOP_LIMIT));
	bk_jmp(e, BPF_JMP_A(0), L.fail);
}

/*
 * The bpf_loop shapes' call: nr_loops = (r5 - r8) / @per_call + 1 (bytes
 * of cursor a call covers at most), the callback with its context at
 * FP_CB_CTX, then the status the callbacks left in ctl is the run's.
 * Returns the instruction emit_callback_start() fixes up.
 */
static int emit_loop_call(struct bk_emit *e, unsigned per_call)
{
	int ld_func;

	bk_insn(e, BPF_MOV64_REG(BPF_REG_1, R_END));
	bk_insn(e, BPF_ALU64_REG(BPF_SUB, BPF_REG_1, R_IOFF));
	bk_insn(e, BPF_ALU64_IMM(BPF_DIV, BPF_REG_1, per_call));
	bk_insn(e, BPF_ALU64_IMM(BPF_ADD, BPF_REG_1, 1));
	ld_func = e->cnt;
	bk_ld_imm64(e, BPF_REG_2, BPF_PSEUDO_FUNC, 0);	/* fixed up by emit_callback_start() */
	bk_insn(e, BPF_MOV64_REG(BPF_REG_3, BPF_REG_10));
	bk_insn(e, BPF_ALU64_IMM(BPF_ADD, BPF_REG_3, FP_CB_CTX));
	bk_insn(e, BPF_MOV64_IMM(BPF_REG_4, 0));
	bk_insn(e, BPF_EMIT_CALL(BPF_FUNC_loop));
	bk_line(e, "the callbacks left status and the walk state in ctl");
	bk_insn(e, BPF_LDX_MEM(BPF_DW, BPF_REG_1, BPF_REG_10, FP_CB_CTX + CB_CTL));
	bk_insn(e, BPF_LDX_MEM(BPF_W, T0, BPF_REG_1, BK_CTL_OFF_STATUS));
	bk_insn(e, BPF_EXIT_INSN());
	return ld_func;
}

/* The callback, long cb(u64 index, void *ctx), starts here. */
static void emit_callback_start(struct bk_emit *e, int ld_func)
{
	bk_fix_func(e, ld_func);
	bk_subprog(e);
}

/*
 * The callback's walk state into ctl (the table walk has one cursor),
 * with r0 as the run's status if @status, then returns @ret (0: go on,
 * 1: stop the loop).
 */
static void emit_callback_save(struct bk_emit *e, enum bk_walk walk, bool status, int ret)
{
	bk_insn(e, BPF_LDX_MEM(BPF_DW, BPF_REG_1, BPF_REG_10, FP_CTL));
	if (status)
		bk_insn(e, BPF_STX_MEM(BPF_W, BPF_REG_1, T0, BK_CTL_OFF_STATUS));
	bk_insn(e, BPF_STX_MEM(BPF_W, BPF_REG_1, R_IOFF, BK_CTL_OFF_CUR_IN));
	if (walk != BK_WALK_TABLE)
		bk_insn(e, BPF_STX_MEM(BPF_W, BPF_REG_1, R_OOFF, BK_CTL_OFF_CUR_OUT));
	bk_insn(e, BPF_MOV64_IMM(BPF_REG_0, ret));
	bk_insn(e, BPF_EXIT_INSN());
}

/*
 * A callback's end, after its keys' hot paths: save the walk state and go
 * on; then the keys' cold paths (@cont[i] after key i's), the error
 * blocks, and the finish (@done: the run is over) that saves the status
 * and stops the loop.
 */
static void emit_callback_tail(struct bk_emit *e, const struct bk_gen_opts *o, enum bk_walk walk,
			       const struct walk_labels *L, const int *unpacked, const int *cont,
			       unsigned chunk, int done)
{
	unsigned i;

	bk_line(e, "callback: save the walk state, continue the loop");
	emit_callback_save(e, walk, false, 0);
	for (i = 0; i < chunk; i++)
		emit_walk_cold(e, o, walk, L, unpacked[i], cont[i]);
	emit_error_blocks(e, L);
	bk_bind(e, done);
	bk_insn(e, BPF_MOV64_IMM(T0, BK_OK));
	bk_bind(e, L->fail);
	bk_line(e, "callback: run finished (r0 = status): save it and stop the loop");
	emit_callback_save(e, walk, true, 1);
}

/*
 * bpf_loop shape: the main function stores the walk state in ctl and calls
 * bpf_loop(); each callback unpacks up to @chunk keys.  Keeping the state
 * in the map (not the stack) lets the verifier check the callback once.
 */
static void gen_bpf_loop(struct bk_prog *p, const struct bk_gen_opts *o)
{
	struct bk_emit *e = &p->e;
	struct walk_labels L, main_no_slot;
	int cb_done = bk_label(e), ld_func, i, unpacked[BK_CHUNK_MAX], cont[BK_CHUNK_MAX];
	unsigned chunk = o->chunk ? o->chunk : 1;

	walk_labels_init(e, &L);
	/* the main function's own: a jump may not leave its function */
	main_no_slot = (struct walk_labels){ .no_slot = bk_label(e) };
	bk_subprog(e);
	emit_title(e, p);
	emit_slot_key(e);
	emit_slot_value(e, &main_no_slot, R_IN, o->in_fd, "in");
	emit_slot_value(e, &main_no_slot, R_OBASE, o->out_fd, "out");
	emit_slot_value(e, &main_no_slot, BPF_REG_1, o->ctl_fd, "ctl");
	bk_comment(e, "the callbacks' context: the slot's out, in, ctl");
	bk_insn(e, BPF_STX_MEM(BPF_DW, BPF_REG_10, R_OBASE, FP_CB_CTX + CB_OUT));
	bk_insn(e, BPF_STX_MEM(BPF_DW, BPF_REG_10, R_IN, FP_CB_CTX + CB_IN));
	bk_insn(e, BPF_STX_MEM(BPF_DW, BPF_REG_10, BPF_REG_1, FP_CB_CTX + CB_CTL));
	emit_prologue(e, o);
	bk_line(e, "the walk state into ctl (bytes); bpf_loop(nr, callback, &the slot's pointers, 0)");
	bk_insn(e, BPF_STX_MEM(BPF_W, BPF_REG_1, R_IOFF, BK_CTL_OFF_CUR_IN));
	bk_insn(e, BPF_STX_MEM(BPF_W, BPF_REG_1, R_OOFF, BK_CTL_OFF_CUR_OUT));
	bk_comment(e, "stays unless a callback finishes the run");
	bk_insn(e, BPF_ST_MEM(BPF_W, BPF_REG_1, BK_CTL_OFF_STATUS, BK_ERR_LOOP_LIMIT));
	bk_comment(e, "nr_loops = words / (8 * chunk) + 1: a key takes a word at least");
	ld_func = emit_loop_call(e, 8 * chunk);
	emit_no_slot(e, main_no_slot.no_slot);

	emit_callback_start(e, ld_func);
	bk_line(e, "callback: up to %u keys per call; the slot's maps from the context (r2), walk state from ctl",
		chunk);
	bk_insn(e, BPF_LDX_MEM(BPF_DW, R_IN, BPF_REG_2, CB_IN));
	bk_insn(e, BPF_LDX_MEM(BPF_DW, R_OBASE, BPF_REG_2, CB_OUT));
	bk_insn(e, BPF_LDX_MEM(BPF_DW, BPF_REG_1, BPF_REG_2, CB_CTL));
	bk_insn(e, BPF_STX_MEM(BPF_DW, BPF_REG_10, BPF_REG_1, FP_CTL));
	bk_insn(e, BPF_LDX_MEM(BPF_W, R_IOFF, BPF_REG_1, BK_CTL_OFF_CUR_IN));
	bk_insn(e, BPF_LDX_MEM(BPF_W, R_OOFF, BPF_REG_1, BK_CTL_OFF_CUR_OUT));
	bk_insn(e, BPF_LDX_MEM(BPF_W, R_END, BPF_REG_1, BK_CTL_OFF_ARG_END));
	emit_align_cursor(e, o, R_IOFF, -8);	/* the walk by u64s only */
	emit_align_cursor(e, o, R_OOFF, -8);
	for (i = 0; i < (int)chunk; i++) {
		unpacked[i] = bk_label(e);
		cont[i] = bk_label(e);
		bk_jmp(e, BPF_JMP_REG(BPF_JGE, R_IOFF, R_END, 0), cb_done);
		emit_walk_hot(e, p, o, &L, unpacked[i], -1);
		bk_bind(e, cont[i]);
	}
	emit_callback_tail(e, o, BK_WALK_U64S, &L, unpacked, cont, chunk, cb_done);
}

/*
 * bpf_loop shape of the table walk, over a node (a scan) or over the in
 * map with ctl's table, on kernels without may_goto: the main function
 * finds the slot's maps (and the node), checks the run's bounds, and
 * hands the pointers to the callback through its context; each callback
 * unpacks up to @chunk keys, key i to out[i], with the walk state (the
 * table cursor) in ctl between calls.
 */
static void gen_bpf_loop_table(struct bk_prog *p, const struct bk_gen_opts *o)
{
	struct bk_emit *e = &p->e;
	struct walk_labels L, M;
	int cb_done = bk_label(e), ld_func, i, unpacked[BK_CHUNK_MAX], adv[BK_CHUNK_MAX];
	unsigned chunk = o->chunk ? o->chunk : 1;

	walk_labels_init(e, &L);
	/* the main function's own labels: a jump may not leave its function */
	walk_labels_init(e, &M);
	bk_subprog(e);
	emit_title(e, p);
	if (over_nodes(o)) {
		emit_node_prologue(e, p, o, &M);
	} else {
		emit_slot_key(e);
		emit_slot_value(e, &M, R_IN, o->in_fd, "in");
		emit_slot_value(e, &M, R_OUTMAP, o->out_fd, "out");
		emit_slot_value(e, &M, R_TAB, o->ctl_fd, "ctl: the arguments, then the table");
		bk_insn(e, BPF_STX_MEM(BPF_DW, BPF_REG_10, R_TAB, FP_CTL));
	}
	bk_comment(e, "the callbacks' context: the slot's out, the keys, ctl, the table (r7 + %d)",
		   tab_off(o));
	bk_insn(e, BPF_STX_MEM(BPF_DW, BPF_REG_10, R_OUTMAP, FP_CB_CTX + CB_OUT));
	bk_insn(e, BPF_STX_MEM(BPF_DW, BPF_REG_10, R_IN, FP_CB_CTX + CB_IN));
	bk_insn(e, BPF_STX_MEM(BPF_DW, BPF_REG_10, R_TAB, FP_CB_CTX + CB_TAB));
	bk_insn(e, BPF_LDX_MEM(BPF_DW, BPF_REG_1, BPF_REG_10, FP_CTL));
	bk_insn(e, BPF_STX_MEM(BPF_DW, BPF_REG_10, BPF_REG_1, FP_CB_CTX + CB_CTL));
	emit_prologue_table(e, o, &M, BPF_REG_1);
	bk_line(e, "the walk state into ctl (bytes); bpf_loop(nr, callback, &the pointers, 0)");
	bk_insn(e, BPF_STX_MEM(BPF_W, BPF_REG_1, R_IOFF, BK_CTL_OFF_CUR_IN));
	bk_comment(e, "stays unless a callback finishes the run");
	bk_insn(e, BPF_ST_MEM(BPF_W, BPF_REG_1, BK_CTL_OFF_STATUS, BK_ERR_LOOP_LIMIT));
	bk_comment(e, "nr_loops = keys / chunk + 1 (2 bytes a table entry)");
	ld_func = emit_loop_call(e, 2 * chunk);
	if (bk_label_used(e, M.shape)) {
		bk_line(e, "a node of another format: the status");
		bk_bind(e, M.shape);
		bk_insn(e, BPF_MOV64_IMM(T0, BK_ERR_NODE_SHAPE));
		bk_jmp(e, BPF_JMP_A(0), M.fail);
	}
	if (bk_label_used(e, M.tmpl)) {
		bk_line(e, "a template that is not the node's format's: the status");
		bk_bind(e, M.tmpl);
		bk_insn(e, BPF_MOV64_IMM(T0, BK_ERR_NODE_TMPL));
		bk_jmp(e, BPF_JMP_A(0), M.fail);
	}
	if (bk_label_used(e, M.bounds) || bk_label_used(e, M.fail)) {
		bk_line(e, "a run outside the node: the status, and where it stopped");
		bk_bind(e, M.bounds);
		bk_insn(e, BPF_MOV64_IMM(T0, BK_ERR_ARGS));
		bk_bind(e, M.fail);
		bk_insn(e, BPF_LDX_MEM(BPF_DW, BPF_REG_1, BPF_REG_10, FP_CTL));
		bk_insn(e, BPF_STX_MEM(BPF_W, BPF_REG_1, T0, BK_CTL_OFF_STATUS));
		bk_insn(e, BPF_STX_MEM(BPF_W, BPF_REG_1, R_IOFF, BK_CTL_OFF_CUR_IN));
		bk_insn(e, BPF_EXIT_INSN());
	}
	emit_no_slot(e, M.no_slot);

	emit_callback_start(e, ld_func);
	bk_line(e, "callback: up to %u keys per call; the maps (and the node) from the context (r2), "
		"the table cursor from ctl", chunk);
	bk_insn(e, BPF_LDX_MEM(BPF_DW, R_IN, BPF_REG_2, CB_IN));
	bk_insn(e, BPF_LDX_MEM(BPF_DW, R_TAB, BPF_REG_2, CB_TAB));
	bk_insn(e, BPF_LDX_MEM(BPF_DW, R_OUTMAP, BPF_REG_2, CB_OUT));
	bk_insn(e, BPF_LDX_MEM(BPF_DW, BPF_REG_1, BPF_REG_2, CB_CTL));
	bk_insn(e, BPF_STX_MEM(BPF_DW, BPF_REG_10, BPF_REG_1, FP_CTL));
	bk_insn(e, BPF_LDX_MEM(BPF_W, R_IOFF, BPF_REG_1, BK_CTL_OFF_CUR_IN));
	bk_insn(e, BPF_LDX_MEM(BPF_W, R_END, BPF_REG_1, BK_CTL_OFF_ARG_END));
	for (i = 0; i < (int)chunk; i++) {
		unpacked[i] = bk_label(e);
		adv[i] = bk_label(e);
		bk_jmp(e, BPF_JMP_REG(BPF_JGE, R_IOFF, R_END, 0), cb_done);
		emit_walk_hot(e, p, o, &L, unpacked[i], adv[i]);
	}
	emit_callback_tail(e, o, BK_WALK_TABLE, &L, unpacked, adv, chunk, cb_done);
}

int bk_gen_unpack(const struct bkey_format *f, const struct bk_gen_opts *o,
		  struct bk_prog *p, struct bkey_format_err *err)
{
	int ret;

	ret = bk_plan_format(f, &p->plan, err);
	if (ret)
		return ret;
	if (o->shape != BK_SHAPE_MAY_GOTO && o->shape != BK_SHAPE_BPF_LOOP)
		return -EINVAL;
	if (o->chunk > BK_CHUNK_MAX)
		return -EINVAL;
	if (o->by_shape && o->walk != BK_WALK_TABLE)
		return -EINVAL;
	if (over_nodes(o) && (o->nodes_fd < 0 || o->walk != BK_WALK_TABLE || o->node_size < 64 ||
			      o->node_size % 8 || o->node_size > 8 * BK_IDX_MASK))
		return -EINVAL;
	p->shape = o->shape;
	p->walk = o->walk;
	p->by_shape = o->by_shape;
	if (o->by_shape)
		bk_prog_names_shape(f, p->name, p->func_name);
	else
		bk_prog_names(f, p->name, p->func_name);
	snprintf(p->file_name, sizeof(p->file_name), "%s.bkgen", p->func_name);
	bk_emit_init(&p->e, o->annotate);
	if (o->shape == BK_SHAPE_MAY_GOTO)
		gen_may_goto(p, o);
	else if (o->walk == BK_WALK_TABLE)
		gen_bpf_loop_table(p, o);
	else
		gen_bpf_loop(p, o);
	return bk_emit_finish(&p->e);
}
