// SPDX-License-Identifier: GPL-2.0
/*
 * The search floor: what the kernel's BPF takes over C for a plain
 * binary search and for dependent loads, with no generator in between.
 *
 * bpf/search_floor.bpf.c is compiled by clang.  Here the same search runs
 * in C over the same nodes, read through the map's mmap: once with lo and
 * hi in registers (what a C compiler makes) and once with them in the
 * map, as the BPF program keeps them.  Each side gets its own random
 * queries, so neither finds the lines the other just read; every answer
 * is checked (key i of every node is 7 * i).  Then the nodes are rewritten
 * as one random cycle through all their 64-byte lines, and chains of
 * dependent loads follow it: one chain (latency) and four at once (loads
 * in flight).  Footprints: 512 KiB (in L2), 8 MiB (in L3 and the TLB's
 * reach), 64 MiB (memory).  Medians of interleaved rounds with the order
 * rotated.
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
#define KEY_STEP	7

enum fl_method { FL_BPF, FL_C, FL_C_MEM, FL_NR };

struct floor_row {
	unsigned	nodes;
	double		search_ns[FL_NR];	/* per search */
	double		r_search, r_search_mem;	/* bpf over C, bpf over C with lo, hi in memory */
	double		chase_ns[2][2];		/* [1 chain, 4 chains][bpf, C], per step */
	double		r_chase[2];
};

static uint64_t floor_seed = 0xf1002e5eedULL;

static uint32_t floor_rnd(void)
{
	floor_seed ^= floor_seed << 13;
	floor_seed ^= floor_seed >> 7;
	floor_seed ^= floor_seed << 17;
	return (uint32_t)floor_seed;
}

static void make_queries(struct fl_query *q, unsigned nodes)
{
	unsigned i;

	for (i = 0; i < FL_BATCH; i++) {
		q[i].node = floor_rnd() % nodes;
		q[i].key = floor_rnd() % (KEY_STEP * FL_NODE_KEYS);
	}
}

/* The first key >= @key when key i is KEY_STEP * i. */
static uint32_t want(uint32_t key)
{
	return (key + KEY_STEP - 1) / KEY_STEP;
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
			uint32_t mid = (*lo + *hi) / 2;

			if (mid >= FL_NODE_KEYS)
				break;
			if (k[mid] >= q[i].key)
				*hi = mid;
			else
				*lo = mid + 1;
		}
		answer[i] = *lo;
	}
}

static int run_prog(int fd, double *ns)
{
	unsigned char pkt[64] = {};
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = pkt, .data_size_in = sizeof(pkt),
		    .repeat = 1);

	if (bpf_prog_test_run_opts(fd, &opts))
		return -errno;
	*ns = opts.duration;
	return 0;
}

/* One batch of @m's searches over the first @nodes nodes: ns per search, or -1 if wrong. */
static double time_search(struct search_floor_bpf *skel, struct fl_node *nodes,
			  struct fl_run *run, unsigned nodes_used, enum fl_method m)
{
	static uint32_t answer[FL_BATCH];
	uint32_t *got = m == FL_BPF ? run->answer : answer;
	double ns = 0;
	unsigned i;

	make_queries(run->q, nodes_used);
	run->nq = FL_BATCH;
	if (m == FL_BPF) {
		if (run_prog(bpf_program__fd(skel->progs.fl_search), &ns))
			return -1;
	} else {
		double t0 = bk_now_ns();

		if (m == FL_C)
			c_search(nodes, run->q, answer);
		else
			c_search_mem(nodes, run->q, answer, &run->lo, &run->hi);
		ns = bk_now_ns() - t0;
	}
	for (i = 0; i < FL_BATCH; i++)
		if (got[i] != want(run->q[i].key))
			return -1;
	return ns / FL_BATCH;
}

/* The nodes as one random cycle through the first @nodes nodes' lines. */
static int make_cycle(struct fl_node *nodes, unsigned nodes_used)
{
	uint32_t n = nodes_used * FL_NODE_LINES, i, *perm = malloc(n * sizeof(*perm));
	uint32_t *words = (uint32_t *)nodes;

	if (!perm)
		return -ENOMEM;
	for (i = 0; i < n; i++)
		perm[i] = i;
	for (i = n - 1; i > 0; i--) {
		uint32_t j = floor_rnd() % (i + 1), t = perm[i];

		perm[i] = perm[j];
		perm[j] = t;
	}
	for (i = 0; i < n; i++)
		words[(size_t)perm[i] * FL_LINE_WORDS] = perm[(i + 1) % n];
	free(perm);
	return 0;
}

