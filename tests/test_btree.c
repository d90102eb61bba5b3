// SPDX-License-Identifier: GPL-2.0
/*
 * The userspace btree: bulk load invariants, and lookups by the kernel's
 * algorithm (lossy packed search key, packed comparison) against a sorted
 * array.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "test_progs.h"
#include "btree.h"
#include "kenv.h"

/* A sorted, duplicate-free, filesystem-like key set of @nr keys. */
static void make_keys(uint64_t *seed, size_t nr, struct bk_keyset *ks)
{
	struct bpos p = { 4096 + rnd_below(seed, 1000), rnd_below(seed, 100), 0 };
	uint64_t val[8];
	size_t i;
	char err[100];

	for (i = 0; i < nr; i++) {
		struct bkey k = { .format_nw = KEY_FORMAT_CURRENT };
		unsigned j, nval = rnd_below(seed, 4) ? rnd_below(seed, 5) : 0;
		uint64_t inc = 1 + rnd_below(seed, 1ULL << rnd_below(seed, 40));

		if (!rnd_below(seed, 50) || p.offset > UINT64_MAX - inc) {
			p.inode += 1 + rnd_below(seed, rnd_below(seed, 8) ? 4 : 1ULL << 40);
			p.offset = rnd_below(seed, 100);
		} else {
			p.offset += inc;
		}
		p.snapshot = rnd_below(seed, 4) ? UINT32_MAX : rnd_next(seed);
		k.inode = p.inode;
		k.offset = p.offset;
		k.snapshot = p.snapshot;
		k.size = rnd_below(seed, 3) ? 1 + rnd_below(seed, 128) : 0;
		k.type = 1 + rnd_below(seed, 30);
		k.version_lo = rnd_below(seed, 8) ? 0 : rnd_next(seed);
		k.u64s = BKEY_U64s + nval;
		for (j = 0; j < nval; j++)
			val[j] = rnd_next(seed);
		bk_keyset_add(ks, &k, val);
	}
	bk_keyset_sort(ks, err, sizeof(err));
}

static bool check_structure(const struct bk_btree *bt, const struct bk_keyset *ks)
{
	struct bpos min = { 0, 0, 0 }, spos_max = { UINT64_MAX, UINT64_MAX, UINT32_MAX };
	size_t at = 0;
	uint32_t i, j;
	bool ok = true;

	for (i = 0; i < bt->nr_nodes && ok; i++) {
		const struct bk_node *n = &bt->nodes[i];

		ok &= ASSERT_OK(bkey_format_validate(&n->f, NULL), "node format valid");
		ok &= ASSERT_LE(8 * n->u64s, bt->o.node_size, "node fits");
		ok &= ASSERT_EQ(n->tab[n->nr_keys], n->u64s, "table ends at the end");
		ok &= ASSERT_GT(n->nr_keys, 0, "no empty node");
		for (j = 0; j < n->nr_keys && ok; j++) {
			struct bkey k;
			const uint64_t *val = bk_node_key(n, j, &k);
			struct bpos p = { k.inode, k.offset, k.snapshot };

			ok &= ASSERT_EQ(n->tab[j + 1] - n->tab[j], ((const uint8_t *)(n->words + n->tab[j]))[0],
					"table stride is u64s");
			ok &= ASSERT_TRUE(bpos_cmp(p, n->min_key) >= 0 && bpos_cmp(p, n->max_key) <= 0,
					  "key inside min..max");
			if (!n->level) {
				const struct bk_keyval *kv = &ks->keys[at++];

				ok &= ASSERT_MEMEQ(&k, &kv->k, sizeof(k), "leaf keys in order");
				ok &= ASSERT_MEMEQ(val, bk_keyset_val(ks, kv), 8 * (k.u64s - BKEY_U64s),
						   "value");
			} else {
				uint32_t c = bk_ptr_child(&k, val);

				ok &= ASSERT_LE(c, i - 1, "child before parent");
				ok &= ASSERT_EQ(bt->nodes[c].level, n->level - 1, "child one level down");
				ok &= ASSERT_EQ(bpos_cmp(p, bt->nodes[c].max_key), 0, "key at child's max");
			}
		}
		if (i < bt->nr_leaves) {
			ok &= ASSERT_EQ(bpos_cmp(n->min_key, min), 0, "leaves chain min to max");
			if (n->max_key.snapshot != UINT32_MAX || n->max_key.offset != UINT64_MAX ||
			    n->max_key.inode != UINT64_MAX) {
				min = n->max_key;
				if (!++min.snapshot && !++min.offset)
					++min.inode;
			}
		}
	}
	ok &= ASSERT_EQ(at, ks->nr, "every key in a leaf");
	ok &= ASSERT_EQ(bpos_cmp(bt->nodes[bt->nr_leaves - 1].max_key, spos_max), 0,
			"last leaf reaches SPOS_MAX");
	ok &= ASSERT_EQ(bt->nodes[bt->root].level + 1, bt->depth, "root level");
	return ok;
}

