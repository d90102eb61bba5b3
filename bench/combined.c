// SPDX-License-Identifier: GPL-2.0
/*
 * Would one program per shape, serving both lookup and scan, pay?  The
 * node cache (user/nodecache.c) loads two per shape: the lookup
 * (bk_gen_search with .lookup, tail-calling through the prog array) and
 * the scan (the table walk over a node image).  Each program costs the
 * kernel a few KB of its own (a page of instructions, aux data, the JIT
 * image), so one program holding both bodies might save that, for a
 * dispatch at entry on every run and every tail call.
 *
 * Measured here, never in the product: the same generators' programs,
 * copied one after the other behind a two-instruction dispatch on the
 * context's cb[1] (BPF jumps are relative, map references stay), loaded
 * with BTF as bk_prog_load() loads every program.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "btree.h"
#include "combined.h"
#include "util.h"

#define CTX_OFF_SELECT	(BK_CTX_OFF_SLOT + 4)	/* cb[1]: 0 = lookup, else scan */
#define PREP_ROUNDS	31	/* interleaved: two programs, then the combined one */
#define MEM_COPIES	100	/* copies loaded per kernel-memory measurement */
#define MEM_REPS	3	/* measurements of each, in turns: medians */
#define RUN_ROUNDS	16	/* interleaved rounds of lookups and scans (even) */
#define LOOKUP_BATCHES	4	/* batches of BK_BATCH lookups per round */
#define SCAN_REPEAT	10	/* runs per leaf scan (the kernel's mean) */
#define MAX_SHAPES	128

static const unsigned node_sizes[] = { 4096, 65536 };

/* ---- one program of two ---- */

/* Copies @b's instructions and BTF lines to the end of @e (no subprograms). */
static void copy_body(struct bk_emit *e, const struct bk_emit *b)
{
	int i, l = 0;

	for (i = 0; i < b->cnt; i++) {
		if (l < b->nr_lines && b->line[l].insn == i)
			bk_line(e, "%s", bk_text(b, b->line[l++].text));
		bk_insn(e, b->insn[i]);
	}
}

int bk_combine_progs(const struct bk_prog *lk, const struct bk_prog *sc, struct bk_prog *out)
{
	struct bk_emit *e = &out->e;
	int scan;

	/* a second function would need its func_info moved and its
	 * bpf_loop pseudo-func offsets rebased: the may_goto shapes have none */
	if (lk->e.nr_subprogs > 1 || sc->e.nr_subprogs > 1)
		return -EOPNOTSUPP;
	out->plan = lk->plan;
	out->shape = BK_SHAPE_MAY_GOTO;
	out->walk = BK_WALK_TABLE;
	out->by_shape = lk->by_shape;
	memcpy(out->name, lk->name, sizeof(out->name));
	memcpy(out->func_name, lk->func_name, sizeof(out->func_name));
	out->name[1] = out->func_name[1] = 'c';		/* "bc..": lookup and scan */
	snprintf(out->file_name, sizeof(out->file_name), "%s.bkgen", out->func_name);
	bk_emit_init(e, false);
	scan = bk_label(e);
	bk_subprog(e);
	bk_line(e, "%s: the context's cb[1] picks the body: 0 the lookup (as every tail call "
		"keeps it), else the scan", out->name);
	bk_insn(e, BPF_LDX_MEM(BPF_W, BPF_REG_2, BPF_REG_1, CTX_OFF_SELECT));
	bk_jmp(e, BPF_JMP32_IMM(BPF_JNE, BPF_REG_2, 0, 0), scan);
	/* both bodies begin with r1 = the context and end in exits */
	copy_body(e, &lk->e);
	bk_bind(e, scan);
	copy_body(e, &sc->e);
	return bk_emit_finish(e);
}

/* ---- a shape's programs ---- */

/* The maps the programs of one node size reference. */
struct env {
	unsigned		node_size;
	struct bk_lookup_rt	lr;
	struct bk_runtime	srt;
};

struct shape_progs {
	struct bk_loaded	lookup, scan, comb;
};

