// SPDX-License-Identifier: GPL-2.0
/*
 * The search floor: what the kernel's BPF takes over C for a plain
 * binary search and for dependent loads, with no generator in between.
 *
 * bpf/search_floor.bpf.c is compiled by clang.  Here the same search runs
 * in C over the same nodes, read through the map's mmap: once with lo and
 * hi in registers (what a C compiler makes; branches, not cmov, with
 * Debian's gcc -O2) and once with them in the map, as the BPF program
 * keeps them.  Each side gets its own random queries, so neither finds
 * the lines the other just read, and every answer is checked: each node
 * holds its own keys, so a search of the wrong node is caught too.  Then
 * the nodes are rewritten as one random cycle through all their 64-byte
 * lines, and chains of dependent loads follow it, one chain (latency) and
 * four at once (loads in flight), each chain on its own arc of the cycle
 * so that no side walks lines the other just walked.  Footprints: 512 KiB
 * (L2), 8 MiB (L3), 64 MiB (memory).  Medians of interleaved rounds, the
 * order rotated.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "floor.h"
#include "search_floor.h"
#include "search_floor.skel.h"
#include "util.h"

#define FLOOR_ROUNDS	15
#define FLOOR_BATCHES	4	/* of FL_BATCH queries per method per round */
#define FLOOR_ROWS	3

_Static_assert((FL_BATCH & (FL_BATCH - 1)) == 0, "the program masks query indices by FL_BATCH");
_Static_assert(1u << (FL_STEPS - 1) >= FL_NODE_KEYS, "FL_STEPS steps end every search");
_Static_assert((uint64_t)FL_KEY_STEP * FL_MAX_NODES * FL_NODE_KEYS <= UINT32_MAX,
	       "every key fits a u32");

enum floor_method { FLOOR_BPF, FLOOR_C, FLOOR_C_MEM, FLOOR_METHODS };

/* The chains' lines: one arc of the cycle each, so that none walks another's lines. */
enum floor_arc { ARC_BPF4 = 0, ARC_C4 = FL_CHAINS, ARC_BPF1 = 2 * FL_CHAINS, ARC_C1, NR_ARCS };

struct floor_row {
	unsigned	nodes;
	double		search_ns[FLOOR_METHODS];	/* per search */
	double		r_search, r_search_mem;	/* bpf over C; over C with lo, hi in memory */
	double		chase_ns[2][2];		/* [1 chain, FL_CHAINS][bpf, C], per step */
	double		r_chase[2];
};

struct floor_env {
	struct search_floor_bpf	*skel;
	struct fl_node		*nodes;		/* the nodes map, mmap'd */
	struct fl_run		*run;		/* the run's map, mmap'd */
	uint32_t		answer[FL_BATCH];	/* C's */
	uint32_t		at[NR_ARCS];	/* each chain's line */
	uint64_t		seed;
};

static void make_queries(struct floor_env *env, unsigned nodes_used)
{
	unsigned i;

	for (i = 0; i < FL_BATCH; i++) {
		uint32_t node = bk_rnd(&env->seed) % nodes_used;

		env->run->q[i].node = node;
		env->run->q[i].key = FL_KEY_STEP * node * FL_NODE_KEYS +
				     bk_rnd(&env->seed) % (FL_KEY_STEP * FL_NODE_KEYS);
	}
}

/* The first key >= @q's key in its node (its keys are FL_KEY_STEP apart). */
static uint32_t want(const struct fl_query *q)
{
	return (q->key + FL_KEY_STEP - 1) / FL_KEY_STEP - q->node * FL_NODE_KEYS;
}

static __attribute__((noinline)) void c_search(const struct fl_node *nodes,
					       const struct fl_query *q, uint32_t *answer)
{
	unsigned i;

	for (i = 0; i < FL_BATCH; i++) {
		const uint32_t *k = nodes[q[i].node].k;
		uint32_t lo = 0, hi = FL_NODE_KEYS;

		while (lo < hi) {
			uint32_t mid = (lo + hi) / 2;

			if (k[mid] >= q[i].key)
				hi = mid;
			else
				lo = mid + 1;
		}
		answer[i] = lo;
	}
}

