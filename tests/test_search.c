// SPDX-License-Identifier: GPL-2.0
/*
 * The generated node search in the kernel against the C algorithm
 * (bk_node_lower_bound) and the model's lossy packing, on real trees.
 */
#define _GNU_SOURCE	/* qsort_r */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "test_progs.h"
#include "btree.h"
#include "kenv.h"
#include "nodecache.h"

struct search_env {
	int			ctl_fd, nodes_fd;
	struct bk_search_ctl	*ctl;
	size_t			ctl_len;
	/* one loaded program per distinct format */
	struct bk_loaded	*progs;
	uint32_t		nr_fmts;
};

static void env_close(struct search_env *se)
{
	uint32_t i;

	for (i = 0; i < se->nr_fmts; i++)
		bk_prog_unload(&se->progs[i]);
	free(se->progs);
	if (se->ctl)
		munmap(se->ctl, se->ctl_len);
	if (se->ctl_fd >= 0)
		close(se->ctl_fd);
	if (se->nodes_fd >= 0)
		close(se->nodes_fd);
}

/*
 * The searches and lookups of the trees and lookups subtests: the may_goto
 * loop, unrolled (no may_goto, as kernels before 6.9 load them), or a step
 * per bpf_loop callback; each that the kernel can load.
 */
static enum bk_search_loop search_loop;

/* qsort_r's order of node indices: by their formats' bytes. */
static int cmp_node_fmt(const void *a, const void *b, void *arg)
{
	const struct bk_btree *bt = arg;

	return memcmp(&bt->nodes[*(const uint32_t *)a].f, &bt->nodes[*(const uint32_t *)b].f,
		      sizeof(struct bkey_format));
}

/*
 * One program of @o's kind per distinct format of @bt, loaded into
 * loaded[] (room for one per node); node i's format id in fmt_of[i].  The
 * formats are found by sorting the nodes by format, not by comparing each
 * node with every format before it.  Returns how many, or -1 (asserted).
 */
static int load_format_progs(const struct bk_btree *bt, const struct bk_search_opts *o,
			     struct bk_loaded *loaded, uint32_t *fmt_of)
{
	uint32_t *order = calloc(bt->nr_nodes + 1, sizeof(*order));
	struct bk_prog p = {};
	int nr = 0, ret = 0;
	uint32_t i;

	if (!ASSERT_TRUE(order, "memory for the node order"))
		return -1;
	for (i = 0; i < bt->nr_nodes; i++)
		order[i] = i;
	qsort_r(order, bt->nr_nodes, sizeof(*order), cmp_node_fmt, (void *)bt);
	for (i = 0; i < bt->nr_nodes && !ret; i++) {
		const struct bk_node *n = &bt->nodes[order[i]];

		if (i && !cmp_node_fmt(&order[i - 1], &order[i], (void *)bt)) {
			fmt_of[order[i]] = nr - 1;
			continue;
		}
		ret = bk_gen_search(&n->f, o, &p, NULL);
		if (!ASSERT_OK(ret, "generate"))
			break;
		ret = bk_prog_load_report(&p, &loaded[nr], stderr,
					  o->lookup ? "lookup" : "node search", NULL, 0);
		if (!ASSERT_OK(ret, o->lookup ? "verifier accepts the lookup program" :
						"verifier accepts the search program"))
			break;
		fmt_of[order[i]] = nr++;
	}
	bk_prog_release(&p);
	free(order);
	if (ret) {
		while (nr)
			bk_prog_unload(&loaded[--nr]);
		return -1;
	}
	return nr;
}

/* The nodes in a map, a program per format; *fmt_of[i] = node i's. */
static bool env_open(struct search_env *se, const struct bk_btree *bt, uint32_t *fmt_of,
		     struct kcheck_stats *st)
{
	LIBBPF_OPTS(bpf_map_create_opts, mo, .map_flags = BPF_F_MMAPABLE);
	unsigned vsize = bk_node_value_size(bt->o.node_size);
	struct bk_search_opts o = {
		.node_size = bt->o.node_size, .loop = search_loop,
	};
	void *img = malloc(vsize);
	uint32_t i;
	int nr;

	memset(se, 0, sizeof(*se));
	se->ctl_fd = se->nodes_fd = -1;
	se->ctl_len = sysconf(_SC_PAGESIZE);	/* the ctl map's one value, mmap'ed */
	se->ctl_fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "bk_sctl", 4, sizeof(struct bk_search_ctl), 1, &mo);
	se->nodes_fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "bk_nodes", 4, vsize, bt->nr_nodes, NULL);
	if (!ASSERT_GE(se->ctl_fd, 0, "ctl map") || !ASSERT_GE(se->nodes_fd, 0, "nodes map"))
		goto fail;
	se->ctl = mmap(NULL, se->ctl_len, PROT_READ | PROT_WRITE, MAP_SHARED, se->ctl_fd, 0);
	if (!ASSERT_TRUE(se->ctl != MAP_FAILED, "mmap ctl")) {
		se->ctl = NULL;
		goto fail;
	}
	se->progs = calloc(bt->nr_nodes, sizeof(*se->progs));
	if (!ASSERT_TRUE(img && se->progs, "memory for the programs"))
		goto fail;
	o.ctl_fd = se->ctl_fd;
	o.nodes_fd = se->nodes_fd;
	nr = load_format_progs(bt, &o, se->progs, fmt_of);
	if (nr < 0)
		goto fail;
	se->nr_fmts = nr;
	st->accepted += nr;
	for (i = 0; i < bt->nr_nodes; i++) {
		bk_node_image(&bt->nodes[i], bt->o.node_size, fmt_of[i], 0, img);
		if (!ASSERT_OK(bpf_map_update_elem(se->nodes_fd, &i, img, 0), "node into map"))
			goto fail;
	}
	free(img);
	return true;
fail:
	free(img);
	env_close(se);
	return false;
}