/* The node cache's two programs of @f's shape, as load_programs() makes them. */
static int gen_pair(const struct env *env, const struct bkey_format *f, struct bk_prog *lk,
		    struct bk_prog *sc)
{
	struct bk_search_opts so = {
		.node_size = env->node_size, .lookup = true, .by_shape = true,
		.loop = BK_SEARCH_MAY_GOTO, .ctl_fd = env->lr.ctl_fd,
		.nodes_fd = env->lr.nodes_fd, .progs_fd = env->lr.progs_fd,
		.strict_align = bk_strict_align_default(),
	};
	struct bk_gen_opts uo = {
		.shape = BK_SHAPE_MAY_GOTO, .walk = BK_WALK_TABLE, .chunk = 1, .by_shape = true,
		.ctl_fd = env->srt.ctl_fd, .in_fd = env->srt.in_fd, .out_fd = env->srt.out_fd,
		.nodes_fd = env->lr.nodes_fd, .node_size = env->node_size,
		.strict_align = bk_strict_align_default(),
	};

	return bk_gen_search(f, &so, lk, NULL) ?: bk_gen_unpack(f, &uo, sc, NULL);
}

static struct bk_prog p_lk, p_sc, p_comb;	/* reused for every shape */

static void shape_unload(struct shape_progs *sp)
{
	bk_prog_unload(&sp->lookup);
	bk_prog_unload(&sp->scan);
	bk_prog_unload(&sp->comb);
}

/* All three programs of @f's shape, or none. */
static int shape_load(const struct env *env, const struct bkey_format *f,
		      struct shape_progs *sp)
{
	int ret;

	sp->lookup.fd = sp->scan.fd = sp->comb.fd = -1;
	ret = gen_pair(env, f, &p_lk, &p_sc) ?: bk_combine_progs(&p_lk, &p_sc, &p_comb);
	if (!ret)
		ret = bk_prog_load(&p_lk, &sp->lookup, NULL, 0);
	if (!ret)
		ret = bk_prog_load(&p_sc, &sp->scan, NULL, 0);
	if (!ret)
		ret = bk_prog_load(&p_comb, &sp->comb, NULL, 0);
	if (ret)
		shape_unload(sp);
	return ret;
}

/* ---- costs per shape: prepare, sizes, kernel memory ---- */

struct cost {
	double		prep_sep_us, prep_comb_us;	/* medians */
	double		mem_sep, mem_comb;		/* bytes per shape */
	struct bk_loaded lookup, scan, comb;		/* sizes */
};

/* Generate + verify + JIT: the two programs, then the combined one, in turns. */
static int prepare_times(const struct env *env, const struct bkey_format *f, struct cost *c)
{
	double sep[PREP_ROUNDS], comb[PREP_ROUNDS];
	unsigned i;
	int ret = 0;

	for (i = 0; i < PREP_ROUNDS && !ret; i++) {
		struct bk_loaded a, b, m;
		double t0 = bk_now_ns();

		ret = gen_pair(env, f, &p_lk, &p_sc);
		if (!ret)
			ret = bk_prog_load(&p_lk, &a, NULL, 0);
		if (ret)
			break;
		ret = bk_prog_load(&p_sc, &b, NULL, 0);
		sep[i] = (bk_now_ns() - t0) / 1e3;
		bk_prog_unload(&a);
		if (ret)
			break;
		bk_prog_unload(&b);
		t0 = bk_now_ns();
		ret = gen_pair(env, f, &p_lk, &p_sc) ?: bk_combine_progs(&p_lk, &p_sc, &p_comb);
		if (!ret)
			ret = bk_prog_load(&p_comb, &m, NULL, 0);
		comb[i] = (bk_now_ns() - t0) / 1e3;
		if (!ret)
			bk_prog_unload(&m);
	}
	if (ret)
		return ret;
	c->prep_sep_us = bk_median(sep, PREP_ROUNDS);
	c->prep_comb_us = bk_median(comb, PREP_ROUNDS);
	return 0;
}

/* MEM_COPIES loads of @a, and of @b if given: all, or none left loaded. */
struct copies {
	struct bk_loaded	a[MEM_COPIES], b[MEM_COPIES];
	unsigned		n;
};

static void copies_unload(struct copies *c)
{
	unsigned i;

	for (i = 0; i < c->n; i++) {
		bk_prog_unload(&c->a[i]);
		bk_prog_unload(&c->b[i]);
	}
	c->n = 0;
}

