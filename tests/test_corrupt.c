// SPDX-License-Identifier: GPL-2.0
/*
 * Corrupted node slots: a hostile writer of the nodes map puts random
 * words into random places of random nodes (headers, keys, the key table),
 * and every lookup and scan must end in an error or the right answer,
 * never a hang or a crash.
 *
 * "The right answer" of a corrupted map is what the map says under the
 * program contract (gen/abi.h), read by a reference written here in C
 * with the model: the same walk (the driver's checks, the node's format
 * and template, the binary search with the keys it probes checked as the
 * programs check them, the found key checked in full, child pointers,
 * levels, next-leaf hops), packing, comparison and unpacking by the
 * model's functions.  Where the kernel answers, the reference must give
 * the same answer; where the reference finds the map bad, the kernel must
 * fail.  The reverse (the kernel stricter) is counted, not failed.
 *
 * A watchdog fails the run if one corruption's lookups take 30 s.
 */
#include <errno.h>
#include <stddef.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test_progs.h"
#include "btree.h"
#include "kenv.h"
#include "nodecache.h"

/* The tree as the kernel's lookups see it, in the shared nodes map. */
struct ref {
	const struct bk_tree_rt	*t;
	const uint8_t		*nodes;
	size_t			vsize;
	unsigned		node_size, nw;	/* bytes and words of keys per node */
};

static const struct bk_node_hdr *ref_hdr(const struct ref *r, uint32_t slot)
{
	return (const void *)(r->nodes + (size_t)slot * r->vsize);
}

static const uint8_t *ref_words(const struct ref *r, uint32_t slot)
{
	return (const uint8_t *)ref_hdr(r, slot) + BK_NODE_WORDS_OFF;
}

static uint16_t ref_tab(const struct ref *r, uint32_t slot, uint32_t i)
{
	uint16_t v;

	memcpy(&v, ref_words(r, slot) + r->node_size + 2 * i, 2);
	return v;
}

/* The format a program of format id @fid was made for. */
static const struct bkey_format *fid_format(const struct ref *r, uint32_t fid)
{
	const struct bk_node_cache *nc = r->t->nc;

	return fid < nc->nr_slots && nc->prog_fd_by_fid[fid] >= 0 ? &nc->cache.e[fid].f : NULL;
}

/* Each field's slot in struct bkey, and so in the template. */
static const struct { unsigned off, size; } tmpl_slot[BKEY_NR_FIELDS] = {
	[BKEY_FIELD_INODE] = { offsetof(struct bkey, inode), 8 },
	[BKEY_FIELD_OFFSET] = { offsetof(struct bkey, offset), 8 },
	[BKEY_FIELD_SNAPSHOT] = { offsetof(struct bkey, snapshot), 4 },
	[BKEY_FIELD_SIZE] = { offsetof(struct bkey, size), 4 },
	[BKEY_FIELD_VERSION_HI] = { offsetof(struct bkey, version_hi), 4 },
	[BKEY_FIELD_VERSION_LO] = { offsetof(struct bkey, version_lo), 8 },
};

/* What a shape program checks of its node: format word 0, template. */
static int ref_node_format(const struct ref *r, uint32_t slot, const struct bkey_format *prog_f,
			   struct bkey_format *f)
{
	const struct bk_node_hdr *h = ref_hdr(r, slot);
	uint8_t tmpl[BK_TMPL_SIZE];
	unsigned i;

	memcpy(f, h->format, sizeof(*f));
	if (memcmp(f, prog_f, 8))
		return BK_ERR_NODE_SHAPE;
	for (i = 0; i < BKEY_NR_FIELDS; i++) {
		/* 9.1: a field as wide as its slot has offset 0; a 32-bit
		 * field's offset fits 32 bits */
		if (f->bits_per_field[i] == bkey_field_width[i] && f->field_offset[i])
			return BK_ERR_NODE_TMPL;
		if (bkey_field_width[i] == 32 && f->field_offset[i] >> 32)
			return BK_ERR_NODE_TMPL;
	}
	bk_unpack_template(f, tmpl);
	/* a field as wide as its slot never reads its template slot */
	for (i = 0; i < BKEY_NR_FIELDS; i++)
		if (f->bits_per_field[i] == bkey_field_width[i])
			memcpy(tmpl + tmpl_slot[i].off, h->tmpl + tmpl_slot[i].off, tmpl_slot[i].size);
	return memcmp(tmpl, h->tmpl, sizeof(tmpl)) ? BK_ERR_NODE_TMPL : 0;
}