static bool check_search(struct search_env *se, const struct bk_btree *bt, uint32_t node,
			 uint32_t fmt, struct bpos pos, unsigned long counts[3])
{
	const struct bk_node *n = &bt->nodes[node];
	uint64_t packed[5];
	enum bkey_pack_pos_ret r = bkey_pack_pos_lossy(&n->f, pos, packed);
	unsigned char pkt[64] = {};
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = pkt, .data_size_in = sizeof(pkt), .repeat = 1);

	se->ctl->inode = pos.inode;
	se->ctl->offset = pos.offset;
	se->ctl->snapshot = pos.snapshot;
	se->ctl->node = node;
	se->ctl->status = ~0u;
	if (!ASSERT_OK(bpf_prog_test_run_opts(se->progs[fmt].fd, &opts), "run"))
		return false;
	counts[r]++;
	return ASSERT_EQ(se->ctl->status, BK_OK, "status") &&
	       ASSERT_EQ(se->ctl->lossy, r, "lossy result") &&
	       ASSERT_EQ(se->ctl->idx, bk_node_lower_bound(n, pos), "first key >= pos");
}

static void make_tree_keys(uint64_t *seed, size_t nr, struct bk_keyset *ks)
{
	struct bpos p = { 4096, 0, 0 };
	uint64_t val[4] = { 1, 2, 3, 4 };
	char err[100];
	size_t i;

	for (i = 0; i < nr; i++) {
		struct bkey k = { .format_nw = KEY_FORMAT_CURRENT, .type = 6 };

		if (!rnd_below(seed, 40)) {
			p.inode += 1 + rnd_below(seed, rnd_below(seed, 4) ? 8 : 1ULL << 50);
			p.offset = rnd_below(seed, 1000);
		} else {
			p.offset += 1 + rnd_below(seed, 1ULL << rnd_below(seed, 30));
		}
		p.snapshot = rnd_below(seed, 3) ? UINT32_MAX : rnd_next(seed);
		k.inode = p.inode;
		k.offset = p.offset;
		k.snapshot = p.snapshot;
		k.size = rnd_below(seed, 64);
		k.u64s = BKEY_U64s + rnd_below(seed, 3);
		bk_keyset_add(ks, &k, val);
	}
	bk_keyset_sort(ks, err, sizeof(err));
}

static void trees(struct kenv *k)
{
	static const struct { size_t keys; unsigned node_size, sample; } cases[] = {
		{ 3000, 512, 0 }, { 20000, 4096, 0 }, { 5000, 1024, 3 }, { 20000, 2048, 12 },
	};
	unsigned long counts[3] = {}, searches = 0;
	struct kcheck_stats st = {};
	uint64_t seed = 0x5eed0601;
	unsigned c;

	for (c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		struct bk_btree_opts o = { .node_size = cases[c].node_size,
					   .format_sample = cases[c].sample };
		struct bk_keyset ks = {};
		struct search_env se;
		struct bk_btree bt;
		uint32_t *fmt_of, i, j;
		char err[200];
		bool ok = true;

		make_tree_keys(&seed, cases[c].keys, &ks);
		if (!ASSERT_OK(bk_btree_build(&bt, &ks, &o, err, sizeof(err)), err))
			return;
		fmt_of = calloc(bt.nr_nodes, sizeof(*fmt_of));
		if (!env_open(&se, &bt, fmt_of, &st)) {
			free(fmt_of);
			bk_btree_free(&bt);
			bk_keyset_free(&ks);
			return;
		}
		for (i = 0; i < bt.nr_nodes && ok; i++) {
			const struct bk_node *n = &bt.nodes[i];

			/* each key, just below it, its snapshot 0, and random spots */
			for (j = 0; j < n->nr_keys && ok; j += 1 + n->nr_keys / 16) {
				struct bkey key;
				struct bpos p;

				bk_node_key(n, j, &key);
				p = (struct bpos){ key.inode, key.offset, key.snapshot };
				ok &= check_search(&se, &bt, i, fmt_of[i], p, counts);
				if (p.snapshot) {
					p.snapshot--;
					ok &= check_search(&se, &bt, i, fmt_of[i], p, counts);
				}
				p.snapshot = 0;
				ok &= check_search(&se, &bt, i, fmt_of[i], p, counts);
				p.offset = rnd_next(&seed);
				ok &= check_search(&se, &bt, i, fmt_of[i], p, counts);
				searches += 4;
			}
			ok &= check_search(&se, &bt, i, fmt_of[i], (struct bpos){ 0, 0, 0 }, counts);
			ok &= check_search(&se, &bt, i, fmt_of[i],
					   (struct bpos){ UINT64_MAX, UINT64_MAX, UINT32_MAX }, counts);
		}
		env_close(&se);
		free(fmt_of);
		bk_btree_free(&bt);
		bk_keyset_free(&ks);
		if (!ok)
			return;
	}
	ASSERT_GT(counts[BKEY_PACK_POS_SMALLER], 0, "SMALLER searches");
	ASSERT_GT(counts[BKEY_PACK_POS_FAIL], 0, "FAIL searches");
	test__count("node searches: programs accepted by the verifier", st.accepted);
	test__count("node searches checked (kernel == C)", counts[0] + counts[1] + counts[2]);
	test__count("node searches, smaller packing", counts[BKEY_PACK_POS_SMALLER]);
	test__count("node searches, fail packing", counts[BKEY_PACK_POS_FAIL]);
}

/* One lookup program per distinct format, in the prog array; the node images. */
static bool load_lookups(struct bk_lookup_rt *lr, const struct bk_btree *bt, int *prog_fds,
			 struct bk_loaded *loaded, uint32_t *nr_fmts, unsigned long *accepted)
{
	struct bk_search_opts o = {
		.node_size = bt->o.node_size, .lookup = true, .ctl_fd = lr->ctl_fd,
		.nodes_fd = lr->nodes_fd, .progs_fd = lr->progs_fd,
		.strict_align = bk_strict_align_default(),
		.loop = search_loop,
	};
	uint32_t *fmt_of = calloc(bt->nr_nodes + 1, sizeof(*fmt_of));
	int nr = fmt_of ? load_format_progs(bt, &o, loaded, fmt_of) : -1;
	bool ok = nr >= 0;
	uint32_t i;