static int copies_load(struct copies *c, const struct bk_prog *a, const struct bk_prog *b)
{
	int ret = 0;

	for (c->n = 0; c->n < MEM_COPIES && !ret; c->n++) {
		c->b[c->n].fd = -1;
		ret = bk_prog_load(a, &c->a[c->n], NULL, 0);
		if (!ret && b && (ret = bk_prog_load(b, &c->b[c->n], NULL, 0)))
			bk_prog_unload(&c->a[c->n]);
	}
	if (ret) {
		c->n--;		/* the failed copy holds nothing */
		copies_unload(c);
	}
	return ret;
}

/*
 * The counter once it has not moved for 100 ms (3 s at most).  Closed
 * programs are freed past an RCU grace period and then from a workqueue,
 * in bursts: a hundred of them landing inside a measurement took it below
 * zero with bk_kernel_mem_settle()'s 15 ms.
 */
static long long mem_quiet(const char **method)
{
	long long prev = bk_kernel_mem_bytes(method), v;
	unsigned still = 0, i;

	for (i = 0; i < 300 && still < 10; i++) {
		usleep(10 * 1000);
		v = bk_kernel_mem_bytes(method);
		still = v == prev ? still + 1 : 0;
		prev = v;
	}
	return prev;
}

/*
 * Kernel memory per shape, the way the node cache counts it (memcg growth
 * over its loads): MEM_COPIES copies of the two programs and of the one
 * loaded side by side, nothing closed between the three reads, the order
 * flipped each time; medians.  shape_load() left the programs in p_*.
 */
static int shape_mem(struct cost *c)
{
	static struct copies two, one;
	double sep[MEM_REPS], comb[MEM_REPS];
	const char *method;
	unsigned i;
	int ret = 0;

	for (i = 0; i < MEM_REPS && !ret; i++) {
		bool one_first = i & 1;
		long long m0 = mem_quiet(&method), m1, m2;

		ret = one_first ? copies_load(&one, &p_comb, NULL) : copies_load(&two, &p_lk, &p_sc);
		m1 = bk_kernel_mem_bytes(&method);
		if (!ret)
			ret = one_first ? copies_load(&two, &p_lk, &p_sc) :
					  copies_load(&one, &p_comb, NULL);
		m2 = bk_kernel_mem_bytes(&method);
		copies_unload(&two);
		copies_unload(&one);
		sep[i] = (double)(one_first ? m2 - m1 : m1 - m0) / MEM_COPIES;
		comb[i] = (double)(one_first ? m1 - m0 : m2 - m1) / MEM_COPIES;
	}
	if (ret)
		return ret;
	c->mem_sep = bk_median(sep, MEM_REPS);
	c->mem_comb = bk_median(comb, MEM_REPS);
	return 0;
}

static int shape_costs(const struct env *env, const struct bkey_format *f, struct cost *c)
{
	struct shape_progs sp;
	int ret = prepare_times(env, f, c);

	if (!ret)
		ret = shape_load(env, f, &sp);
	if (ret)
		return ret;
	c->lookup = sp.lookup;
	c->scan = sp.scan;
	c->comb = sp.comb;
	shape_unload(&sp);
	return shape_mem(c);
}

/* ---- a tree to run them over ---- */

static uint64_t seed = 0xc0b1dedULL;

/* @nr random keys with every field in @f's range, sorted, one per position. */
static int random_keys(const struct bkey_format *f, unsigned nr, struct bk_keyset *ks)
{
	uint64_t v[BKEY_NR_FIELDS], val[4];
	unsigned i, j;
	int ret = 0;

	memset(ks, 0, sizeof(*ks));
	for (i = 0; i < nr && !ret; i++) {
		struct bkey k = { .format_nw = KEY_FORMAT_CURRENT, .type = 6 };

		for (j = 0; j < BKEY_NR_FIELDS; j++)
			v[j] = f->field_offset[j] + (bk_rnd(&seed) & bkey_mask(f->bits_per_field[j]));
		bkey_set_fields(&k, v);
		k.u64s = BKEY_U64s + bk_rnd(&seed) % 5;
		for (j = 0; j < 4; j++)
			val[j] = bk_rnd(&seed);
		ret = bk_keyset_add(ks, &k, val);
	}
	return ret ?: bk_keyset_sort_dedup(ks);
}

struct tree {
	struct bk_keyset	ks;
	struct bk_btree		bt;
	uint32_t		nr_shapes;
	struct bkey_format	shape_f[MAX_SHAPES];
	struct shape_progs	sp[MAX_SHAPES];
	int			fd_sep[MAX_SHAPES], fd_comb[MAX_SHAPES];
};

