// SPDX-License-Identifier: GPL-2.0
/*
 * Every variable offset a generated program adds to a pointer is bounded
 * explicitly in the same loop pass: by a mask, a compare against an
 * immediate, or the width of the load that produced it.  Nothing may rest
 * on what a verifier keeps of a range across a loop's states: Debian's
 * 6.12.117 widened the table walk's cursor there and rejected programs
 * that older and newer kernels took.
 *
 * The check is a small forward dataflow over the instructions, a
 * verifier with no memory across loops: a back edge (a jump to an earlier
 * instruction) carries pointers but forgets every scalar's bound.  A
 * "pointer + scalar" whose scalar is not bounded on every path since the
 * last back edge fails, with the instruction named.  No kernel needed.
 *
 * Pointers also travel through the stack: a run's slot pointers are
 * spilled for the finish, and the bpf_loop shape hands them to its
 * callback through the callback's context (r2, a pointer to the caller's
 * stack, which holds only pointers).  The check follows 8-byte spills
 * and fills at fixed offsets from r10, and takes what the callback loads
 * through its context as pointers, so their offsets are checked too.
 */
#include <stdlib.h>
#include <string.h>

#include "test_progs.h"
#include "examples.h"
#include "kenv.h"

enum reg_state { R_UNBOUNDED, R_BOUNDED, R_POINTER, R_CB_CTX };

#define STACK_SLOTS	64		/* 8-byte slots at r10 - 8 .. r10 - 512 */

struct reg_set {
	unsigned char	r[MAX_BPF_REG];
	unsigned char	stk[STACK_SLOTS];
	bool		reached;
};

/* The 8-byte stack slot at r10 + @off, or -1. */
static int stack_slot(int off)
{
	return off < 0 && off % 8 == 0 && -off / 8 <= STACK_SLOTS ? -off / 8 - 1 : -1;
}

static enum reg_state meet(enum reg_state a, enum reg_state b)
{
	return a == b ? a : R_UNBOUNDED;
}

/* Merges @in into @to; returns whether @to changed. */
static bool merge(struct reg_set *to, const struct reg_set *in)
{
	struct reg_set old = *to;
	int i;

	if (!in->reached)
		return false;
	if (!to->reached) {
		*to = *in;
		return true;
	}
	for (i = 0; i < MAX_BPF_REG; i++)
		to->r[i] = meet(to->r[i], in->r[i]);
	for (i = 0; i < STACK_SLOTS; i++)
		to->stk[i] = meet(to->stk[i], in->stk[i]);
	return memcmp(&old, to, sizeof(old)) != 0;
}

/* What a back edge keeps: pointers stay pointers, bounds are forgotten. */
static struct reg_set forget_bounds(const struct reg_set *s)
{
	struct reg_set o = *s;
	int i;

	for (i = 0; i < MAX_BPF_REG; i++)
		if (o.r[i] != R_POINTER && o.r[i] != R_CB_CTX)
			o.r[i] = R_UNBOUNDED;
	for (i = 0; i < STACK_SLOTS; i++)
		if (o.stk[i] != R_POINTER)
			o.stk[i] = R_UNBOUNDED;
	return o;
}

static bool is_ld_imm64(const struct bpf_insn *in)
{
	return in->code == (BPF_LD | BPF_DW | BPF_IMM);
}

/* A jump with a target (not call, exit); JA and may_goto included. */
static bool is_jump(const struct bpf_insn *in)
{
	unsigned cls = BPF_CLASS(in->code), op = BPF_OP(in->code);

	return (cls == BPF_JMP || cls == BPF_JMP32) && op != BPF_CALL && op != BPF_EXIT;
}

struct bounds_check {
	const struct bpf_insn	*insn;
	int			cnt;
	struct reg_set		*in;		/* state before each instruction */
	char			why[160];	/* the first unbounded use */
};