/* The found key (or a scanned one): inside the node, u64s == the table's gap, format 0 or 1. */
static int ref_check_key(const struct ref *r, uint32_t slot, uint32_t i, unsigned ku,
			 const uint8_t **key)
{
	uint16_t t0 = ref_tab(r, slot, i), t1 = ref_tab(r, slot, i + 1);
	const uint8_t *k;
	unsigned fmt;

	if (t0 >= r->nw || t1 > r->nw || t1 < t0)
		return BK_ERR_BAD_KEY;
	k = ref_words(r, slot) + 8 * t0;
	fmt = k[1] & 0x7f;
	if (k[0] != t1 - t0)
		return BK_ERR_BAD_KEY;
	if (fmt == 0 && (k[0] < ku || k[0] > ku + BKEY_VAL_U64s_MAX))
		return BK_ERR_BAD_KEY;
	if (fmt == 1 && k[0] < BKEY_U64s)
		return BK_ERR_BAD_KEY;
	if (fmt > 1)
		return BK_ERR_BAD_KEY;
	*key = k;
	return 0;
}

static void ref_unpack(const struct bkey_format *f, const uint8_t *k, void *out)
{
	if ((k[1] & 0x7f) == KEY_FORMAT_CURRENT)
		memcpy(out, k, sizeof(struct bkey));
	else
		bkey_unpack_key(f, k, out);
}

/*
 * The node search: the first key >= @pos, with each probed key's table
 * entry inside the node and its format byte 0 or 1, as the programs check.
 */
static int ref_search(const struct ref *r, uint32_t slot, const struct bkey_format *f,
		      struct bpos pos, uint32_t *idx)
{
	uint64_t packed[BKEY_U64s] = {};
	enum bkey_pack_pos_ret mode = bkey_pack_pos_lossy(f, pos, packed);
	uint32_t lo = 0, hi = ref_hdr(r, slot)->nr_keys;

	while (lo < hi) {
		uint32_t mid = (lo + hi) / 2;
		const uint8_t *k;
		bool above;

		if (hi > r->nw || ref_tab(r, slot, mid) >= r->nw)
			return BK_ERR_BAD_KEY;
		k = ref_words(r, slot) + 8 * ref_tab(r, slot, mid);
		if (k[1] & 0x7f) {
			if ((k[1] & 0x7f) != KEY_FORMAT_CURRENT)
				return BK_ERR_BAD_KEY;
			above = bpos_cmp(bkey_pos((const struct bkey *)k), pos) >= 0;
		} else if (mode == BKEY_PACK_POS_FAIL) {
			above = true;
		} else {
			int c = bkey_cmp_packed(f, k, packed);

			above = mode == BKEY_PACK_POS_EXACT ? c >= 0 : c > 0;
		}
		if (above)
			hi = mid;
		else
			lo = mid + 1;
	}
	*idx = lo;
	return 0;
}