static bool same_shape(const struct bkey_format *a, const struct bkey_format *b)
{
	return a->key_u64s == b->key_u64s &&
	       !memcmp(a->bits_per_field, b->bits_per_field, sizeof(a->bits_per_field));
}

/* The shape id of @f in @t, its programs loaded if new; -errno. */
static int tree_shape(struct env *env, struct tree *t, const struct bkey_format *f)
{
	uint32_t s;
	int ret;

	for (s = 0; s < t->nr_shapes; s++)
		if (same_shape(&t->shape_f[s], f))
			return s;
	if (s == MAX_SHAPES)
		return -ENOSPC;
	ret = shape_load(env, f, &t->sp[s]);
	if (ret)
		return ret;
	t->shape_f[s] = *f;
	t->fd_sep[s] = t->sp[s].lookup.fd;
	t->fd_comb[s] = t->sp[s].comb.fd;
	return t->nr_shapes++;
}

/* Its programs leave the prog array too: the next tree's shapes are others. */
static void tree_free(struct env *env, struct tree *t)
{
	uint32_t s;

	for (s = 0; s < t->nr_shapes; s++) {
		bpf_map_delete_elem(env->lr.progs_fd, &s);
		shape_unload(&t->sp[s]);
	}
	t->nr_shapes = 0;
	bk_btree_free(&t->bt);
	bk_keyset_free(&t->ks);
}

/* A depth-2 tree (node_size / 2 keys) of keys in @f's ranges, in the nodes map. */
static int tree_load(struct env *env, struct tree *t, const struct bkey_format *f)
{
	struct bk_btree_opts o = { .node_size = env->node_size, .era = BKEY_FORMAT_ERA_CURRENT };
	char err[200];
	uint32_t i;
	int ret;

	memset(t, 0, sizeof(*t));
	ret = random_keys(f, env->node_size / 2, &t->ks);
	if (!ret && bk_btree_build(&t->bt, &t->ks, &o, err, sizeof(err))) {
		fprintf(stderr, "combined: %s\n", err);
		ret = -EINVAL;
	}
	if (!ret && t->bt.nr_nodes > env->lr.nr_nodes)
		ret = -ENOSPC;
	for (i = 0; !ret && i < t->bt.nr_nodes; i++) {
		int s = tree_shape(env, t, &t->bt.nodes[i].f);

		if (s < 0) {
			ret = s;
			break;
		}
		bk_node_image(&t->bt.nodes[i], env->node_size, s, 0,
			      (uint8_t *)env->lr.nodes + (size_t)i * env->lr.node_value_size);
	}
	if (ret)
		tree_free(env, t);
	return ret;
}

/* ---- runs ---- */

/*
 * bk_run_node() with the context's cb[1] = @select: the combined program
 * scans only when told to (the scan program ignores it).
 */
static int run_scan(int fd, struct bk_runtime *rt, uint32_t node, uint32_t nr_keys,
		    uint32_t select, uint32_t *duration_ns)
{
	unsigned char pkt[64] = {};
	struct __sk_buff ctx = { .cb = { rt->slot, select } };
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = pkt, .data_size_in = sizeof(pkt),
		    .ctx_in = &ctx, .ctx_size_in = sizeof(ctx), .repeat = SCAN_REPEAT);

	rt->ctl->node = node;
	rt->ctl->arg_in = rt->ctl->cur_in = 0;
	rt->ctl->arg_end = 2 * nr_keys;
	rt->ctl->status = ~0u;
	if (bpf_prog_test_run_opts(fd, &opts))
		return -errno;
	*duration_ns = opts.duration;
	if (rt->ctl->status != BK_OK || rt->ctl->cur_in != 2 * nr_keys)
		return -EIO;
	return 0;
}

/*
 * Every leaf's keys unpacked, each leaf a run (mean of SCAN_REPEAT):
 * ns per key; out gets them all, in order.
 */
static int scan_tree(struct env *env, const struct tree *t, bool comb, struct bkey *out,
		     double *ns_per_key)
{
	double ns = 0;
	size_t got = 0;
	uint32_t i;

	for (i = 0; i < t->bt.nr_leaves; i++) {
		const struct bk_node *n = &t->bt.nodes[i];
		const struct shape_progs *sp = &t->sp[bk_lookup_node(&env->lr, i)->format_id];
		uint32_t dur;
		int ret = run_scan(comb ? sp->comb.fd : sp->scan.fd, &env->srt, i, n->nr_keys,
				   comb, &dur);

		if (ret)
			return ret;
		memcpy(out + got, env->srt.out, n->nr_keys * sizeof(*out));
		got += n->nr_keys;
		ns += dur;
	}
	*ns_per_key = ns / got;
	return 0;
}