	*nr_fmts = nr > 0 ? nr : 0;
	*accepted += *nr_fmts;
	for (i = 0; i < *nr_fmts && ok; i++) {
		prog_fds[i] = loaded[i].fd;
		ok &= ASSERT_OK(bk_lookup_set_prog(lr, i, loaded[i].fd), "prog array");
	}
	for (i = 0; i < bt->nr_nodes && ok; i++)
		bk_node_image(&bt->nodes[i], bt->o.node_size, fmt_of[i], 0,
			      (uint8_t *)lr->nodes + (size_t)i * lr->node_value_size);
	free(fmt_of);
	return ok;
}

static unsigned long lossy_seen[3];	/* how queries packed into their answer's leaf */

static bool check_results(const struct bk_lookup_rt *lr, const struct bk_btree *bt,
			  const struct bk_keyset *ks, uint32_t nq)
{
	uint32_t i;

	for (i = 0; i < nq; i++) {
		const struct bk_query *q = &lr->queries[i];
		const struct bk_result *r = &lr->results[i];
		size_t want = bk_keyset_lower_bound(ks, (struct bpos){ q->inode, q->offset,
								      q->snapshot });
		struct bkey k;
		const uint64_t *val;

		if (want == ks->nr) {
			if (!ASSERT_EQ(r->found, 0, "nothing at or above"))
				return false;
			continue;
		}
		if (!ASSERT_EQ(r->found, 1, "found") ||
		    !ASSERT_MEMEQ(r->key, &ks->keys[want].k, 40, "the first key >= the query") ||
		    !ASSERT_LE(r->node, bt->nr_leaves - 1, "in a leaf"))
			return false;
		{
			uint64_t packed[5];

			lossy_seen[bkey_pack_pos_lossy(&bt->nodes[r->node].f,
						       (struct bpos){ q->inode, q->offset, q->snapshot },
						       packed)]++;
		}
		/* its value, from the node image as a caller reads it */
		val = bk_node_key(&bt->nodes[r->node], r->idx, &k);
		if (!ASSERT_MEMEQ(val, bk_keyset_val(ks, &ks->keys[want]),
				  8 * (k.u64s - BKEY_U64s), "value"))
			return false;
	}
	return true;
}

/* @few: the smallest, a 4 KiB and the 64 KiB case only (a second shape's run) */
static void lookups(struct kenv *k, bool few)
{
	static const struct { size_t keys; unsigned node_size, sample; } cases[] = {
		{ 5, 512, 0 }, { 3000, 512, 0 }, { 60000, 512, 0 }, { 20000, 4096, 0 },
		{ 5000, 1024, 3 }, { 100000, 16384, 0 },
		{ 60000, 65536, 0 },	/* the table past a 16-bit instruction offset */
	};
	unsigned long accepted = 0, lookups_done = 0, runs = 0, depth_mask = 0, splits_deep = 0, classes[3] = {};
	unsigned long long run_ns = 0;
	uint64_t seed = 0x5eed0701;
	unsigned c;

	for (c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		struct bk_btree_opts o = { .node_size = cases[c].node_size,
					   .format_sample = cases[c].sample };
		struct bk_lookup_stats lst = {}, split_st = {};
		struct bk_keyset ks = {};
		struct bk_lookup_rt lr;
		struct bk_btree bt;
		struct bk_loaded *loaded;
		int *prog_fds;
		uint32_t nr_fmts = 0, i, nq = 0, f, status = ~0u;
		char err[200];
		bool ok;

		if (few && c != 0 && c != 3 && c != 6)
			continue;
		make_tree_keys(&seed, cases[c].keys, &ks);
		if (!ASSERT_OK(bk_btree_build(&bt, &ks, &o, err, sizeof(err)), err))
			return;
		depth_mask |= 1UL << bt.depth;
		loaded = calloc(bt.nr_nodes, sizeof(*loaded));
		prog_fds = calloc(bt.nr_nodes, sizeof(*prog_fds));
		ok = ASSERT_OK(bk_lookup_rt_open(&lr, o.node_size, bt.nr_nodes, bt.nr_nodes), "maps") &&
		     load_lookups(&lr, &bt, prog_fds, loaded, &nr_fmts, &accepted);
		const struct bk_lookup_tree tree = {
			.prog_fd_by_fid = prog_fds, .nr_fids = nr_fmts, .slot_first = 0,
			.slot_end = bt.nr_nodes, .root = bt.root, .root_level = bt.depth - 1,
			.depth = bt.depth,
		};
		struct bk_lookup_tree tree_split = tree;

		tree_split.per_run = 33;
		/* batches: every key's position, below it, snapshot 0, random */
		for (i = 0; ok && i < ks.nr; i += 1 + ks.nr / 3000) {
			const struct bkey *key = &ks.keys[i].k;
			struct bk_query qs[4] = {
				{ key->inode, key->offset, key->snapshot },
				{ key->inode, key->offset, key->snapshot - 1 },
				{ key->inode, key->offset, 0 },
				{ rnd_next(&seed), rnd_next(&seed), rnd_next(&seed) },
			};
			unsigned j;

			for (j = 0; j < 4; j++)
				lr.queries[nq++] = qs[j];
			if (nq + 6 > BK_BATCH || i + 1 + ks.nr / 3000 >= ks.nr) {
				lr.queries[nq++] = (struct bk_query){ 0, 0, 0 };
				lr.queries[nq++] = (struct bk_query){ UINT64_MAX, UINT64_MAX, UINT32_MAX };
				memset(lr.results, 0xa5, sizeof(*lr.results) * nq);
				ok &= ASSERT_OK(bk_lookup_batch(&lr, &tree, nq, &status, &lst), "batch") &&
				      ASSERT_EQ(status, BK_OK, "batch status");
				ok &= check_results(&lr, &bt, &ks, nq);
				/* the same batch with more lookups a run than its tail
				 * calls allow: walks stop below the root, the
				 * repeats after wait, and the driver resumes them */
				memset(lr.results, 0xa5, sizeof(*lr.results) * nq);
				ok &= ASSERT_OK(bk_lookup_batch(&lr, &tree_split, nq, &status, &split_st),
						"batch, walks split") &&
				      ASSERT_EQ(status, BK_OK, "batch status, walks split");
				ok &= check_results(&lr, &bt, &ks, nq);
				lookups_done += nq;
				nq = 0;
			}
		}
		runs += lst.runs;
		run_ns += lst.run_ns;
		ok &= ASSERT_EQ(lst.split, 0, "every lookup's walk within one run");
		if (bt.depth > 1)
			splits_deep += split_st.split;
		for (f = 0; f < bt.nr_nodes; f++) {
			struct bk_plan plan;
			unsigned fi;

			bk_plan_format(&bt.nodes[f].f, &plan, NULL);
			for (fi = 0; fi < BKEY_NR_FIELDS; fi++) {
				classes[0] += plan.fp[fi].kind == BK_FIELD_CONST;
				classes[1] += plan.fp[fi].kind == BK_FIELD_STRADDLE;
				classes[2] += plan.fp[fi].bits == 64;
			}
		}
		for (f = 0; f < nr_fmts; f++)
			bk_prog_unload(&loaded[f]);
		free(loaded);
		free(prog_fds);
		bk_lookup_rt_close(&lr);
		if (!ok)
			fprintf(stderr, "  case %u: %zu keys, node size %u, depth %u\n", c,
				cases[c].keys, cases[c].node_size, bt.depth);
		bk_btree_free(&bt);
		bk_keyset_free(&ks);
		if (!ok)
			return;
	}
	/* what the cases cover (a run on three cases covers less; the full run
	 * of the same subtest asserts it) */
	if (depth_mask & ~3UL)
		ASSERT_GT(splits_deep, 0, "walks resumed below the root (33 lookups a run)");
	test__count("lookups: walks resumed below the root", splits_deep);
	if (!few) {
		ASSERT_EQ(depth_mask & 0x1e, 0x1e, "depths 1 to 4");
		ASSERT_GT(classes[0], 0, "nodes with zero-width fields");
		ASSERT_GT(classes[1], 0, "nodes with fields straddling words");
		ASSERT_GT(classes[2], 0, "nodes with 64-bit fields");
		ASSERT_GT(lossy_seen[BKEY_PACK_POS_SMALLER], 0,
			  "lookups whose search key packed SMALLER");
		ASSERT_GT(lossy_seen[BKEY_PACK_POS_FAIL], 0, "lookups whose search key FAILed to pack");
	}
	test__count("lookups, smaller packing in the answer's leaf", lossy_seen[BKEY_PACK_POS_SMALLER]);
	test__count("lookups, fail packing in the answer's leaf", lossy_seen[BKEY_PACK_POS_FAIL]);
	test__count("lookups: programs accepted by the verifier", accepted);
	test__count("lookups checked against the sorted array", lookups_done);
	test__count("lookups: program runs", runs);
	printf("  lookups, search %s: %.0f ns per lookup in the kernel (functional run, "
	       "not a benchmark)\n", bk_search_loop_name(search_loop),
	       lookups_done ? (double)run_ns / lookups_done : 0);
}