/* One lookup as the driver and the lookup programs walk it. */
static int ref_lookup(const struct ref *r, struct bpos pos, struct bk_result *res)
{
	uint32_t first = r->t->base, end = first + r->t->bt->nr_nodes, slot = first + r->t->bt->root;
	uint32_t hops = 0, steps;

	memset(res, 0, sizeof(*res));
	for (steps = 0; steps < 4 * (end - first) + 8; steps++) {
		const struct bk_node_hdr *h;
		const struct bkey_format *pf;
		struct bkey_format f;
		uint64_t child, want_level;
		const uint8_t *k;
		uint32_t idx;
		int err;

		if (slot < first || slot >= end)
			return BK_ERR_NODE_PTR;
		h = ref_hdr(r, slot);
		pf = fid_format(r, h->format_id);
		if (!pf)
			return BK_ERR_NODE_FID;
		if (memcmp(h->format, pf, 8))
			return BK_ERR_NODE_SHAPE;
		if (slot == first + r->t->bt->root && h->level != r->t->bt->depth - 1)
			return BK_ERR_NODE_LEVEL;
		memcpy(&f, h->format, sizeof(f));
		if (f.field_offset[BKEY_FIELD_SNAPSHOT] >> 32)
			return BK_ERR_NODE_TMPL;
		err = ref_search(r, slot, &f, pos, &idx);
		if (err)
			return err;
		if (idx >= h->nr_keys) {
			/* past the last key: nothing, or a leaf's next leaf */
			if (h->level || !h->next_leaf)
				return 0;
			if (++hops > end - first)
				return BK_ERR_LEAF_HOPS;
			child = h->next_leaf - 1;
			want_level = 0;
		} else {
			if (idx >= r->nw)
				return BK_ERR_BAD_KEY;
			err = ref_check_key(r, slot, idx, f.key_u64s, &k);
			if (err)
				return err;
			if (!h->level) {
				err = ref_node_format(r, slot, pf, &f);
				if (err)
					return err;
				ref_unpack(&f, k, res->key);
				res->found = 1;
				res->node = slot - first;
				res->idx = idx;
				return 0;
			}
			if (k[2] != KEY_TYPE_btree_ptr_v2)
				return BK_ERR_NODE_LEVEL;
			memcpy(&child, k + 8 * ((k[1] & 0x7f) ? BKEY_U64s : f.key_u64s), 8);
			want_level = h->level - 1;
		}
		if (child < first || child >= end)
			return BK_ERR_NODE_PTR;
		if (ref_hdr(r, child)->level != want_level)
			return BK_ERR_NODE_LEVEL;
		slot = child;
	}
	return -ELOOP;
}

/* A scan as bk_tree_scan() drives it: the lookup, then each leaf's run. */
static int ref_scan(const struct ref *r, struct bpos from, size_t count, struct bk_result *out,
		    size_t *got)
{
	const struct bk_tree_rt *t = r->t;
	struct bk_result first;
	uint32_t node, idx;
	int err = ref_lookup(r, from, &first);

	*got = 0;
	if (err || !first.found)
		return err;
	for (node = first.node, idx = first.idx; *got < count && node < t->bt->nr_leaves;
	     node++, idx = 0) {
		const struct bkey_format *pf = &t->nc->cache.e[t->fid_of_node[node]].f;
		uint32_t nr = t->bt->nodes[node].nr_keys, take = nr - idx, i;
		struct bkey_format f;

		if (take > count - *got)
			take = count - *got;
		err = ref_node_format(r, t->base + node, pf, &f);
		if (err)
			return err;
		/* the run's end inside the node's table */
		if (idx + take > r->nw)
			return BK_ERR_ARGS;
		for (i = idx; i < idx + take; i++) {
			const uint8_t *k;

			err = ref_check_key(r, t->base + node, i, f.key_u64s, &k);
			if (err)
				return err;
			ref_unpack(&f, k, out[*got].key);
			(*got)++;
		}
	}
	return 0;
}

static void on_watchdog(int sig)
{
	static const char msg[] = "corrupt: FAIL watchdog: 30 s without finishing a corruption's "
				  "lookups (a hang)\n";

	(void)sig;
	if (write(2, msg, sizeof(msg) - 1) < 0)
		_exit(2);
	_exit(1);
}

struct tally {
	unsigned long corruptions, lookups, answered, failed, stricter, scans, scanned;
};

