// SPDX-License-Identifier: GPL-2.0
/*
 * Runs are re-entrant (gen/abi.h): threads look up, scan and unpack the
 * same tree with the same programs at once, each on its own run slot,
 * for a few seconds, and every answer is checked.  Three threads on this
 * two-core machine, so that runs are also preempted in the middle.  If
 * programs wrote per-run state anywhere shared (as every run did before
 * run slots), one thread's queries, cursors or outputs would land in
 * another's answers.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "test_progs.h"
#include "examples.h"
#include "btree.h"
#include "kenv.h"
#include "keytext.h"
#include "nodecache.h"
#include "util.h"

#define NR_THREADS	3
#define NR_UNPACKS	4	/* leaves unpacked as bset streams */

/* A leaf unpacked as a bset stream by an exact program, and the model's keys. */
struct unpack_case {
	const struct bk_node	*n;
	struct bk_loaded	l;
	struct bkey		*want;
};

struct thread_arg {
	pthread_t		tid;
	struct bk_tree_rt	*t;
	const struct bk_keyset	*ks;
	const struct unpack_case *uc;
	struct bk_worker	w;
	uint64_t		seed;
	double			until_ns;
	unsigned long		lookups, scanned, unpacked, bad;
	int			err;		/* a run that failed: -errno or BK_ERR_* */
	char			first_bad[160];
};

static void note_bad(struct thread_arg *a, const char *what, size_t i)
{
	if (!a->bad++)
		snprintf(a->first_bad, sizeof(a->first_bad), "%s %zu", what, i);
}

static void do_lookups(struct thread_arg *a, struct bpos *q, struct bk_result *res)
{
	size_t nq = 1 + rnd_below(&a->seed, 300), i;

	for (i = 0; i < nq; i++) {
		const struct bkey *k = &a->ks->keys[rnd_below(&a->seed, a->ks->nr)].k;

		q[i] = rnd_below(&a->seed, 4) ? (struct bpos){ k->inode, k->offset, k->snapshot } :
		       (struct bpos){ k->inode, k->offset - 1, 0 };
	}
	a->err = bk_tree_lookup_on(a->t, &a->w, q, nq, res);
	for (i = 0; i < nq && !a->err; i++)
		if (!bk_keyset_answer_ok(a->ks, q[i], res[i].found, res[i].key))
			note_bad(a, "lookup", i);
	a->lookups += nq;
}

static void do_scan(struct thread_arg *a, struct bk_result *res, size_t cap)
{
	const struct bkey *k = &a->ks->keys[rnd_below(&a->seed, a->ks->nr)].k;
	struct bpos from = { k->inode, k->offset, k->snapshot };
	size_t count = 1 + rnd_below(&a->seed, cap), got, first, want, j;

	a->err = bk_tree_scan_on(a->t, &a->w, from, count, res, &got);
	if (a->err)
		return;
	first = bk_keyset_lower_bound(a->ks, from);
	want = a->ks->nr - first < count ? a->ks->nr - first : count;
	if (got != want)
		note_bad(a, "scan length", got);
	for (j = 0; j < got && j < want; j++)
		if (memcmp(res[j].key, &a->ks->keys[first + j].k, sizeof(struct bkey)))
			note_bad(a, "scanned key", j);
	a->scanned += got;
}

static void do_unpack(struct thread_arg *a)
{
	const struct unpack_case *uc = &a->uc[rnd_below(&a->seed, NR_UNPACKS)];
	uint32_t nr = 0, i, status = ~0u;
	int ret;

	/* poison this slot's outputs: a run that wrote elsewhere shows */
	memset(a->w.srt.out, 0xa5, uc->n->nr_keys * sizeof(struct bkey));
	ret = bk_unpack_words(&uc->l, &a->w.srt, uc->n->words, uc->n->u64s, &status, &nr, NULL);
	if (ret || status != BK_OK) {
		a->err = ret ? ret : (int)status;
		return;
	}
	if (nr != uc->n->nr_keys)
		note_bad(a, "unpacked keys", nr);
	for (i = 0; i < nr && i < uc->n->nr_keys; i++)
		if (memcmp(&a->w.srt.out[i], &uc->want[i], sizeof(struct bkey)))
			note_bad(a, "unpacked key", i);
	a->unpacked += nr;
}