/* The ALU transfer; false (with why) for an unbounded pointer offset. */
static bool step_alu(struct bounds_check *c, int pc, struct reg_set *s)
{
	const struct bpf_insn *in = &c->insn[pc];
	unsigned op = BPF_OP(in->code);
	bool is64 = BPF_CLASS(in->code) == BPF_ALU64, reg = BPF_SRC(in->code) == BPF_X;
	unsigned char *d = &s->r[in->dst_reg], src = reg ? s->r[in->src_reg] : R_BOUNDED;

	if (op == BPF_MOV) {
		*d = reg ? (is64 || src != R_POINTER ? src : R_UNBOUNDED) : R_BOUNDED;
		return true;
	}
	if (op == BPF_ADD && reg && (*d == R_POINTER || src == R_POINTER)) {
		unsigned char off = *d == R_POINTER ? src : *d;

		if (!is64 || off != R_BOUNDED) {
			snprintf(c->why, sizeof(c->why), "insn %d: r%u += r%u adds an offset not bounded "
				 "in this pass", pc, in->dst_reg, in->src_reg);
			return false;
		}
		*d = R_POINTER;
		return true;
	}
	if (*d == R_POINTER) {
		/* pointer arithmetic with a constant keeps a pointer */
		if (!(op == BPF_ADD || op == BPF_SUB) || reg)
			*d = R_UNBOUNDED;
		return true;
	}
	switch (op) {
	case BPF_AND:
		if (!reg)
			*d = R_BOUNDED;
		else if (src == R_BOUNDED)
			*d = R_BOUNDED;
		break;
	case BPF_RSH:
		if (!reg && !is64 && in->imm > 0)
			*d = R_BOUNDED;		/* below 2^(32 - imm) */
		break;
	case BPF_LSH: case BPF_MUL: case BPF_ADD: case BPF_SUB:
		/* a bounded value stays bounded (the verifier checks how far) */
		if (reg && src != R_BOUNDED)
			*d = R_UNBOUNDED;
		break;
	default:
		*d = R_UNBOUNDED;
	}
	return true;
}

/*
 * Runs the dataflow to its fixed point.  Returns true if every pointer
 * offset is bounded; else false with c->why.
 */
static bool check_bounds(struct bounds_check *c, const int *entries, int nr_entries)
{
	bool changed = true;
	int pc, i;

	c->in = calloc(c->cnt + 1, sizeof(*c->in));
	if (!c->in)
		return false;
	for (i = 0; i < nr_entries; i++) {
		c->in[entries[i]].reached = true;
		c->in[entries[i]].r[BPF_REG_1] = i ? R_UNBOUNDED : R_POINTER;	/* ctx */
		/* a bpf_loop callback's r2: its context, on the caller's stack */
		c->in[entries[i]].r[BPF_REG_2] = i ? R_CB_CTX : R_UNBOUNDED;
		c->in[entries[i]].r[BPF_REG_10] = R_POINTER;
	}
	while (changed) {
		changed = false;
		for (pc = 0; pc < c->cnt; pc++) {
			const struct bpf_insn *in = &c->insn[pc];
			struct reg_set s = c->in[pc], taken;
			unsigned cls = BPF_CLASS(in->code), op = BPF_OP(in->code);
			int next = pc + 1, target;

			if (!s.reached)
				continue;
			if (is_ld_imm64(in)) {
				s.r[in->dst_reg] = in->src_reg ? R_POINTER : R_BOUNDED;
				changed |= merge(&c->in[pc + 2], &s);
				pc++;
				continue;
			}
			if (cls == BPF_ALU || cls == BPF_ALU64) {
				if (!step_alu(c, pc, &s)) {
					free(c->in);
					return false;
				}
			} else if (cls == BPF_LDX) {
				unsigned size = BPF_SIZE(in->code);
				int slot = stack_slot(in->off);

				/* a byte or a u16 is bounded by its width */
				s.r[in->dst_reg] = size == BPF_B || size == BPF_H ? R_BOUNDED : R_UNBOUNDED;
				/* a fill, or a pointer from a callback's context */
				if (size == BPF_DW && in->src_reg == BPF_REG_10 && slot >= 0)
					s.r[in->dst_reg] = c->in[pc].stk[slot];
				else if (size == BPF_DW && c->in[pc].r[in->src_reg] == R_CB_CTX)
					s.r[in->dst_reg] = R_POINTER;
			} else if ((cls == BPF_STX || cls == BPF_ST) && in->dst_reg == BPF_REG_10) {
				int slot = stack_slot(in->off & ~7);

				/* a spill keeps what it spilled; a narrower store leaves a scalar */
				if (slot >= 0)
					s.stk[slot] = cls == BPF_STX && BPF_SIZE(in->code) == BPF_DW &&
						      stack_slot(in->off) >= 0 ? s.r[in->src_reg] :
						      R_UNBOUNDED;
			} else if (is_jump(in)) {
				target = pc + 1 + in->off;
				taken = s;
				if (cls == BPF_JMP && BPF_SRC(in->code) == BPF_K && op != BPF_JA) {
					/* compares against an immediate bound one side */
					if (op == BPF_JGT || op == BPF_JGE)
						s.r[in->dst_reg] = s.r[in->dst_reg] == R_POINTER ?
							R_POINTER : R_BOUNDED;
					if (op == BPF_JLT || op == BPF_JLE)
						taken.r[in->dst_reg] = taken.r[in->dst_reg] == R_POINTER ?
							R_POINTER : R_BOUNDED;
				}
				if (target <= pc)
					taken = forget_bounds(&taken);
				changed |= merge(&c->in[target], &taken);
				if (op == BPF_JA)
					continue;
			} else if (cls == BPF_JMP && op == BPF_EXIT) {
				continue;
			} else if (cls == BPF_JMP && op == BPF_CALL) {
				for (i = BPF_REG_1; i <= BPF_REG_5; i++)
					s.r[i] = R_UNBOUNDED;
				s.r[BPF_REG_0] = in->imm == BPF_FUNC_map_lookup_elem ?
					R_POINTER : R_UNBOUNDED;
			}
			changed |= merge(&c->in[next], &s);
		}
	}
	free(c->in);
	return true;
}