struct lookup_stats {
	unsigned long	lookups, exact, smaller, fail, none;
};

static bool check_lookup(const struct bk_btree *bt, const struct bk_keyset *ks, struct bpos p,
			 struct lookup_stats *st)
{
	size_t want = bk_keyset_lower_bound(ks, p);
	uint32_t node, idx;
	int ret = bk_btree_lookup(bt, p, &node, &idx);
	uint64_t packed[5];
	struct bkey k;
	const uint64_t *val;

	st->lookups++;
	if (want == ks->nr) {
		st->none++;
		return ASSERT_EQ(ret, -ENOENT, "nothing at or above");
	}
	if (!ASSERT_OK(ret, "found"))
		return false;
	switch (bkey_pack_pos_lossy(&bt->nodes[node].f, p, packed)) {
	case BKEY_PACK_POS_EXACT:	st->exact++; break;
	case BKEY_PACK_POS_SMALLER:	st->smaller++; break;
	case BKEY_PACK_POS_FAIL:	st->fail++; break;
	}
	val = bk_node_key(&bt->nodes[node], idx, &k);
	return ASSERT_MEMEQ(&k, &ks->keys[want].k, sizeof(k), "first key >= pos") &&
	       ASSERT_MEMEQ(val, bk_keyset_val(ks, &ks->keys[want]),
			    8 * (k.u64s - BKEY_U64s), "its value");
}

/* Queries: every key, just below and above it, and random positions. */
static bool lookups(const struct bk_btree *bt, const struct bk_keyset *ks, uint64_t *seed,
		    struct lookup_stats *st)
{
	struct bpos edges[] = {
		{ 0, 0, 0 }, { UINT64_MAX, UINT64_MAX, UINT32_MAX },
		{ ks->keys[0].k.inode, 0, 0 },
	};
	size_t i;
	bool ok = true;

	for (i = 0; i < sizeof(edges) / sizeof(edges[0]) && ok; i++)
		ok &= check_lookup(bt, ks, edges[i], st);
	for (i = 0; i < ks->nr && ok; i += 1 + ks->nr / 2000) {
		const struct bkey *k = &ks->keys[i].k;
		struct bpos p = { k->inode, k->offset, k->snapshot }, q = p;

		ok &= check_lookup(bt, ks, p, st);		/* exact hit */
		if (q.snapshot) {
			q.snapshot--;				/* just below */
			ok &= check_lookup(bt, ks, q, st);
		}
		q = p;
		if (q.snapshot != UINT32_MAX) {
			q.snapshot++;				/* just above */
			ok &= check_lookup(bt, ks, q, st);
		}
		q = p;
		q.snapshot = 0;					/* snapshot underflow: SMALLER */
		ok &= check_lookup(bt, ks, q, st);
		q.offset = rnd_next(seed);			/* between keys, anywhere */
		ok &= check_lookup(bt, ks, q, st);
	}
	for (i = 0; i < 500 && ok; i++)
		ok &= check_lookup(bt, ks, (struct bpos){ rnd_next(seed), rnd_next(seed),
							   rnd_next(seed) }, st);
	return ok;
}