static void *thread_main(void *arg)
{
	struct thread_arg *a = arg;
	struct bk_result *res = calloc(2000, sizeof(*res));
	struct bpos *q = calloc(300, sizeof(*q));

	if (!res || !q)
		a->err = -ENOMEM;
	while (!a->err && bk_now_ns() < a->until_ns) {
		switch (rnd_below(&a->seed, 3)) {
		case 0: do_lookups(a, q, res); break;
		case 1: do_scan(a, res, 2000); break;
		default: do_unpack(a);
		}
	}
	free(res);
	free(q);
	return NULL;
}

static bool load_unpacks(struct kenv *k, const struct bk_node_cache *nc,
			 const struct bk_btree *bt, struct unpack_case *uc)
{
	static struct bk_prog p;
	struct bk_gen_opts o = {
		.shape = k->ft.best, .walk = BK_WALK_U64S, .chunk = 1,
		.ctl_fd = nc->srt.ctl_fd, .in_fd = nc->srt.in_fd, .out_fd = nc->srt.out_fd,
		.strict_align = bk_strict_align_default(),
	};
	unsigned i, j;

	for (i = 0; i < NR_UNPACKS; i++) {
		uc[i].n = &bt->nodes[(i * 7919u) % bt->nr_leaves];
		uc[i].want = calloc(uc[i].n->nr_keys + 1, sizeof(struct bkey));
		if (!ASSERT_TRUE(uc[i].want, "memory") ||
		    !ASSERT_OK(bk_gen_unpack(&uc[i].n->f, &o, &p, NULL), "generate unpack") ||
		    !ASSERT_OK(bk_prog_load(&p, &uc[i].l, NULL, 0), "load unpack"))
			return false;
		for (j = 0; j < uc[i].n->nr_keys; j++)
			bk_node_key(uc[i].n, j, &uc[i].want[j]);
	}
	return true;
}

static double run_seconds(void)
{
	const char *s = getenv("BKEY_THREAD_SECONDS");
	double v = s ? atof(s) : 0;

	return v > 0 ? v : 3;
}