static bool prog_bounded(const struct bk_prog *p, const char *what)
{
	struct bounds_check c = { .insn = p->e.insn, .cnt = p->e.cnt };
	bool ok = check_bounds(&c, p->e.subprog_start, p->e.nr_subprogs > 0 ? p->e.nr_subprogs : 1);

	return ASSERT_TRUE(ok, what) || (fprintf(stderr, "  %s: %s\n", p->name, c.why), false);
}

/* Every unpack shape and walk, over the in map and over a nodes map. */
static void unpack_programs(void)
{
	static struct bk_prog p;
	struct bkey_format_err err;
	uint64_t seed = 0x6b6f756e6473ull;
	static const unsigned chunks[] = { 1, 2, 4, BK_CHUNK_MAX };
	unsigned n, i, c;
	bool ok = true;

	for (n = 0; n < 300 && ok; n++) {
		struct bkey_format f = n == 0 ? ex2_format() : n == 1 ? ex3_format() :
				       rnd_format(&seed, -1, 0);

		for (i = 0; i < 2 && ok; i++) {
			for (c = 0; c < sizeof(chunks) / sizeof(chunks[0]) && ok; c++) {
				struct bk_gen_opts u64s = {
					.shape = i ? BK_SHAPE_BPF_LOOP : BK_SHAPE_MAY_GOTO,
					.walk = BK_WALK_U64S, .strict_align = n % 2,
					.chunk = chunks[c], .ctl_fd = 3, .in_fd = 4, .out_fd = 5,
				};
				struct bk_gen_opts table = u64s;

				ok &= ASSERT_OK(bk_gen_unpack(&f, &u64s, &p, &err), "generate u64s walk") &&
				      prog_bounded(&p, "u64s walk: offsets bounded");
				/* the table walk in both shapes: may_goto, bpf_loop callbacks */
				table.walk = BK_WALK_TABLE;
				table.by_shape = n % 3 == 1;
				ok &= ASSERT_OK(bk_gen_unpack(&f, &table, &p, &err), "generate table walk") &&
				      prog_bounded(&p, "table walk: offsets bounded");
				table.nodes_fd = 6;
				table.node_size = 64 << (n % 11);
				ok &= ASSERT_OK(bk_gen_unpack(&f, &table, &p, &err), "generate node walk") &&
				      prog_bounded(&p, "table walk over nodes: offsets bounded");
			}
		}
	}
	/* per format: 2 shapes x chunks x 3 walks (u64s, table, nodes) */
	test__count("unpack programs checked",
		    6 * n * (long long)(sizeof(chunks) / sizeof(chunks[0])));
}

/* The node search and the lookup, at small and large node sizes. */
static void search_programs(void)
{
	static struct bk_prog p;
	struct bkey_format_err err;
	uint64_t seed = 0x7365617263680ull;
	unsigned n;
	bool ok = true;

	for (n = 0; n < 300 && ok; n++) {
		struct bkey_format f = n == 0 ? ex2_format() : rnd_format(&seed, -1, 0);
		struct bk_search_opts o = {
			.node_size = n % 2 ? 65536 : 256 << (n % 8), .strict_align = n % 3 == 0,
			.by_shape = n % 4 >= 2, .loop = n % 5 == 0 ? BK_SEARCH_UNROLLED : n % 5 == 1 ? BK_SEARCH_BPF_LOOP : BK_SEARCH_MAY_GOTO,
			.ctl_fd = 3, .nodes_fd = 4, .progs_fd = 5,
		};

		ok &= ASSERT_OK(bk_gen_search(&f, &o, &p, &err), "generate search") &&
		      prog_bounded(&p, "search: offsets bounded");
		o.lookup = true;
		ok &= ASSERT_OK(bk_gen_search(&f, &o, &p, &err), "generate lookup") &&
		      prog_bounded(&p, "lookup: offsets bounded");
	}
	test__count("search and lookup programs checked", 2 * n);
}

/*
 * The checker itself: a cursor bounded only before its loop (what the
 * table walk did before it bounded r8 on every pass) must fail, and the
 * same loop with the bound inside must pass.
 */