/* bk_tree_scan through the format cache, across leaves, unpacked keys too. */
static void scans(struct kenv *k)
{
	static const struct { size_t keys; unsigned node_size, sample; } cases[] = {
		{ 20000, 512, 0 }, { 8000, 1024, 3 }, { 30000, 4096, 0 }, { 40000, 65536, 0 },
	};
	static struct bk_result res[3000];
	uint64_t seed = 0x5eed0901;
	unsigned long scanned = 0, unpacked = 0;
	unsigned c;

	for (c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		struct bk_btree_opts o = { .node_size = cases[c].node_size,
					   .format_sample = cases[c].sample };
		struct bk_keyset ks = {};
		struct bk_tree_rt t;
		struct bk_btree bt;
		char err[200];
		unsigned i;
		bool ok = true;

		make_tree_keys(&seed, cases[c].keys, &ks);
		if (!ASSERT_OK(bk_btree_build(&bt, &ks, &o, err, sizeof(err)), err))
			return;
		for (i = 0; i < bt.nr_leaves; i++)
			unpacked += bt.nodes[i].nr_unpacked;
		if (!ASSERT_OK(bk_tree_load(&t, &bt, NULL, stderr), "load")) {
			bk_btree_free(&bt);
			bk_keyset_free(&ks);
			return;
		}
		for (i = 0; i < 40 && ok; i++) {
			const struct bkey *key = &ks.keys[rnd_below(&seed, ks.nr)].k;
			struct bpos from = { key->inode, key->offset, i % 2 ? key->snapshot : 0 };
			size_t count = 1 + rnd_below(&seed, 3000), got, first, j;

			first = bk_keyset_lower_bound(&ks, from);
			ok &= ASSERT_OK(bk_tree_scan(&t, from, count, res, &got), "scan");
			ok &= ASSERT_EQ(got, ks.nr - first < count ? ks.nr - first : count, "keys");
			for (j = 0; j < got && ok; j++) {
				struct bkey kk;
				const uint64_t *val = bk_node_key(&bt.nodes[res[j].node], res[j].idx, &kk);

				ok &= ASSERT_MEMEQ(res[j].key, &ks.keys[first + j].k, 40, "key in order");
				ok &= ASSERT_MEMEQ(val, bk_keyset_val(&ks, &ks.keys[first + j]),
						   8 * (kk.u64s - BKEY_U64s), "value");
			}
			scanned += got;
		}
		bk_tree_unload(&t);
		bk_btree_free(&bt);
		bk_keyset_free(&ks);
		if (!ok)
			return;
	}
	ASSERT_GT(unpacked, 0, "leaves with keys stored unpacked");
	test__count("scanned keys checked against the sorted array", scanned);
}