/* One random word somewhere in slot @slot: header, keys or table. */
static void corrupt_word(uint8_t *img, size_t vsize, unsigned node_size, uint64_t *seed,
			 uint32_t nr_slots)
{
	size_t words = vsize / 8, w;
	uint64_t v, *p;

	switch (rnd_below(seed, 4)) {
	case 0:
		w = rnd_below(seed, BK_NODE_WORDS_OFF / 8);			/* header */
		break;
	case 1:
		w = bk_node_tab_off(node_size) / 8 +
		    rnd_below(seed, node_size / 32 + 1);			/* table */
		break;
	default:
		w = BK_NODE_WORDS_OFF / 8 + rnd_below(seed, node_size / 8);	/* keys */
		break;
	}
	if (w >= words)
		w = words - 1;
	p = (uint64_t *)img + w;
	switch (rnd_below(seed, 6)) {
	case 0: v = rnd_next(seed); break;
	case 1: v = *p ^ (1ull << rnd_below(seed, 64)); break;
	case 2: v = (*p & ~0xffffull) | rnd_below(seed, 2 * nr_slots + 4); break;
	case 3: v = (*p & ~0xffull) | rnd_below(seed, 256); break;
	case 4: v = (*p & 0xffffffffull) | rnd_below(seed, 2 * nr_slots + 4) << 32; break;
	default: v = *p + (rnd_below(seed, 2) ? 1 : -1); break;
	}
	*p = v;
}

/* A key of the subtree under node @n (its key range), so that lookups meet the corruption. */
static const struct bkey *key_under(const struct bk_keyset *ks, const struct bk_node *n,
				    uint64_t *seed)
{
	size_t lo = bk_keyset_lower_bound(ks, n->min_key), hi = lo;

	while (hi < ks->nr && bpos_cmp(bkey_pos(&ks->keys[hi].k), n->max_key) <= 0 && hi - lo < 4096)
		hi++;
	if (hi == lo)
		return &ks->keys[rnd_below(seed, ks->nr)].k;
	return &ks->keys[lo + rnd_below(seed, hi - lo)].k;
}

static bool same_result(const struct bk_result *a, const struct bk_result *b)
{
	return a->found == b->found &&
	       (!a->found || (!memcmp(a->key, b->key, 40) && a->node == b->node && a->idx == b->idx));
}