/* The same with lo and hi stored and loaded each step, as the BPF program has them. */
static __attribute__((noinline)) void c_search_mem(const struct fl_node *nodes,
						   const struct fl_query *q, uint32_t *answer,
						   volatile uint32_t *lo, volatile uint32_t *hi)
{
	unsigned i, s;

	for (i = 0; i < FL_BATCH; i++) {
		const uint32_t *k = nodes[q[i].node].k;

		*lo = 0;
		*hi = FL_NODE_KEYS;
		for (s = 0; s < FL_STEPS; s++) {
			uint32_t l = *lo, h = *hi, mid = (l + h) / 2;

			if (l >= h || mid >= FL_NODE_KEYS)
				break;
			if (k[mid] >= q[i].key)
				*hi = mid;
			else
				*lo = mid + 1;
		}
		answer[i] = *lo;
	}
}

/* One test run of @prog: its ns, or -1 if it failed or returned other than 0. */
static double run_prog(const struct bpf_program *prog)
{
	unsigned char pkt[64] = {};
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = pkt, .data_size_in = sizeof(pkt),
		    .repeat = 1);

	if (bpf_prog_test_run_opts(bpf_program__fd(prog), &opts) || opts.retval)
		return -1;
	return opts.duration;
}

/* One batch of @m's searches over the first @nodes_used nodes: ns per search, or -1 if wrong. */
static double time_search(struct floor_env *env, unsigned nodes_used, enum floor_method m)
{
	struct fl_run *run = env->run;
	const uint32_t *got = m == FLOOR_BPF ? run->answer : env->answer;
	double ns, t0;
	unsigned i;

	make_queries(env, nodes_used);
	run->nq = FL_BATCH;
	if (m == FLOOR_BPF) {
		ns = run_prog(env->skel->progs.fl_search);
	} else {
		t0 = bk_now_ns();
		if (m == FLOOR_C)
			c_search(env->nodes, run->q, env->answer);
		else
			c_search_mem(env->nodes, run->q, env->answer, &run->lo, &run->hi);
		ns = bk_now_ns() - t0;
	}
	if (ns < 0)
		return -1;
	for (i = 0; i < FL_BATCH; i++)
		if (got[i] != want(&run->q[i]))
			return -1;
	return ns / FL_BATCH;
}

static int search_row(struct floor_env *env, struct floor_row *row)
{
	double ns[FLOOR_METHODS][FLOOR_ROUNDS], r[FLOOR_ROUNDS], rm[FLOOR_ROUNDS];
	unsigned k, b, m;

	for (k = 0; k < FLOOR_ROUNDS; k++) {
		for (m = 0; m < FLOOR_METHODS; m++) {
			enum floor_method mm = (m + k) % FLOOR_METHODS;	/* rotate the order */
			double sum = 0, one;

			for (b = 0; b < FLOOR_BATCHES; b++) {
				one = time_search(env, row->nodes, mm);
				if (one < 0)
					return -1;
				sum += one;
			}
			ns[mm][k] = sum / FLOOR_BATCHES;
		}
		r[k] = ns[FLOOR_BPF][k] / ns[FLOOR_C][k];
		rm[k] = ns[FLOOR_BPF][k] / ns[FLOOR_C_MEM][k];
	}
	for (m = 0; m < FLOOR_METHODS; m++)
		row->search_ns[m] = bk_median(ns[m], FLOOR_ROUNDS);
	row->r_search = bk_median(r, FLOOR_ROUNDS);
	row->r_search_mem = bk_median(rm, FLOOR_ROUNDS);
	return 0;
}