static void checker_catches(void)
{
	const struct bpf_insn before_loop[] = {
		BPF_LD_IMM64_RAW_1(BPF_REG_6, BPF_PSEUDO_MAP_VALUE, 3), BPF_LD_IMM64_RAW_2(0),
		BPF_LDX_MEM(BPF_W, BPF_REG_8, BPF_REG_6, 0),
		BPF_ALU64_IMM(BPF_AND, BPF_REG_8, 0xfffe),
		BPF_MAY_GOTO_INSN(5),				/* 4: the loop */
		BPF_MOV64_REG(BPF_REG_1, BPF_REG_6),
		BPF_ALU64_REG(BPF_ADD, BPF_REG_1, BPF_REG_8),	/* 6 */
		BPF_LDX_MEM(BPF_B, BPF_REG_0, BPF_REG_1, 0),
		BPF_ALU64_IMM(BPF_ADD, BPF_REG_8, 2),
		BPF_JMP_IMM(BPF_JLT, BPF_REG_8, 100, -6),
		BPF_MOV64_IMM(BPF_REG_0, 0),
		BPF_EXIT_INSN(),
	};
	struct bpf_insn inside[sizeof(before_loop) / sizeof(before_loop[0])];
	struct bounds_check c = { .insn = before_loop, .cnt = sizeof(inside) / sizeof(inside[0]) };
	const int entry = 0;

	ASSERT_FALSE(check_bounds(&c, &entry, 1), "bound before the loop only: rejected");
	ASSERT_HAS_SUBSTR(c.why, "insn 6:", "names the unbounded add");
	/* move the mask into the loop: may_goto, mask, then the add */
	memcpy(inside, before_loop, sizeof(inside));
	inside[3] = BPF_MAY_GOTO_INSN(6);
	inside[4] = BPF_ALU64_IMM(BPF_AND, BPF_REG_8, 0xfffe);
	inside[9] = BPF_JMP_IMM(BPF_JLT, BPF_REG_8, 100, -7);
	c.insn = inside;
	c.why[0] = 0;
	ASSERT_TRUE(check_bounds(&c, &entry, 1), "bound in the loop: accepted");
	ASSERT_STREQ(c.why, "", "no complaint");
}

/* Pointers through the stack stay pointers: a spill and fill, a callback's context. */
static void checker_follows_stack(void)
{
	const struct bpf_insn spilled[] = {
		BPF_LD_IMM64_RAW_1(BPF_REG_6, BPF_PSEUDO_MAP_VALUE, 3), BPF_LD_IMM64_RAW_2(0),
		BPF_STX_MEM(BPF_DW, BPF_REG_10, BPF_REG_6, -16),
		BPF_LDX_MEM(BPF_DW, BPF_REG_1, BPF_REG_10, -16),
		BPF_LDX_MEM(BPF_W, BPF_REG_8, BPF_REG_6, 0),
		BPF_ALU64_REG(BPF_ADD, BPF_REG_1, BPF_REG_8),	/* 5: unbounded */
		BPF_MOV64_IMM(BPF_REG_0, 0),
		BPF_EXIT_INSN(),
	};
	const struct bpf_insn callback[] = {
		BPF_MOV64_IMM(BPF_REG_0, 0),
		BPF_EXIT_INSN(),
		/* 2: the callback, r2 its context on the caller's stack */
		BPF_LDX_MEM(BPF_DW, BPF_REG_6, BPF_REG_2, 8),
		BPF_LDX_MEM(BPF_W, BPF_REG_8, BPF_REG_6, 0),
		BPF_ALU64_REG(BPF_ADD, BPF_REG_6, BPF_REG_8),	/* 4: unbounded */
		BPF_MOV64_IMM(BPF_REG_0, 0),
		BPF_EXIT_INSN(),
	};
	struct bounds_check c = { .insn = spilled, .cnt = sizeof(spilled) / sizeof(spilled[0]) };
	const int entries[] = { 0, 2 };

	ASSERT_FALSE(check_bounds(&c, entries, 1), "a filled pointer plus an unbounded offset");
	ASSERT_HAS_SUBSTR(c.why, "insn 5:", "names the add after the fill");
	c = (struct bounds_check){ .insn = callback, .cnt = sizeof(callback) / sizeof(callback[0]) };
	ASSERT_FALSE(check_bounds(&c, entries, 2), "a callback's pointer plus an unbounded offset");
	ASSERT_HAS_SUBSTR(c.why, "insn 4:", "names the add in the callback");
}

DEFINE_TEST(bounds)
{
	if (test__start_subtest("checker"))
		checker_catches();
	if (test__start_subtest("checker_stack"))
		checker_follows_stack();
	if (test__start_subtest("unpack"))
		unpack_programs();
	if (test__start_subtest("search"))
		search_programs();
}