static void random_words(struct kenv *k)
{
	const char *env = getenv("BKEY_CORRUPTIONS");
	unsigned long nr = env ? strtoul(env, NULL, 0) : 100000, n;
	struct bk_btree_opts o = { .node_size = 512, .leaf_gaps = true };
	uint64_t seed = 0x5eedc0de, val[3] = { 7, 8, 9 };
	struct bk_keyset ks = {};
	struct bk_tree_rt t;
	struct bk_btree bt;
	struct tally ta = {};
	struct ref r;
	char err[200];
	uint8_t *save = NULL;
	size_t i;
	bool ok = true;

	(void)k;
	/* inodes with runs of offsets: varied formats, many leaves, depth 3 */
	for (i = 0; i < 6000; i++) {
		struct bkey key = { .u64s = BKEY_U64s + 1 + (i % 3 == 0), .format_nw = 1, .type = 8,
				    .inode = 4096 + i / 60, .offset = rnd_below(&seed, 1ull << 36),
				    .snapshot = rnd_below(&seed, 4) ? UINT32_MAX : (uint32_t)i,
				    .size = rnd_below(&seed, 100) };

		bk_keyset_add(&ks, &key, val);
	}
	bk_keyset_sort_dedup(&ks);
	if (!ASSERT_OK(bk_btree_build(&bt, &ks, &o, err, sizeof(err)), err))
		goto out_keys;
	if (!ASSERT_OK(bk_tree_load(&t, &bt, NULL, stderr), "tree load"))
		goto out_tree;
	ASSERT_GE(bt.depth, 3, "depth");
	r = (struct ref){ .t = &t, .nodes = t.nc->lr.nodes, .vsize = t.nc->lr.node_value_size,
			  .node_size = o.node_size, .nw = o.node_size / 8 };
	save = malloc(r.vsize);
	signal(SIGALRM, on_watchdog);
	for (n = 0; n < nr && ok && save; n++) {
		uint32_t node = rnd_below(&seed, bt.nr_nodes);
		uint8_t *img = (uint8_t *)t.nc->lr.nodes + (size_t)(t.base + node) * r.vsize;
		struct bk_result kr[8], rr[8];
		unsigned q;
		size_t kgot, rgot;
		int kret, rret;

		alarm(30);
		memcpy(save, img, r.vsize);
		corrupt_word(img, r.vsize, o.node_size, &seed, bt.nr_nodes);
		if (rnd_below(&seed, 3) == 0)	/* two words at once, sometimes */
			corrupt_word(img, r.vsize, o.node_size, &seed, bt.nr_nodes);
		ta.corruptions++;
		for (q = 0; q < 3 && ok; q++) {
			const struct bkey *kk = key_under(&ks, &bt.nodes[node], &seed);
			struct bpos pos = q == 2 ? (struct bpos){ 4096 + rnd_below(&seed, 110),
								  rnd_next(&seed), UINT32_MAX } :
					  (struct bpos){ kk->inode, kk->offset + q, kk->snapshot };

			kret = bk_tree_lookup(&t, &pos, 1, &kr[0]);
			rret = ref_lookup(&r, pos, &rr[0]);
			ta.lookups++;
			if (!kret) {
				ta.answered++;
				ok &= ASSERT_OK(rret, "kernel answered: the reference finds the map good") &&
				      ASSERT_TRUE(same_result(&kr[0], &rr[0]), "the kernel's answer is the "
						  "reference's");
			} else {
				ta.failed++;
				if (!rret && ta.stricter++ < 5) {
					bk_tree_bad_reason(&t, err, sizeof(err));
					printf("  kernel stricter (node %u): %d: %s\n", node, kret, err);
				}
			}
		}
		{
			const struct bkey *kk = key_under(&ks, &bt.nodes[node], &seed);
			struct bpos from = { kk->inode, kk->offset, kk->snapshot };

			kret = bk_tree_scan(&t, from, 8, kr, &kgot);
			rret = ref_scan(&r, from, 8, rr, &rgot);
			ta.scans++;
			if (!kret) {
				ok &= ASSERT_OK(rret, "kernel scanned: the reference finds the map good") &&
				      ASSERT_EQ(kgot, rgot, "keys scanned");
				for (i = 0; ok && i < kgot; i++)
					ok &= ASSERT_MEMEQ(kr[i].key, rr[i].key, 40, "scanned key");
				ta.scanned += kgot;
			}
		}
		if (!ok) {
			const struct bk_node_hdr *h = (const void *)img;

			bk_tree_bad_reason(&t, err, sizeof(err));
			fprintf(stderr, "  corruption %lu: node %u (slot %u, level %u, format id %u); "
				"the kernel's last error: %s\n", n, node, t.base + node, h->level,
				h->format_id, err);
		}
		memcpy(img, save, r.vsize);
	}
	alarm(0);
	signal(SIGALRM, SIG_DFL);
	ASSERT_GE(ta.corruptions, nr, "corruptions");
	ASSERT_GT(ta.failed, 0, "corruptions that made lookups fail");
	ASSERT_GT(ta.answered, 0, "lookups answered through corrupted nodes");
	/* the kernel may be stricter (a walk longer than a run), rarely */
	ASSERT_LE(ta.stricter, ta.lookups / 1000, "lookups failed where the reference answered");
	test__count("corruptions of node slots", ta.corruptions);
	test__count("lookups: answered, equal to the reference", ta.answered);
	test__count("lookups: failed with an error", ta.failed);
	test__count("lookups: failed where the reference answered", ta.stricter);
	test__count("scans", ta.scans);
	test__count("scanned keys, equal to the reference", ta.scanned);
	free(save);
	bk_tree_unload(&t);
out_tree:
	bk_btree_free(&bt);
out_keys:
	bk_keyset_free(&ks);
}

DEFINE_TEST(corrupt)
{
	struct kenv *k;

	if (test__start_subtest("random_words") && (k = kenv_get())) {
		kenv_each_loops(k, random_words);
		/* and the node search in bpf_loop callbacks, where it loads */
		if (k->ft.bpf_loop && k->ft.tail_call_subprog) {
			setenv("BKEY_SEARCH", "bpf_loop", 1);
			random_words(k);
			unsetenv("BKEY_SEARCH");
		}
	}
}