/*
 * Node images that went bad in the map, each case of issue 6: a lookup
 * (and a scan) through the node stops with an error naming the node and
 * the reason, never a wrong answer.
 */
static void bad_nodes(struct kenv *k)
{
	static const struct { const char *name, *reason; } cases[] = {
		{ "u64s_zero", "u64s = 0" },
		{ "past_end", "runs past the end of the node" },
		{ "format_byte", "format byte is neither 0" },
		{ "value_too_long", "value longer than 250 words" },
		{ "table_outside", "points outside the node" },
	};
	struct bk_btree_opts o = { .node_size = 1024 };
	uint64_t seed = 0x5eed0b01;
	struct bk_keyset ks = {};
	struct bk_tree_rt t;
	struct bk_btree bt;
	char err[300];
	unsigned c;

	make_tree_keys(&seed, 3000, &ks);
	if (!ASSERT_OK(bk_btree_build(&bt, &ks, &o, err, sizeof(err)), err) ||
	    !ASSERT_OK(bk_tree_load(&t, &bt, NULL, stderr), "load"))
		goto out_keys;
	for (c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		uint32_t leaf = bt.nr_leaves / 2, nr = bt.nodes[leaf].nr_keys;
		/* past_end: the last key, whose end is the table's last entry */
		uint32_t j = c == 1 ? nr - 1 : nr / 2;
		uint8_t *img = (uint8_t *)t.nc->lr.nodes + (size_t)leaf * t.nc->lr.node_value_size;
		uint8_t *save = malloc(t.nc->lr.node_value_size);
		uint16_t *tab = (uint16_t *)(img + BK_NODE_WORDS_OFF + o.node_size);
		uint8_t *key = img + BK_NODE_WORDS_OFF + 8 * tab[j];
		struct bkey kk;
		struct bk_result r, sr[4];
		struct bpos p;
		size_t got;

		memcpy(save, img, t.nc->lr.node_value_size);
		bk_node_key(&bt.nodes[leaf], j, &kk);
		p = (struct bpos){ kk.inode, kk.offset, kk.snapshot };
		switch (c) {
		case 0: key[0] = 0; break;
		case 1: tab[nr] = o.node_size / 8 + 1; key[0] = tab[nr] - tab[j]; break;
		case 2: key[1] = 2; break;
		case 3: key[0] = 255; break;
		case 4: tab[j] = o.node_size / 8 + 3; break;
		}
		if (ASSERT_ERR(bk_tree_lookup(&t, &p, 1, &r), cases[c].name)) {
			ASSERT_EQ(t.last_node, leaf, "the failing node");
			bk_tree_bad_reason(&t, err, sizeof(err));
			ASSERT_HAS_SUBSTR(err, cases[c].reason, cases[c].name);
		}
		/* a scan across the node stops there too */
		bk_node_key(&bt.nodes[leaf], 0, &kk);
		ASSERT_ERR(bk_tree_scan(&t, (struct bpos){ kk.inode, kk.offset, kk.snapshot }, 4 + j,
					sr, &got), "scan stops");
		memcpy(img, save, t.nc->lr.node_value_size);
		free(save);
		ASSERT_OK(bk_tree_lookup(&t, &p, 1, &r), "restored");
		ASSERT_TRUE(r.found, "restored: found again");
	}
	bk_tree_unload(&t);
	bk_btree_free(&bt);
out_keys:
	bk_keyset_free(&ks);
}

/*
 * The shape cache: one entry per distinct (key_u64s, widths) among the
 * nodes, whatever their offsets, each counted by its nodes; a lookup
 * through every shape still answers right; and the last node of a shape
 * to go releases its two programs and empties its prog array slot.
 */
static void shape_cache(struct kenv *k)
{
	struct bk_btree_opts o = { .node_size = 1024 };
	uint64_t seed = 0x5eed0a01;
	struct bk_keyset ks = {};
	struct bk_tree_rt t;
	struct bk_btree bt;
	struct bkey_format *shapes;
	uint32_t i, j, nr_shapes = 0, victim, left, id;
	char err[200];

	(void)k;
	make_tree_keys(&seed, 30000, &ks);
	if (!ASSERT_OK(bk_btree_build(&bt, &ks, &o, err, sizeof(err)), err))
		goto out_keys;
	if (!ASSERT_OK(bk_tree_load(&t, &bt, NULL, stderr), "load"))
		goto out_tree;
	shapes = calloc(bt.nr_nodes, sizeof(*shapes));
	for (i = 0; shapes && i < bt.nr_nodes; i++) {
		struct bkey_format f = bt.nodes[i].f;

		memset(f.field_offset, 0, sizeof(f.field_offset));
		for (j = 0; j < nr_shapes && memcmp(&shapes[j], &f, sizeof(f)); j++)
			;
		if (j == nr_shapes)
			shapes[nr_shapes++] = f;
	}
	free(shapes);
	ASSERT_EQ(t.nc->cache.nr, nr_shapes, "one entry per shape");
	ASSERT_GT(t.nr_formats, 2 * t.nc->cache.nr, "many formats, few shapes");
	for (i = 0; i < t.nc->cache.nr; i++) {
		const struct bk_fmt_entry *e = &t.nc->cache.e[i];
		uint32_t users = 0;

		for (j = 0; j < bt.nr_nodes; j++)
			users += t.fid_of_node[j] == e->fid;
		ASSERT_EQ(e->refs, users, "refs = nodes of the shape");
		ASSERT_EQ(e->lookup.by_shape && e->scan.by_shape, 1, "shape programs");
	}
	/* the leaves' shapes all answer: scan the whole tree */
	{
		static struct bk_result res[30000];
		size_t got;

		ASSERT_OK(bk_tree_scan(&t, (struct bpos){ 0, 0, 0 }, ks.nr, res, &got), "scan all");
		ASSERT_EQ(got, ks.nr, "every key");
		for (i = 0; i < got; i++)
			if (!ASSERT_MEMEQ(res[i].key, &ks.keys[i].k, 40, "key in order"))
				break;
	}
	/* drop the nodes of the first node's shape, one by one */
	victim = t.fid_of_node[0];
	left = t.nc->cache.e[victim].refs;
	for (i = 0; i < bt.nr_nodes; i++) {
		if (t.fid_of_node[i] != victim)
			continue;
		bk_tree_drop_node(&t, i);
		if (--left)
			ASSERT_GE(t.nc->cache.e[victim].lookup.fd, 0, "programs stay while nodes use them");
	}
	ASSERT_EQ(t.nc->cache.e[victim].refs, 0, "no node left");
	ASSERT_EQ(t.nc->cache.e[victim].lookup.fd, -1, "lookup program released");
	ASSERT_EQ(t.nc->cache.e[victim].scan.fd, -1, "scan program released");
	ASSERT_ERR(bpf_map_lookup_elem(t.nc->lr.progs_fd, &victim, &id), "prog array slot emptied");
	for (i = 0; i < t.nc->cache.nr; i++)
		if (i != victim)
			ASSERT_GE(t.nc->cache.e[i].lookup.fd, 0, "other shapes keep theirs");
	bk_tree_unload(&t);
out_tree:
	bk_btree_free(&bt);
out_keys:
	bk_keyset_free(&ks);
}