static void mixed_runs(struct kenv *k)
{
	struct bk_btree_opts bo = { .node_size = 4096 };
	struct unpack_case uc[NR_UNPACKS] = {};
	struct thread_arg a[NR_THREADS] = {};
	uint64_t seed = 0x5eed7412;
	struct bk_keyset ks = {};
	struct bk_node_cache nc;
	struct bk_tree_rt t;
	struct bk_btree bt;
	unsigned long lookups = 0, scanned = 0, unpacked = 0;
	double until;
	char err[200];
	unsigned i, j;

	for (i = 0; i < 60000; i++) {
		struct bkey key = { .format_nw = KEY_FORMAT_CURRENT, .type = 6, .u64s = BKEY_U64s + 1,
				    .inode = 4096 + i / 500, .offset = (i % 500) * 8 + rnd_below(&seed, 8),
				    .snapshot = UINT32_MAX, .size = rnd_below(&seed, 8) };
		uint64_t val = i;

		bk_keyset_add(&ks, &key, &val);
	}
	if (!ASSERT_OK(bk_keyset_sort(&ks, err, sizeof(err)), err) ||
	    !ASSERT_OK(bk_btree_build(&bt, &ks, &bo, err, sizeof(err)), err)) {
		bk_keyset_free(&ks);
		return;
	}
	if (!ASSERT_OK(bk_node_cache_open_runs(&nc, bo.node_size, bt.nr_nodes, NR_THREADS),
		       "node cache with a run slot per thread"))
		goto out_tree;
	if (!ASSERT_OK(bk_tree_load(&t, &bt, &nc, stderr), "load the tree"))
		goto out_cache;
	if (!load_unpacks(k, &nc, &bt, uc))
		goto out_unload;

	until = bk_now_ns() + run_seconds() * 1e9;
	for (i = 0; i < NR_THREADS; i++) {
		a[i] = (struct thread_arg){ .t = &t, .ks = &ks, .uc = uc, .until_ns = until,
					    .seed = 0x7468726561640000ull + i };
		if (!ASSERT_OK(bk_worker_init(&a[i].w, &nc, i), "worker on its run slot") ||
		    !ASSERT_OK(pthread_create(&a[i].tid, NULL, thread_main, &a[i]), "thread"))
			break;
	}
	for (j = 0; j < i; j++)
		pthread_join(a[j].tid, NULL);
	for (j = 0; j < i; j++) {
		if (!ASSERT_EQ(a[j].err, 0, "every run of the thread ran") ||
		    !ASSERT_EQ(a[j].bad, 0, "every answer of the thread right"))
			fprintf(stderr, "  thread %u: status %d; first wrong: %s\n", j, a[j].err,
				a[j].first_bad);
		ASSERT_GT(a[j].lookups, 0, "the thread looked up");
		ASSERT_GT(a[j].scanned, 0, "the thread scanned");
		ASSERT_GT(a[j].unpacked, 0, "the thread unpacked");
		lookups += a[j].lookups;
		scanned += a[j].scanned;
		unpacked += a[j].unpacked;
	}
	test__count("lookups from 3 threads at once, checked", lookups);
	test__count("scanned keys, checked", scanned);
	test__count("unpacked keys, checked", unpacked);
out_unload:
	for (i = 0; i < NR_UNPACKS; i++) {
		if (uc[i].want)
			bk_prog_unload(&uc[i].l);
		free(uc[i].want);
	}
	bk_tree_unload(&t);
out_cache:
	bk_node_cache_close(&nc);
out_tree:
	bk_btree_free(&bt);
	bk_keyset_free(&ks);
}

/* A run slot past the maps': the program refuses it, nothing runs. */
static void bad_slot(struct kenv *k)
{
	static struct bk_prog p;
	struct bk_runtime rt, view;
	struct bk_loaded l = { .fd = -1 };
	struct bk_gen_opts o = { .shape = k->ft.best, .walk = BK_WALK_U64S, .chunk = 1,
				 .strict_align = bk_strict_align_default() };
	struct bkey_format f = ex2_format();
	uint64_t words[2] = { 0 };

	if (!ASSERT_OK(bk_runtime_open_slots(&rt, 2), "two run slots"))
		return;
	o.ctl_fd = rt.ctl_fd;
	o.in_fd = rt.in_fd;
	o.out_fd = rt.out_fd;
	if (ASSERT_OK(bk_gen_unpack(&f, &o, &p, NULL), "generate") &&
	    ASSERT_OK(bk_prog_load(&p, &l, NULL, 0), "load")) {
		uint32_t status = ~0u;

		bk_runtime_slot(&rt, 1, &view);
		ASSERT_OK(bk_unpack_words(&l, &view, words, 0, &status, NULL, NULL), "slot 1 runs");
		ASSERT_EQ(status, BK_OK, "slot 1's status");
		/* the library refuses a slot it has not got; the program too */
		view.slot = 2;
		ASSERT_EQ(bk_run_words(&l, &view, 0, 0, 0, 1, NULL), -EINVAL, "slot 2: refused");
		view.nr_slots = 3;
		view.ctl->cur_in = 12345;
		ASSERT_OK(bk_run_words(&l, &view, 0, 0, 0, 1, NULL), "slot 2: the run itself");
		ASSERT_EQ(view.ctl->status, BK_ERR_ARGS, "slot 2: the program refuses it");
	}
	bk_prog_unload(&l);
	bk_runtime_close(&rt);
}

DEFINE_TEST(threads)
{
	struct kenv *k;

	if (test__start_subtest("mixed_runs") && (k = kenv_get()))
		kenv_each_loops(k, mixed_runs);
	if (test__start_subtest("bad_slot") && (k = kenv_get()))
		bad_slot(k);
}