/* The prog array holds @fds (the tail calls' targets): LOOKUP_BATCHES batches. */
static int lookup_tree(struct env *env, const struct tree *t, const int *fds,
		       struct bk_result *res, double *ns_per_lookup)
{
	const struct bk_lookup_tree tree = {
		.prog_fd_by_fid = fds, .nr_fids = t->nr_shapes,
		.slot_first = 0, .slot_end = t->bt.nr_nodes,
		.root = t->bt.root, .root_level = t->bt.depth - 1,
		.depth = t->bt.depth + t->bt.leaf_gaps,
	};
	struct bk_lookup_stats st = {};
	uint32_t s, b, status = BK_OK;
	int ret = 0;

	for (s = 0; s < t->nr_shapes && !ret; s++)
		ret = bk_lookup_set_prog(&env->lr, s, fds[s]);
	/* a batch untimed: the programs just put in the array warm */
	if (!ret)
		ret = bk_lookup_batch(&env->lr, &tree, BK_BATCH, &status, NULL);
	for (b = 0; b < LOOKUP_BATCHES && !ret && status == BK_OK; b++)
		ret = bk_lookup_batch(&env->lr, &tree, BK_BATCH, &status, &st);
	if (ret || status != BK_OK)
		return ret ? ret : -EIO;
	memcpy(res, env->lr.results, BK_BATCH * sizeof(*res));
	*ns_per_lookup = (double)st.run_ns / (LOOKUP_BATCHES * BK_BATCH);
	return 0;
}

/* Queries: half at keys' positions, half anywhere in their ranges. */
static void make_queries(struct env *env, const struct tree *t)
{
	const struct bk_keyset *ks = &t->ks;
	uint32_t i;

	for (i = 0; i < BK_BATCH; i++) {
		const struct bkey *k = &ks->keys[bk_rnd(&seed) % ks->nr].k;
		const struct bkey *k2 = &ks->keys[bk_rnd(&seed) % ks->nr].k;

		env->lr.queries[i] = i % 2 ?
			(struct bk_query){ k->inode, k->offset, k->snapshot } :
			(struct bk_query){ k->inode, k2->offset, k2->snapshot };
	}
}

/* Answers: the combined program's equal the two programs', which equal C's. */
static int check_answers(const struct env *env, const struct tree *t,
			 const struct bk_result *rs, const struct bk_result *rc,
			 const struct bkey *ss, const struct bkey *sc)
{
	size_t nr_keys = 0, j;
	uint32_t i;

	if (memcmp(rs, rc, BK_BATCH * sizeof(*rs)))
		return -EIO;
	for (i = 0; i < BK_BATCH; i++) {
		const struct bk_query *q = &env->lr.queries[i];

		if (!bk_keyset_answer_ok(&t->ks, (struct bpos){ q->inode, q->offset, q->snapshot },
					 rs[i].found, rs[i].key))
			return -EIO;
	}
	for (i = 0; i < t->bt.nr_leaves; i++)
		nr_keys += t->bt.nodes[i].nr_keys;
	if (nr_keys != t->ks.nr || memcmp(ss, sc, nr_keys * sizeof(*ss)))
		return -EIO;
	for (j = 0; j < nr_keys; j++)
		if (memcmp(&ss[j], &t->ks.keys[j].k, sizeof(*ss)))
			return -EIO;
	return 0;
}

struct run_result {
	double		lookup_sep, lookup_comb, lookup_ratio;	/* ns per lookup */
	double		scan_sep, scan_comb, scan_ratio;	/* ns per key */
	uint32_t	shapes, nodes, keys;
};