/* Two trees of random keys, built and loaded in order into one node cache. */
struct two_trees {
	struct bk_keyset	ks[2];
	struct bk_btree		bt[2];
	struct bk_tree_rt	t[2];
	struct bk_node_cache	nc;
	unsigned		built, loaded;
	bool			nc_open;
};

static void two_trees_free(struct two_trees *tt)
{
	while (tt->loaded)
		bk_tree_unload(&tt->t[--tt->loaded]);
	if (tt->nc_open)
		bk_node_cache_close(&tt->nc);
	while (tt->built) {
		tt->built--;
		bk_btree_free(&tt->bt[tt->built]);
		bk_keyset_free(&tt->ks[tt->built]);
	}
}

static bool two_trees_load(struct two_trees *tt, const struct bk_btree_opts *o, uint64_t *seed,
			   size_t nr0, size_t nr1)
{
	const size_t nr[2] = { nr0, nr1 };
	char err[200];
	unsigned i;

	memset(tt, 0, sizeof(*tt));
	for (i = 0; i < 2; i++) {
		make_tree_keys(seed, nr[i], &tt->ks[i]);
		tt->built++;
		if (!ASSERT_OK(bk_btree_build(&tt->bt[i], &tt->ks[i], o, err, sizeof(err)), err))
			return false;
	}
	if (!ASSERT_OK(bk_node_cache_open(&tt->nc, o->node_size,
					  tt->bt[0].nr_nodes + tt->bt[1].nr_nodes), "node cache"))
		return false;
	tt->nc_open = true;
	for (i = 0; i < 2; i++) {
		if (!ASSERT_OK(bk_tree_load(&tt->t[i], &tt->bt[i], &tt->nc, stderr),
			       "load into the cache"))
			return false;
		tt->loaded++;
	}
	return true;
}

/*
 * Two trees in one node cache: the second's nodes sit after the first's,
 * its child pointers and leaf links relocated; shapes both trees have
 * are loaded once; lookups and scans through either tree answer right.
 */
static void shared_cache(struct kenv *k)
{
	struct bk_btree_opts o = { .node_size = 1024, .format_sample = 2 };
	static struct bk_result res[20000];
	static struct two_trees tt;
	uint64_t seed = 0x5eed0b01;
	unsigned i, j;

	if (!two_trees_load(&tt, &o, &seed, 12000, 16000))
		goto out;
	ASSERT_EQ(tt.t[1].base, tt.bt[0].nr_nodes, "the second tree's slots follow the first's");
	ASSERT_EQ(tt.nc.cache.nr, tt.t[0].nr_shapes + tt.t[1].new_shapes, "shapes loaded once");
	ASSERT_LT(tt.t[1].new_shapes, tt.t[1].nr_shapes, "the second tree shares shapes");
	for (i = 0; i < 2; i++) {
		const struct bk_keyset *ks = &tt.ks[i];
		size_t got;

		/* from below every key: every leaf in order */
		ASSERT_OK(bk_tree_scan(&tt.t[i], (struct bpos){ 0, 0, 0 }, ks->nr, res, &got), "scan");
		ASSERT_EQ(got, ks->nr, "every key of the tree");
		for (j = 0; j < got; j++)
			if (!ASSERT_MEMEQ(res[j].key, &ks->keys[j].k, 40, "key in order"))
				break;
		/* lookups at every 7th key: the tree's own answers, its own nodes */
		for (j = 0; j < ks->nr; j += 7) {
			const struct bkey *kk = &ks->keys[j].k;
			struct bpos p = { kk->inode, kk->offset, kk->snapshot };

			if (!ASSERT_OK(bk_tree_lookup(&tt.t[i], &p, 1, res), "lookup") ||
			    !ASSERT_MEMEQ(res[0].key, kk, 40, "the key looked up") ||
			    !ASSERT_LT(res[0].node, tt.bt[i].nr_leaves, "a leaf of this tree"))
				break;
		}
	}
	while (tt.loaded)
		bk_tree_unload(&tt.t[--tt.loaded]);
	ASSERT_EQ(tt.nc.cache.e[0].refs, 0, "every node gone");
out:
	two_trees_free(&tt);
}

/* Node @i of tree @t's image in the shared nodes map. */
static uint8_t *node_img(const struct bk_tree_rt *t, uint32_t i)
{
	return (uint8_t *)t->nc->lr.nodes + (size_t)(t->base + i) * t->nc->lr.node_value_size;
}