static __attribute__((noinline)) void c_chase(const uint32_t *words, uint32_t *at,
					      unsigned chains)
{
	uint32_t a = at[0], b = at[1], c = at[2], d = at[3];
	unsigned i;

	if (chains == 1) {
		for (i = 0; i < FL_HOPS; i++)
			a = words[(size_t)a * FL_LINE_WORDS];
	} else {
		for (i = 0; i < FL_HOPS; i++) {
			a = words[(size_t)a * FL_LINE_WORDS];
			b = words[(size_t)b * FL_LINE_WORDS];
			c = words[(size_t)c * FL_LINE_WORDS];
			d = words[(size_t)d * FL_LINE_WORDS];
		}
	}
	at[0] = a;
	at[1] = b;
	at[2] = c;
	at[3] = d;
}

/* FL_HOPS steps of @chains chains: ns per step (a load in each chain), or -1. */
static double time_chase(struct search_floor_bpf *skel, struct fl_node *nodes,
			 struct fl_run *run, unsigned chains, bool bpf, uint32_t *c_at)
{
	uint32_t start[FL_CHAINS];
	double ns;

	if (bpf) {
		memcpy(start, run->at, sizeof(start));
		run->chains = chains;
		if (run_prog(bpf_program__fd(skel->progs.fl_chase), &ns))
			return -1;
		/* the kernel followed the same cycle as C would have */
		c_chase((const uint32_t *)nodes, start, chains);
		if (memcmp(start, run->at, chains * sizeof(start[0])))
			return -1;
	} else {
		double t0 = bk_now_ns();

		c_chase((const uint32_t *)nodes, c_at, chains);
		ns = bk_now_ns() - t0;
	}
	return ns / FL_HOPS;
}

static int search_row(struct search_floor_bpf *skel, struct fl_node *nodes, struct fl_run *run,
		      struct floor_row *row)
{
	double ns[FL_NR][FLOOR_ROUNDS], r[FLOOR_ROUNDS], rm[FLOOR_ROUNDS];
	unsigned k, b;
	int m;

	for (k = 0; k < FLOOR_ROUNDS; k++) {
		for (m = 0; m < FL_NR; m++) {
			enum fl_method mm = (m + k) % FL_NR;	/* rotate the order */
			double sum = 0, one;

			for (b = 0; b < FLOOR_BATCHES; b++) {
				one = time_search(skel, nodes, run, row->nodes, mm);
				if (one < 0)
					return -1;
				sum += one;
			}
			ns[mm][k] = sum / FLOOR_BATCHES;
		}
		r[k] = ns[FL_BPF][k] / ns[FL_C][k];
		rm[k] = ns[FL_BPF][k] / ns[FL_C_MEM][k];
	}
	for (m = 0; m < FL_NR; m++)
		row->search_ns[m] = bk_median(ns[m], FLOOR_ROUNDS);
	row->r_search = bk_median(r, FLOOR_ROUNDS);
	row->r_search_mem = bk_median(rm, FLOOR_ROUNDS);
	return 0;
}

static int chase_row(struct search_floor_bpf *skel, struct fl_node *nodes, struct fl_run *run,
		     struct floor_row *row)
{
	double ns[2][2][FLOOR_ROUNDS], r[2][FLOOR_ROUNDS];
	uint32_t n = row->nodes * FL_NODE_LINES, c_at[FL_CHAINS];
	unsigned k, c, i;