static void random_trees(void)
{
	static const struct { size_t keys; unsigned node_size, sample; } cases[] = {
		{ 1, 512, 0 }, { 7, 512, 0 }, { 300, 512, 0 }, { 3000, 512, 0 },
		{ 40000, 512, 0 }, { 20000, 4096, 0 }, { 100000, 16384, 0 },
		{ 5000, 1024, 4 }, { 20000, 2048, 16 }, { 2000, 65536, 0 },
	};
	struct lookup_stats st = {};
	bool depth_seen[5] = {};
	unsigned c, unpacked = 0;
	uint64_t seed = 0x5eed0501;

	for (c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		struct bk_keyset ks = {};
		struct bk_btree bt;
		struct bk_btree_opts o = {
			.node_size = cases[c].node_size, .format_sample = cases[c].sample,
		};
		char err[200];
		uint32_t i;

		make_keys(&seed, cases[c].keys, &ks);
		if (!ASSERT_OK(bk_btree_build(&bt, &ks, &o, err, sizeof(err)), err)) {
			bk_keyset_free(&ks);
			return;
		}
		if (bt.depth <= 4)
			depth_seen[bt.depth] = true;
		for (i = 0; i < bt.nr_nodes; i++)
			unpacked += bt.nodes[i].nr_unpacked;
		if (!check_structure(&bt, &ks) || !lookups(&bt, &ks, &seed, &st)) {
			fprintf(stderr, "  case %u: %zu keys, node size %u, depth %u\n", c,
				cases[c].keys, cases[c].node_size, bt.depth);
			bk_btree_free(&bt);
			bk_keyset_free(&ks);
			return;
		}
		bk_btree_free(&bt);
		bk_keyset_free(&ks);
	}
	for (c = 1; c <= 4; c++)
		ASSERT_TRUE(depth_seen[c], "depths 1 to 4 all built");
	ASSERT_GT(unpacked, 0, "some keys stored unpacked");
	ASSERT_GT(st.smaller, 0, "lossy SMALLER searches");
	ASSERT_GT(st.fail, 0, "lossy FAIL searches");
	ASSERT_GT(st.none, 0, "searches above every key");
	test__count("btree lookups checked (exact, smaller, fail, none)", st.lookups);
	test__count("btree lookups, smaller packing", st.smaller);
	test__count("btree lookups, fail packing", st.fail);
	test__count("btree keys stored unpacked", unpacked);
}

static void bad_options(void)
{
	struct bk_keyset ks = {};
	struct bk_btree bt;
	struct bk_btree_opts o = { .node_size = 100 };
	uint64_t seed = 0x5eed0502, val[250] = {};
	struct bkey big = { .u64s = 255, .format_nw = 1, .inode = 1 };
	char err[200];

	make_keys(&seed, 10, &ks);
	ASSERT_EQ(bk_btree_build(&bt, &ks, &o, err, sizeof(err)), -EINVAL, "node size 100");
	ASSERT_HAS_SUBSTR(err, "node size 100", "names it");
	bk_keyset_free(&ks);

	bk_keyset_add(&ks, &big, val);
	bk_keyset_sort(&ks, err, sizeof(err));
	o.node_size = 512;
	ASSERT_EQ(bk_btree_build(&bt, &ks, &o, err, sizeof(err)), -EINVAL, "key too big");
	ASSERT_HAS_SUBSTR(err, "250 value words does not fit a 512-byte node", "says why");
	bk_keyset_free(&ks);
}

DEFINE_TEST(btree)
{
	if (test__start_subtest("random_trees"))
		random_trees();
	if (test__start_subtest("bad_options"))
		bad_options();
}