/* The child pointer (value word 0) of key @j of interior node image @img. */
static uint64_t *child_ptr(uint8_t *img, unsigned node_size, uint32_t j)
{
	const uint16_t *tab = (const uint16_t *)(img + bk_node_tab_off(node_size));
	uint8_t *key = img + BK_NODE_WORDS_OFF + 8 * tab[j];

	return (uint64_t *)key + bkey_key_words((const struct bkey_format *)img, key);
}

/*
 * Nodes whose headers or pointers lie, as a hostile writer of the nodes
 * map makes them: every lookup (and scan) through them stops with an
 * error naming the node and the reason, never a hang, a crash (a format
 * id past the program table) or a wrong answer; restored, the same
 * lookups answer again.  Two trees share the cache, so a pointer into
 * the other tree's slots is a real slot, just not one of this tree's.
 */
static void lying_nodes(struct kenv *k)
{
	enum { CHILD_LOOP, CHILD_OTHER_TREE, CHILD_PAST_MAP, LEAF_LEVEL, FID_PAST_TABLE,
	       FID_OTHER_SHAPE, NODE_SHAPE, TEMPLATE, NEXT_LEAF_SELF, NEXT_LEAF_ROOT, NR_CASES };
	static const char *const name[NR_CASES] = {
		"child pointer to its own node", "child pointer into the other tree",
		"child pointer past the map", "a leaf that says level 1",
		"format id past the program table", "format id of another shape",
		"node format of another shape", "template not the format's", "next leaf: itself",
		"next leaf: the root",
	};
	static const char *const reason[NR_CASES] = {
		"is not one below its parent", "left the tree", "left the tree",
		"is not one below its parent", "has no program", "names a program of another format",
		"names a program of another format", "unpack template is not its format's", "loop",
		"is not one below its parent",
	};
	struct bk_btree_opts o = { .node_size = 512, .leaf_gaps = true };
	static struct two_trees tt;
	const struct bk_btree *bt = &tt.bt[1];
	struct bk_tree_rt *t = &tt.t[1];
	uint64_t seed = 0x5eed0d01;
	size_t map_bytes;
	uint8_t *save = NULL;
	unsigned c, checked = 0;

	(void)k;
	if (!two_trees_load(&tt, &o, &seed, 2000, 3000))
		goto out;
	map_bytes = (size_t)tt.nc.lr.node_value_size * tt.nc.lr.nr_nodes;
	save = malloc(map_bytes);
	if (!ASSERT_GE(bt->depth, 2, "an interior level") || !save)
		goto out;
	memcpy(save, tt.nc.lr.nodes, map_bytes);
	for (c = 0; c < NR_CASES; c++) {
		uint32_t leaf = bt->nr_leaves / 2, other, i;
		struct bk_node_hdr *lh = (struct bk_node_hdr *)node_img(t, leaf);
		struct bk_node_hdr *rh = (struct bk_node_hdr *)node_img(t, bt->root);
		const struct bk_node *n = &bt->nodes[leaf];
		struct bkey first, last;
		struct bk_result r, sr[8];
		struct bpos p;
		char why[300];
		size_t got;
		int ret;

		bk_node_key(n, 0, &first);
		bk_node_key(n, n->nr_keys - 1, &last);
		p = bkey_pos(&first);
		switch (c) {
		case CHILD_LOOP:
		case CHILD_OTHER_TREE:
		case CHILD_PAST_MAP:
			/* every child pointer of the root: any lookup meets one */
			for (i = 0; i < rh->nr_keys; i++)
				*child_ptr((uint8_t *)rh, o.node_size, i) =
					c == CHILD_LOOP ? t->base + bt->root :
					c == CHILD_OTHER_TREE ? tt.t[0].base : 1u << 30;
			break;
		case LEAF_LEVEL:
			lh->level = 1;
			break;
		case FID_PAST_TABLE:
			lh->format_id = tt.nc.nr_slots + 5;
			break;
		case FID_OTHER_SHAPE:
		case NODE_SHAPE:
			for (other = 0; other < bt->nr_leaves; other++)
				if (memcmp(bt->nodes[other].f.bits_per_field, n->f.bits_per_field, 6) ||
				    bt->nodes[other].f.key_u64s != n->f.key_u64s)
					break;
			if (!ASSERT_LT(other, bt->nr_leaves, "a leaf of another shape"))
				continue;
			if (c == FID_OTHER_SHAPE)
				lh->format_id = ((struct bk_node_hdr *)node_img(t, other))->format_id;
			else
				lh->format[2] ^= 1;	/* the inode field's width */
			break;
		case TEMPLATE:
			lh->tmpl[0] ^= 1;	/* the header's constant */
			break;
		case NEXT_LEAF_SELF:
		case NEXT_LEAF_ROOT:
			/* just past the leaf's last key: its next leaf answers */
			p = bpos_successor(bkey_pos(&last));
			lh->next_leaf = c == NEXT_LEAF_SELF ? t->base + leaf + 1 : t->base + bt->root + 1;
			break;
		}
		ret = bk_tree_lookup(t, &p, 1, &r);
		if (c >= NEXT_LEAF_SELF && !ret && r.node == leaf + 1) {
			/* no gap after this leaf: the hop never happens */
			memcpy(tt.nc.lr.nodes, save, map_bytes);
			continue;
		}
		if (ASSERT_ERR(ret, name[c])) {
			bk_tree_bad_reason(t, why, sizeof(why));
			ASSERT_HAS_SUBSTR(why, reason[c], name[c]);
			ASSERT_HAS_SUBSTR(why, c == CHILD_OTHER_TREE || c == CHILD_PAST_MAP ? "slot " :
					  "node ", "names the node");
			checked++;
		}
		if (c == NODE_SHAPE || c == TEMPLATE) {
			/* the scan program refuses the node too */
			ASSERT_ERR(bk_tree_scan(t, bkey_pos(&first), 8, sr, &got), "scan of the node");
			ASSERT_EQ(t->last_status, c == NODE_SHAPE ? BK_ERR_NODE_SHAPE : BK_ERR_NODE_TMPL,
				  "scan: the node's format");
		}
		memcpy(tt.nc.lr.nodes, save, map_bytes);
		ASSERT_OK(bk_tree_lookup(t, &p, 1, &r), "restored");
		ASSERT_TRUE(r.found, "restored: found");
	}
	test__count("lying nodes refused", checked);
out:
	free(save);
	two_trees_free(&tt);
}