/*
 * The first @nodes_used nodes as one random cycle through their lines
 * (the first word of each line names the next), and each chain started
 * on its own arc of it.  The links are written in address order, not in
 * the cycle's: written along the cycle, the arcs written last (the
 * one-chain ones, C's last of all) would be the ones still cached when
 * the chases start.  At 64 MiB each chain's run stays on its own arc; at
 * 512 KiB and 8 MiB the rounds walk past the arcs' ends into others',
 * footprints the caches hold anyway.
 */
static int make_cycle(struct floor_env *env, unsigned nodes_used)
{
	uint32_t n = nodes_used * FL_NODE_LINES, i, *perm = malloc(n * sizeof(*perm));
	uint32_t *next = malloc(n * sizeof(*next));
	uint32_t *words = (uint32_t *)env->nodes;

	if (!perm || !next) {
		free(perm);
		free(next);
		return -ENOMEM;
	}
	for (i = 0; i < n; i++)
		perm[i] = i;
	for (i = n - 1; i > 0; i--) {
		uint32_t j = bk_rnd(&env->seed) % (i + 1), t = perm[i];

		perm[i] = perm[j];
		perm[j] = t;
	}
	for (i = 0; i < n; i++)
		next[perm[i]] = perm[(i + 1) % n];
	for (i = 0; i < n; i++)
		words[(size_t)i * FL_LINE_WORDS] = next[i];
	for (i = 0; i < NR_ARCS; i++)
		env->at[i] = perm[(size_t)i * n / NR_ARCS];
	free(next);
	free(perm);
	return 0;
}

/* FL_HOPS steps of @chains chains from @at, each a load at the line the last named. */
static __attribute__((noinline)) void c_chase(const uint32_t *words, uint32_t *at,
					      unsigned chains)
{
	uint32_t a = at[0], b, c, d;
	unsigned i;

	if (chains == 1) {
		for (i = 0; i < FL_HOPS; i++)
			a = words[(size_t)a * FL_LINE_WORDS];
		at[0] = a;
		return;
	}
	b = at[1];
	c = at[2];
	d = at[3];
	for (i = 0; i < FL_HOPS; i++) {
		a = words[(size_t)a * FL_LINE_WORDS];
		b = words[(size_t)b * FL_LINE_WORDS];
		c = words[(size_t)c * FL_LINE_WORDS];
		d = words[(size_t)d * FL_LINE_WORDS];
	}
	at[0] = a;
	at[1] = b;
	at[2] = c;
	at[3] = d;
}

/*
 * The program's chase from @at (moved on): ns per step, or -1 if it failed
 * or did not end where C, walking the same chains after it, ends.
 */
static double bpf_chase(struct floor_env *env, uint32_t *at, unsigned chains)
{
	struct fl_run *run = env->run;
	double ns;

	memcpy(run->at, at, chains * sizeof(*at));
	run->chains = chains;
	ns = run_prog(env->skel->progs.fl_chase);
	c_chase((const uint32_t *)env->nodes, at, chains);
	if (ns < 0 || memcmp(run->at, at, chains * sizeof(*at)))
		return -1;
	return ns / FL_HOPS;
}

/* C's chase from @at (moved on): ns per step. */
static double time_c_chase(struct floor_env *env, uint32_t *at, unsigned chains)
{
	double t0 = bk_now_ns();

	c_chase((const uint32_t *)env->nodes, at, chains);
	return (bk_now_ns() - t0) / FL_HOPS;
}