/* Interleaved rounds, the order flipped every round; medians. */
static int run_rounds(struct env *env, struct tree *t, struct run_result *rr)
{
	static struct bk_result rs[BK_BATCH], rc[BK_BATCH];
	double v[6][RUN_ROUNDS];
	struct bkey *ss = calloc(t->ks.nr, sizeof(*ss)), *sc = calloc(t->ks.nr, sizeof(*sc));
	unsigned r;
	int ret = ss && sc ? 0 : -ENOMEM;

	make_queries(env, t);
	for (r = 0; r < RUN_ROUNDS && !ret; r++) {
		bool flip = r & 1;

		ret = lookup_tree(env, t, flip ? t->fd_comb : t->fd_sep, flip ? rc : rs,
				  &v[flip][r]) ?:
		      lookup_tree(env, t, flip ? t->fd_sep : t->fd_comb, flip ? rs : rc,
				  &v[!flip][r]) ?:
		      scan_tree(env, t, flip, flip ? sc : ss, &v[2 + flip][r]) ?:
		      scan_tree(env, t, !flip, flip ? ss : sc, &v[2 + !flip][r]) ?:
		      check_answers(env, t, rs, rc, ss, sc);
		v[4][r] = v[1][r] / v[0][r];
		v[5][r] = v[3][r] / v[2][r];
	}
	free(ss);
	free(sc);
	if (ret)
		return ret;
	rr->lookup_sep = bk_median(v[0], RUN_ROUNDS);
	rr->lookup_comb = bk_median(v[1], RUN_ROUNDS);
	rr->scan_sep = bk_median(v[2], RUN_ROUNDS);
	rr->scan_comb = bk_median(v[3], RUN_ROUNDS);
	rr->lookup_ratio = bk_median(v[4], RUN_ROUNDS);
	rr->scan_ratio = bk_median(v[5], RUN_ROUNDS);
	rr->shapes = t->nr_shapes;
	rr->nodes = t->bt.nr_nodes;
	rr->keys = t->ks.nr;
	return 0;
}

/* ---- the table ---- */

static void env_close(struct env *env)
{
	bk_lookup_rt_close(&env->lr);
	bk_runtime_close(&env->srt);
}

static int env_open(struct env *env, unsigned node_size)
{
	int ret;

	memset(env, 0, sizeof(*env));
	env->node_size = node_size;
	env->srt.ctl_fd = env->srt.in_fd = env->srt.out_fd = -1;
	/* a depth-2 tree of node_size / 2 keys: under 64 nodes */
	ret = bk_lookup_rt_open(&env->lr, node_size, 256, MAX_SHAPES);
	if (!ret)
		ret = bk_runtime_open(&env->srt);
	if (ret)
		env_close(env);
	return ret;
}

static void print_row(const char *name, unsigned node_size, const struct cost *c,
		      const struct run_result *rr)
{
	printf("%-16s %5u | %5.1f %5.1f %5.1f | %6.0f %6.0f | %5u %5u | %5u %5u | %5u %5u |"
	       " %3u %7.1f %7.1f %5.3f | %5.2f %5.2f %5.3f\n",
	       name, node_size, c->mem_sep / 1e3, c->mem_comb / 1e3,
	       (c->mem_sep - c->mem_comb) / 1e3, c->prep_sep_us, c->prep_comb_us,
	       c->lookup.verified_insns + c->scan.verified_insns, c->comb.verified_insns,
	       c->lookup.xlated_insns + c->scan.xlated_insns, c->comb.xlated_insns,
	       c->lookup.jited_bytes + c->scan.jited_bytes, c->comb.jited_bytes,
	       rr->shapes, rr->lookup_sep, rr->lookup_comb, rr->lookup_ratio,
	       rr->scan_sep, rr->scan_comb, rr->scan_ratio);
}