/*
 * Built trees whose leaves end below their max key, as real ones do,
 * loaded after another tree (so every slot is relocated): the leaf chain
 * as the node headers in the map hold it, and lookups just past each
 * leaf's last key, which only the next leaf answers (next_leaf).
 */
static void leaf_gaps(struct kenv *k)
{
	struct bk_btree_opts o = { .node_size = 512, .leaf_gaps = true };
	static struct two_trees tt;
	const struct bk_btree *bt = &tt.bt[1];
	const struct bk_tree_rt *t = &tt.t[1];
	uint64_t seed = 0x5eed0c01;
	unsigned i, crossed = 0;

	if (!two_trees_load(&tt, &o, &seed, 3000, 6000))
		goto out;
	ASSERT_TRUE(bt->leaf_gaps, "the tree says its leaves have gaps");
	ASSERT_GT(bt->nr_leaves, 10, "leaves");
	/* the chain: leaf i's next is slot base + i + 1 (stored + 1), the last's none */
	for (i = 0; i < bt->nr_nodes; i++) {
		const struct bk_node_hdr *h = bk_lookup_node(&tt.nc.lr, t->base + i);
		uint32_t want = i + 1 < bt->nr_leaves ? t->base + i + 2 : 0;

		if (!ASSERT_EQ(h->next_leaf, want, "next_leaf in the node header"))
			break;
	}
	/* just past each leaf's last key: below its max, so its parent sends
	 * the lookup there, and the next leaf's first key is the answer */
	for (i = 0; i + 1 < bt->nr_leaves; i++) {
		const struct bk_node *n = &bt->nodes[i];
		struct bkey last, next;
		struct bk_result r;
		struct bpos p;
		uint32_t cn, ci;

		bk_node_key(n, n->nr_keys - 1, &last);
		bk_node_key(&bt->nodes[i + 1], 0, &next);
		p = bpos_successor(bkey_pos(&last));
		if (!bpos_cmp(p, bkey_pos(&next)))
			continue;	/* no gap between these two */
		ASSERT_LE(bpos_cmp(p, n->max_key), 0, "the leaf's max is past its last key");
		if (!ASSERT_OK(bk_tree_lookup(&tt.t[1], &p, 1, &r), "lookup") ||
		    !ASSERT_EQ(r.found, 1, "found") ||
		    !ASSERT_MEMEQ(r.key, &next, 40, "the next leaf's first key") ||
		    !ASSERT_EQ(r.node, i + 1, "answered by the next leaf"))
			break;
		ASSERT_OK(bk_btree_lookup(bt, p, &cn, &ci), "C lookup");
		ASSERT_EQ(cn, i + 1, "C: the next leaf too");
		crossed++;
	}
	ASSERT_GT(crossed, bt->nr_leaves / 2, "lookups that crossed to the next leaf");
	test__count("leaf gaps: lookups answered by the next leaf", crossed);
out:
	two_trees_free(&tt);
}

static void trees_loop(struct kenv *k, bool first)
{
	(void)first;
	trees(k);
}

/* the first loop the kernel has in full; the others on three cases (the
 * 64 KiB one: 14 steps, the table past a 16-bit offset) */
static void lookups_loop(struct kenv *k, bool first)
{
	lookups(k, !first);
}

/*
 * @fn with each search loop the kernel loads: may_goto (6.9+), unrolled
 * (always), bpf_loop callbacks (the JIT, and for lookups one that mixes
 * tail calls with subprograms).  What it cannot load is named.
 */
static void each_search_loop(struct kenv *k, bool lookup, void (*fn)(struct kenv *k, bool first))
{
	bool first = true;

	if (k->ft.may_goto) {
		search_loop = BK_SEARCH_MAY_GOTO;
		fn(k, first);
		first = false;
	}
	search_loop = BK_SEARCH_UNROLLED;
	fn(k, first);
	first = false;
	if (!k->ft.bpf_loop)
		printf("    search in bpf_loop callbacks: not on this kernel (%s)\n",
		       k->ft.jit ? "no bpf_loop" : "callbacks need the JIT");
	else if (lookup && !k->ft.tail_call_subprog)
		printf("    lookups with the search in bpf_loop callbacks: not on this kernel "
		       "(its JIT does not mix tail calls with bpf-to-bpf calls)\n");
	else {
		search_loop = BK_SEARCH_BPF_LOOP;
		fn(k, first);
	}
	search_loop = BK_SEARCH_MAY_GOTO;
}

DEFINE_TEST(search)
{
	struct kenv *k;

	if (test__start_subtest("trees") && (k = kenv_get()))
		each_search_loop(k, false, trees_loop);
	if (test__start_subtest("lookups") && (k = kenv_get()))
		each_search_loop(k, true, lookups_loop);
	/* node caches: with may_goto, and as kernels before 6.9 run them */
	if (test__start_subtest("bad_nodes") && (k = kenv_get()))
		kenv_each_loops(k, bad_nodes);
	if (test__start_subtest("lying_nodes") && (k = kenv_get()))
		kenv_each_loops(k, lying_nodes);
	if (test__start_subtest("scans") && (k = kenv_get()))
		kenv_each_loops(k, scans);
	if (test__start_subtest("leaf_gaps") && (k = kenv_get()))
		kenv_each_loops(k, leaf_gaps);
	if (test__start_subtest("shared_cache") && (k = kenv_get()))
		kenv_each_loops(k, shared_cache);
	if (test__start_subtest("shape_cache") && (k = kenv_get()))
		kenv_each_loops(k, shape_cache);
}