static int chase_row(struct floor_env *env, struct floor_row *row)
{
	static const struct { unsigned chains, bpf_arc, c_arc; } kind[2] = {
		{ 1, ARC_BPF1, ARC_C1 },
		{ FL_CHAINS, ARC_BPF4, ARC_C4 },
	};
	double ns[2][2][FLOOR_ROUNDS], r[2][FLOOR_ROUNDS];
	unsigned k, c;

	if (make_cycle(env, row->nodes))
		return -1;
	for (k = 0; k < FLOOR_ROUNDS; k++) {
		for (c = 0; c < 2; c++) {
			uint32_t *bpf_at = &env->at[kind[c].bpf_arc], *c_at = &env->at[kind[c].c_arc];

			if (k % 2) {
				ns[c][1][k] = time_c_chase(env, c_at, kind[c].chains);
				ns[c][0][k] = bpf_chase(env, bpf_at, kind[c].chains);
			} else {
				ns[c][0][k] = bpf_chase(env, bpf_at, kind[c].chains);
				ns[c][1][k] = time_c_chase(env, c_at, kind[c].chains);
			}
			if (ns[c][0][k] < 0)
				return -1;
			r[c][k] = ns[c][0][k] / ns[c][1][k];
		}
	}
	for (c = 0; c < 2; c++) {
		row->chase_ns[c][0] = bk_median(ns[c][0], FLOOR_ROUNDS);
		row->chase_ns[c][1] = bk_median(ns[c][1], FLOOR_ROUNDS);
		row->r_chase[c] = bk_median(r[c], FLOOR_ROUNDS);
	}
	return 0;
}

static void print_row(const struct floor_row *w)
{
	size_t kib = w->nodes * sizeof(struct fl_node) / 1024;
	char size[24];

	if (kib % 1024)
		snprintf(size, sizeof(size), "%zu KiB", kib);
	else
		snprintf(size, sizeof(size), "%zu MiB", kib / 1024);
	printf("%-9s %5u | %7.1f %7.1f %7.1f %5.2f %5.2f | %7.1f %7.1f %5.2f | %7.1f %7.1f %5.2f\n",
	       size, w->nodes, w->search_ns[FLOOR_BPF], w->search_ns[FLOOR_C],
	       w->search_ns[FLOOR_C_MEM], w->r_search, w->r_search_mem, w->chase_ns[0][0],
	       w->chase_ns[0][1], w->r_chase[0], w->chase_ns[1][0], w->chase_ns[1][1],
	       w->r_chase[1]);
}

static void json_row(FILE *json, const struct floor_row *w, bool first)
{
	fprintf(json, "%s{\"footprint_bytes\":%zu,\"nodes\":%u,"
		"\"search_ns\":{\"bpf\":%.1f,\"c\":%.1f,\"c_lo_hi_in_memory\":%.1f},"
		"\"search_bpf_over_c\":%.3f,\"search_bpf_over_c_lo_hi_in_memory\":%.3f,"
		"\"chase_ns\":{\"bpf_1\":%.1f,\"c_1\":%.1f,\"bpf_4\":%.1f,\"c_4\":%.1f},"
		"\"chase_bpf_over_c\":{\"chains_1\":%.3f,\"chains_4\":%.3f}}",
		first ? "" : ",", (size_t)w->nodes * sizeof(struct fl_node), w->nodes,
		w->search_ns[FLOOR_BPF], w->search_ns[FLOOR_C], w->search_ns[FLOOR_C_MEM],
		w->r_search, w->r_search_mem, w->chase_ns[0][0], w->chase_ns[0][1],
		w->chase_ns[1][0], w->chase_ns[1][1], w->r_chase[0], w->r_chase[1]);
}

/* The nodes' keys: key i of node n is FL_KEY_STEP * (n * FL_NODE_KEYS + i). */
static void fill_keys(struct fl_node *nodes)
{
	uint32_t n, i;

	for (n = 0; n < FL_MAX_NODES; n++)
		for (i = 0; i < FL_NODE_KEYS; i++)
			nodes[n].k[i] = FL_KEY_STEP * (n * FL_NODE_KEYS + i);
}