static void json_row(FILE *json, bool first, const char *name, unsigned node_size,
		     const struct cost *c, const struct run_result *rr)
{
	fprintf(json, "%s{\"format\":\"%s\",\"node_size\":%u,\"btf\":true,"
		"\"mem_bytes_two\":%.0f,\"mem_bytes_combined\":%.0f,"
		"\"prepare_us_two\":%.1f,\"prepare_us_combined\":%.1f,"
		"\"verified_insns_two\":%u,\"verified_insns_combined\":%u,"
		"\"xlated_insns_two\":%u,\"xlated_insns_combined\":%u,"
		"\"jit_bytes_two\":%u,\"jit_bytes_combined\":%u,"
		"\"lookup\":{\"verified\":%u,\"xlated\":%u,\"jit\":%u},"
		"\"scan\":{\"verified\":%u,\"xlated\":%u,\"jit\":%u},"
		"\"tree_shapes\":%u,\"tree_nodes\":%u,\"tree_keys\":%u,"
		"\"ns_per_lookup_two\":%.1f,\"ns_per_lookup_combined\":%.1f,"
		"\"ratio_lookup\":%.3f,\"ns_per_scan_key_two\":%.3f,"
		"\"ns_per_scan_key_combined\":%.3f,\"ratio_scan\":%.3f}",
		first ? "" : ",", name, node_size, c->mem_sep, c->mem_comb,
		c->prep_sep_us, c->prep_comb_us,
		c->lookup.verified_insns + c->scan.verified_insns, c->comb.verified_insns,
		c->lookup.xlated_insns + c->scan.xlated_insns, c->comb.xlated_insns,
		c->lookup.jited_bytes + c->scan.jited_bytes, c->comb.jited_bytes,
		c->lookup.verified_insns, c->lookup.xlated_insns, c->lookup.jited_bytes,
		c->scan.verified_insns, c->scan.xlated_insns, c->scan.jited_bytes,
		rr->shapes, rr->nodes, rr->keys, rr->lookup_sep, rr->lookup_comb,
		rr->lookup_ratio, rr->scan_sep, rr->scan_comb, rr->scan_ratio);
}

static int one_row(struct env *env, const char *name, const struct bkey_format *f,
		   struct cost *c, struct run_result *rr)
{
	static struct tree t;
	int ret = shape_costs(env, f, c);

	if (ret)
		return ret;
	ret = tree_load(env, &t, f);
	if (ret)
		return ret;
	ret = run_rounds(env, &t, rr);
	if (ret == -EIO)
		fprintf(stderr, "combined: %s, %u-byte nodes: the combined program's answers "
			"differ\n", name, env->node_size);
	tree_free(env, &t);
	return ret;
}

int combined_bench(const char *const *names, const struct bkey_format *fmts, unsigned n,
		   FILE *json)
{
	unsigned s, i, rows = 0;
	const char *method;
	int ret = 0;

	bk_kernel_mem_bytes(&method);
	printf("\n%-16s %5s | %17s | %13s | %11s | %11s | %11s | %3s %23s | %17s\n",
	       "lookup+scan", "node", "kernel KB/shape", "prepare us", "verified", "xlated",
	       "JIT B", "shp", "kernel ns per lookup", "ns per scanned key");
	printf("%-16s %5s | %5s %5s %5s | %6s %6s | %5s %5s | %5s %5s | %5s %5s |"
	       " %3s %7s %7s %5s | %5s %5s %5s\n", "", "", "two", "one", "saved", "two", "one",
	       "two", "one", "two", "one", "two", "one", "", "two", "one", "1/2", "two", "one", "1/2");
	for (s = 0; s < sizeof(node_sizes) / sizeof(node_sizes[0]) && !ret; s++) {
		struct env env;

		ret = env_open(&env, node_sizes[s]);
		for (i = 0; i < n && !ret; i++) {
			struct cost c;
			struct run_result rr;

			ret = one_row(&env, names[i], &fmts[i], &c, &rr);
			if (ret)
				break;
			print_row(names[i], node_sizes[s], &c, &rr);
			if (json)
				json_row(json, !rows, names[i], node_sizes[s], &c, &rr);
			rows++;
		}
		env_close(&env);
	}
	if (ret) {
		fprintf(stderr, "combined: %s\n", strerror(-ret));
		return ret;
	}
	printf("\nper shape, two = the node cache's lookup and scan programs, one = both bodies\n"
	       "in one program behind a dispatch on the context's cb[1] (bench/combined.c);\n"
	       "loaded with BTF, both.  kernel KB = %s growth\n"
	       "with %d copies of each loaded side by side, per copy, median of %d; prepare = generate + verify +\n"
	       "JIT, median of %d interleaved; verified/xlated/JIT: sums of the two.  Runs: a\n"
	       "depth-2 tree of node_size/2 random keys in the format's ranges (its nodes'\n"
	       "own formats: shp shapes), the prog array holding the two's lookups or the\n"
	       "combined programs; %d x %d lookups (after one untimed) and every leaf\n"
	       "scanned (%d runs each), interleaved %d rounds, kernel time, medians; 1/2 = median per-round ratio one/two.\n"
	       "Every round: the combined answers equal the two's and C's.\n",
	       method, MEM_COPIES, MEM_REPS, PREP_ROUNDS, LOOKUP_BATCHES, BK_BATCH, SCAN_REPEAT, RUN_ROUNDS);
	return 0;
}