	if (make_cycle(nodes, row->nodes))
		return -1;
	for (i = 0; i < FL_CHAINS; i++)
		run->at[i] = c_at[i] = floor_rnd() % n;
	for (k = 0; k < FLOOR_ROUNDS; k++) {
		for (c = 0; c < 2; c++) {
			unsigned chains = c ? FL_CHAINS : 1;
			bool bpf_first = k % 2;

			ns[c][!bpf_first][k] = time_chase(skel, nodes, run, chains, bpf_first, c_at);
			ns[c][bpf_first][k] = time_chase(skel, nodes, run, chains, !bpf_first, c_at);
			if (ns[c][0][k] < 0 || ns[c][1][k] < 0)
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

int floor_table(FILE *json)
{
	static const unsigned footprint[] = { 8, 128, FL_MAX_NODES };
	struct floor_row rows[3] = {};
	size_t nodes_len = (size_t)FL_MAX_NODES * sizeof(struct fl_node);
	size_t run_len = (sizeof(struct fl_run) + 4095) & ~(size_t)4095;
	struct search_floor_bpf *skel = search_floor_bpf__open_and_load();
	struct fl_node *nodes = MAP_FAILED;
	struct fl_run *run = MAP_FAILED;
	unsigned i, j;
	int ret = 1;

	if (!skel) {
		fprintf(stderr, "bench: cannot load bpf/search_floor.bpf.c: %s\n", strerror(errno));
		return 1;
	}
	nodes = mmap(NULL, nodes_len, PROT_READ | PROT_WRITE, MAP_SHARED,
		     bpf_map__fd(skel->maps.fl_nodes), 0);
	run = mmap(NULL, run_len, PROT_READ | PROT_WRITE, MAP_SHARED,
		   bpf_map__fd(skel->maps.fl_run), 0);
	if (nodes == MAP_FAILED || run == MAP_FAILED) {
		fprintf(stderr, "bench: search floor: cannot map its maps: %s\n", strerror(errno));
		goto cleanup;
	}
	for (i = 0; i < FL_MAX_NODES; i++)
		for (j = 0; j < FL_NODE_KEYS; j++)
			nodes[i].k[j] = KEY_STEP * j;
	for (i = 0; i < 3; i++) {
		rows[i].nodes = footprint[i];
		if (search_row(skel, nodes, run, &rows[i])) {
			fprintf(stderr, "bench: search floor: a wrong answer or a failed run (%u nodes)\n",
				footprint[i]);
			goto cleanup;
		}
	}
	for (i = 0; i < 3; i++)
		if (chase_row(skel, nodes, run, &rows[i])) {
			fprintf(stderr, "bench: search floor: a chase went astray or failed (%u nodes)\n",
				footprint[i]);
			goto cleanup;
		}

	printf("\n%-9s %5s | %7s %7s %7s %5s %5s | %7s %7s %5s | %7s %7s %5s\n", "floor", "nodes",
	       "bpf", "C", "C mem", "/C", "/Cmem", "chase1", "C", "/C", "chase4", "C", "/C");
	for (i = 0; i < 3; i++) {
		const struct floor_row *w = &rows[i];

		char size[16];

		if (w->nodes % 16)
			snprintf(size, sizeof(size), "%u KiB", w->nodes * 64);
		else
			snprintf(size, sizeof(size), "%u MiB", w->nodes / 16);
		printf("%-9s %5u | %7.1f %7.1f %7.1f %5.2f %5.2f | %7.1f %7.1f %5.2f | %7.1f %7.1f %5.2f\n",
		       size, w->nodes,
		       w->search_ns[FL_BPF], w->search_ns[FL_C], w->search_ns[FL_C_MEM], w->r_search,
		       w->r_search_mem, w->chase_ns[0][0], w->chase_ns[0][1], w->r_chase[0],
		       w->chase_ns[1][0], w->chase_ns[1][1], w->r_chase[1]);
		if (json)
			fprintf(json, "%s{\"footprint_bytes\":%zu,\"nodes\":%u,"
				"\"search_ns\":{\"bpf\":%.1f,\"c\":%.1f,\"c_lo_hi_in_memory\":%.1f},"
				"\"search_bpf_over_c\":%.3f,\"search_bpf_over_c_lo_hi_in_memory\":%.3f,"
				"\"chase_ns\":{\"bpf_1\":%.1f,\"c_1\":%.1f,\"bpf_4\":%.1f,\"c_4\":%.1f},"
				"\"chase_bpf_over_c\":{\"chains_1\":%.3f,\"chains_4\":%.3f}}",
				i ? "," : "", (size_t)w->nodes * sizeof(struct fl_node), w->nodes,
				w->search_ns[FL_BPF], w->search_ns[FL_C], w->search_ns[FL_C_MEM],
				w->r_search, w->r_search_mem, w->chase_ns[0][0], w->chase_ns[0][1],
				w->chase_ns[1][0], w->chase_ns[1][1], w->r_chase[0], w->r_chase[1]);
	}
	printf("\nfloor: a clang-built BPF binary search (16384 sorted u32 per 64 KiB node,\n"
	       "bpf_loop a query, lo and hi through its map) against the same in C over the\n"
	       "same map's mmap (C: lo, hi in registers; C mem: in the map, as BPF has them),\n"
	       "ns per search, each side on its own random queries, every answer checked;\n"
	       "chase1/chase4: ns per step of 1 or 4 chains of dependent loads through a\n"
	       "random cycle of the nodes' 64-byte lines, BPF and C. Medians of %d rounds.\n"
	       "The lookup's kernel/C ratio ('sudo ./loader') is measured over the same\n"
	       "kind of memory; this is what BPF as such costs there, with no generator.\n",
	       FLOOR_ROUNDS);
	ret = 0;
cleanup:
	if (run != MAP_FAILED)
		munmap(run, run_len);
	if (nodes != MAP_FAILED)
		munmap(nodes, nodes_len);
	search_floor_bpf__destroy(skel);
	return ret;
}