static int measure(struct floor_env *env, struct floor_row *rows)
{
	static const unsigned footprint[FLOOR_ROWS] = { 8, 128, FL_MAX_NODES };
	unsigned i;

	fill_keys(env->nodes);
	for (i = 0; i < FLOOR_ROWS; i++) {
		rows[i].nodes = footprint[i];
		if (search_row(env, &rows[i])) {
			fprintf(stderr, "bench: search floor: a wrong answer or a failed run (%u nodes)\n",
				footprint[i]);
			return -1;
		}
	}
	/* after every search: the chases rewrite the nodes */
	for (i = 0; i < FLOOR_ROWS; i++)
		if (chase_row(env, &rows[i])) {
			fprintf(stderr, "bench: search floor: a chase failed or went astray (%u nodes)\n",
				footprint[i]);
			return -1;
		}
	return 0;
}

int floor_table(FILE *json)
{
	struct floor_row rows[FLOOR_ROWS] = {};
	const size_t nodes_len = (size_t)FL_MAX_NODES * sizeof(struct fl_node);
	struct floor_env *env = calloc(1, sizeof(*env));
	int ret = 1;
	unsigned i;

	if (!env) {
		fprintf(stderr, "bench: search floor: %s\n", strerror(ENOMEM));
		return 1;
	}
	env->seed = 0xf1002e5eedULL;
	env->nodes = MAP_FAILED;
	env->run = MAP_FAILED;
	if (libbpf_probe_bpf_helper(BPF_PROG_TYPE_SOCKET_FILTER, BPF_FUNC_loop, NULL) <= 0) {
		printf("\nfloor: skipped: this kernel has no bpf_loop() (5.17)\n");
		ret = 0;
		goto cleanup;
	}
	env->skel = search_floor_bpf__open_and_load();
	if (!env->skel) {
		fprintf(stderr, "bench: cannot load bpf/search_floor.bpf.c: %s "
			"(BK_BENCH_LIBBPF_LOG=1 prints the verifier's log)\n", strerror(errno));
		goto cleanup;
	}
	env->nodes = mmap(NULL, nodes_len, PROT_READ | PROT_WRITE, MAP_SHARED,
			  bpf_map__fd(env->skel->maps.fl_nodes), 0);
	env->run = mmap(NULL, sizeof(*env->run), PROT_READ | PROT_WRITE, MAP_SHARED,
			bpf_map__fd(env->skel->maps.fl_run), 0);
	if (env->nodes == MAP_FAILED || env->run == MAP_FAILED) {
		fprintf(stderr, "bench: search floor: cannot map its maps: %s\n", strerror(errno));
		goto cleanup;
	}
	if (measure(env, rows))
		goto cleanup;

	printf("\n%-9s %5s | %7s %7s %7s %5s %5s | %7s %7s %5s | %7s %7s %5s\n", "floor", "nodes",
	       "bpf", "C", "C mem", "/C", "/Cmem", "chase1", "C", "/C", "chase4", "C", "/C");
	for (i = 0; i < FLOOR_ROWS; i++) {
		print_row(&rows[i]);
		if (json)
			json_row(json, &rows[i], !i);
	}
	printf("\nfloor: a clang-built BPF binary search (16384 sorted u32 per 64 KiB node,\n"
	       "bpf_loop a query, lo and hi through its map) against the same in C over the\n"
	       "same map's mmap (C: lo, hi in registers; C mem: in the map, as BPF has them),\n"
	       "ns per search, each side on its own random queries, every answer checked;\n"
	       "chase1/chase4: ns per step of 1 or 4 chains of dependent loads through a\n"
	       "random cycle of the nodes' 64-byte lines, each chain on its own arc, BPF and\n"
	       "C. Medians of %d rounds. The lookup's kernel/C ratio ('sudo ./loader') is\n"
	       "measured over the same kind of memory; this is what BPF as such costs there,\n"
	       "with no generator.\n", FLOOR_ROUNDS);
	ret = 0;
cleanup:
	if (env->run != MAP_FAILED)
		munmap(env->run, sizeof(*env->run));
	if (env->nodes != MAP_FAILED)
		munmap(env->nodes, nodes_len);
	search_floor_bpf__destroy(env->skel);
	free(env);
	return ret;
}
