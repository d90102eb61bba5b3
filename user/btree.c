// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "btree.h"
#include "gen.h"

static const struct bpos SPOS_MAX = { UINT64_MAX, UINT64_MAX, UINT32_MAX };

/* One key to place: unpacked, with its value. */
struct entry {
	struct bkey	k;
	const uint64_t	*val;
};

/*
 * The format of keys [a, b) between @min and @max (spec 8).  With a
 * sample, only the first @sample keys count (a format chosen before the
 * node's other keys and bounds were known): later keys may not pack and
 * are stored unpacked, as bcachefs stores such keys, and searches below
 * the sampled keys may not pack at all (FAIL).
 */
static struct bkey_format node_format(const struct entry *e, size_t a, size_t b,
				      struct bpos min, struct bpos max,
				      const struct bk_btree_opts *o)
{
	struct bkey_format_state s;
	size_t i, n = b - a;

	if (o->format_sample && o->format_sample < n)
		n = o->format_sample;
	bkey_format_init(&s);
	if (!o->format_sample) {
		bkey_format_add_pos(&s, min);
		bkey_format_add_pos(&s, max);
	}
	for (i = a; i < a + n; i++)
		bkey_format_add_key(&s, &e[i].k);
	return bkey_format_done(&s, o->era);
}

/* Words keys [a, b) take in format @f (unpacked where they don't pack). */
static size_t node_words(const struct entry *e, size_t a, size_t b,
			 const struct bkey_format *f)
{
	uint64_t w[BKEY_U64s];
	size_t i, words = 0;

	for (i = a; i < b; i++) {
		unsigned val = e[i].k.u64s - BKEY_U64s;

		words += val + (bkey_pack_key(f, &e[i].k, w, NULL) ? BKEY_U64s : f->key_u64s);
	}
	return words;
}

static int add_node(struct bk_btree *bt, const struct entry *e, size_t a, size_t b,
		    struct bpos min, struct bpos max, unsigned level)
{
	struct bk_node *n;
	size_t i, pos = 0, words;

	if (bt->nr_nodes == bt->cap_nodes) {
		uint32_t cap = bt->cap_nodes ? 2 * bt->cap_nodes : 64;
		struct bk_node *p = realloc(bt->nodes, cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		bt->nodes = p;
		bt->cap_nodes = cap;
	}
	n = &bt->nodes[bt->nr_nodes];
	memset(n, 0, sizeof(*n));
	n->f = node_format(e, a, b, min, max, &bt->o);
	n->min_key = min;
	n->max_key = max;
	n->level = level;
	n->nr_keys = b - a;
	words = node_words(e, a, b, &n->f);
	n->words = calloc(words + 1, 8);
	n->tab = calloc(n->nr_keys + 1, sizeof(*n->tab));
	if (!n->words || !n->tab) {
		free(n->words);
		free(n->tab);
		return -ENOMEM;
	}
	for (i = a; i < b; i++) {
		unsigned val = e[i].k.u64s - BKEY_U64s, kw = n->f.key_u64s;

		n->tab[i - a] = pos;
		if (bkey_pack_key(&n->f, &e[i].k, n->words + pos, NULL)) {
			memcpy(n->words + pos, &e[i].k, sizeof(e[i].k));
			kw = BKEY_U64s;
			n->nr_unpacked++;
		}
		memcpy(n->words + pos + kw, e[i].val, 8 * val);
		pos += kw + val;
	}
	n->tab[n->nr_keys] = pos;
	n->u64s = pos;
	bt->nr_nodes++;
	return 0;
}

/*
 * How many keys from @a fit a node: the field ranges accumulate as keys
 * come, so each step costs O(1) (with a sample, the format is fixed once
 * the sample is in and each further key packs or not).
 */
static size_t grow_node(const struct bk_btree *bt, const struct entry *e, size_t a, size_t nr,
			struct bpos min, size_t cap)
{
	const struct bk_btree_opts *o = &bt->o;
	struct bkey_format_state s;
	struct bkey_format f;
	size_t b = a, vals = 0, words = 0;

	bkey_format_init(&s);
	if (!o->format_sample)
		bkey_format_add_pos(&s, min);
	while (b < nr) {
		unsigned val = e[b].k.u64s - BKEY_U64s;
		size_t n = b - a + 1, w;

		if (!o->format_sample || n <= o->format_sample) {
			struct bkey_format_state s2 = s;

			bkey_format_add_key(&s2, &e[b].k);
			f = bkey_format_done(&s2, o->era);
			w = o->format_sample ? node_words(e, a, b + 1, &f) : n * f.key_u64s + vals + val;
			if (w > cap)
				break;
			s = s2;
		} else {
			uint64_t kw[BKEY_U64s];

			w = words + val + (bkey_pack_key(&f, &e[b].k, kw, NULL) ? BKEY_U64s : f.key_u64s);
			if (w > cap)
				break;
		}
		words = w;
		vals += val;
		b++;
	}
	return b;
}

/*
 * The max key of a node whose keys end at e[b - 1]: its last key, or with
 * leaf gaps (leaves only) just below the next key, as a real leaf may end
 * below its max; the last node of a level reaches SPOS_MAX.
 */
static struct bpos node_max(const struct bk_btree *bt, const struct entry *e, size_t b,
			    bool last, unsigned level)
{
	if (last)
		return SPOS_MAX;
	if (bt->o.leaf_gaps && !level)
		return bpos_predecessor(bkey_pos(&e[b].k));
	return bkey_pos(&e[b - 1].k);
}

/*
 * Fills nodes greedily: a node takes keys while they fit, the format
 * recomputed as they come.  The last node of a level reaches SPOS_MAX,
 * which can widen its format; it gives keys back until it fits.
 */
static int build_level(struct bk_btree *bt, const struct entry *e, size_t nr, unsigned level,
		       uint32_t *first, char *err, size_t errlen)
{
	size_t cap = bt->o.node_size / 8, a = 0;
	struct bpos min = { 0, 0, 0 };
	int ret;

	*first = bt->nr_nodes;
	while (a < nr) {
		struct bkey_format f;
		struct bpos max;
		size_t b = grow_node(bt, e, a, nr, min, cap), words;
		bool last;

		if (b == a) {
			snprintf(err, errlen, "a key with %u value words does not fit a %u-byte node",
				 e[a].k.u64s - BKEY_U64s, bt->o.node_size);
			return -EINVAL;
		}
		for (;;) {
			last = b == nr;
			max = node_max(bt, e, b, last, level);
			f = node_format(e, a, b, min, max, &bt->o);
			words = node_words(e, a, b, &f);
			if (words <= cap || b == a + 1)
				break;
			b--;
		}
		if (words > cap) {
			snprintf(err, errlen, "the last key does not fit a %u-byte node with the "
				 "format that reaches the maximum position", bt->o.node_size);
			return -EINVAL;
		}
		ret = add_node(bt, e, a, b, min, max, level);
		if (ret)
			return ret;
		min = bpos_successor(max);
		a = b;
	}
	return 0;
}

/* The btree_ptr_v2 key for child @c (spec 13): at its max key. */
static void ptr_entry(const struct bk_btree *bt, uint32_t c, struct bkey *k, uint64_t *val)
{
	const struct bk_node *n = &bt->nodes[c];
	uint8_t *v = (uint8_t *)val;

	memset(k, 0, sizeof(*k));
	k->u64s = BKEY_U64s + BK_PTR_VAL_U64s;
	k->format_nw = KEY_FORMAT_CURRENT;
	k->type = KEY_TYPE_btree_ptr_v2;
	k->inode = n->max_key.inode;
	k->offset = n->max_key.offset;
	k->snapshot = n->max_key.snapshot;
	memset(val, 0, 8 * BK_PTR_VAL_U64s);
	val[0] = c;				/* mem_ptr: the child's index here */
	val[1] = c + 1;				/* seq */
	memcpy(v + 20, &n->min_key.snapshot, 4);
	memcpy(v + 24, &n->min_key.offset, 8);
	memcpy(v + 32, &n->min_key.inode, 8);
	val[5] = 1 | (uint64_t)c << 4;		/* pointer: sector offset = index */
}

uint32_t bk_ptr_child(const struct bkey *k, const uint64_t *val)
{
	return k->type == KEY_TYPE_btree_ptr_v2 ? (uint32_t)val[0] : UINT32_MAX;
}

int bk_btree_build(struct bk_btree *bt, const struct bk_keyset *ks,
		   const struct bk_btree_opts *o, char *err, size_t errlen)
{
	struct entry *e;
	uint64_t *vals = NULL;
	uint32_t first, nr, level = 0, i;
	int ret;

	memset(bt, 0, sizeof(*bt));
	bt->o = *o;
	if (o->node_size < BK_NODE_SIZE_MIN || o->node_size > BK_NODE_SIZE_MAX ||
	    o->node_size % 8) {
		snprintf(err, errlen, "node size %u: must be a multiple of 8 in %u..%u",
			 o->node_size, BK_NODE_SIZE_MIN, BK_NODE_SIZE_MAX);
		return -EINVAL;
	}
	if (!ks->nr) {
		snprintf(err, errlen, "no keys");
		return -EINVAL;
	}
	e = calloc(ks->nr, sizeof(*e));
	if (!e)
		return -ENOMEM;
	for (i = 0; i < ks->nr; i++) {
		e[i].k = ks->keys[i].k;
		e[i].val = bk_keyset_val(ks, &ks->keys[i]);
	}
	ret = build_level(bt, e, ks->nr, 0, &first, err, errlen);
	nr = bt->nr_nodes - first;
	bt->nr_leaves = nr;
	/* interior levels until one node remains */
	while (!ret && nr > 1) {
		struct entry *pe = calloc(nr, sizeof(*pe));

		free(vals);
		vals = calloc(nr, 8 * BK_PTR_VAL_U64s);
		if (!pe || !vals) {
			free(pe);
			ret = -ENOMEM;
			break;
		}
		for (i = 0; i < nr; i++) {
			ptr_entry(bt, first + i, &pe[i].k, vals + i * BK_PTR_VAL_U64s);
			pe[i].val = vals + i * BK_PTR_VAL_U64s;
		}
		level++;
		ret = build_level(bt, pe, nr, level, &first, err, errlen);
		nr = bt->nr_nodes - first;
		free(pe);
	}
	free(vals);
	free(e);
	if (ret) {
		bk_btree_free(bt);
		return ret;
	}
	bt->root = bt->nr_nodes - 1;
	bt->depth = level + 1;
	bt->leaf_gaps = o->leaf_gaps;
	for (i = 0; i + 1 < bt->nr_leaves; i++)
		bt->nodes[i].next_leaf = i + 2;
	return 0;
}

void bk_btree_free(struct bk_btree *bt)
{
	uint32_t i;

	for (i = 0; i < bt->nr_nodes; i++) {
		free(bt->nodes[i].words);
		free(bt->nodes[i].tab);
	}
	free(bt->nodes);
	memset(bt, 0, sizeof(*bt));
}

const uint64_t *bk_node_key(const struct bk_node *n, uint32_t idx, struct bkey *k)
{
	const uint64_t *kw = n->words + n->tab[idx];

	bkey_unpack_key(&n->f, kw, k);
	return kw + bkey_key_words(&n->f, kw);
}

/*
 * Is key @idx at or above the search?  Packed keys are compared packed
 * against the lossily packed search key: with EXACT, k >= packed; with
 * SMALLER (the greatest representable position below the search),
 * k > packed; with FAIL every representable position is above it.
 * Unpacked keys are compared by position.
 */
static bool key_at_or_above(const struct bk_node *n, uint32_t idx, struct bpos pos,
			    enum bkey_pack_pos_ret r, const uint64_t *packed)
{
	const uint64_t *kw = n->words + n->tab[idx];
	int c;

	if (bkey_format_byte(kw) != KEY_FORMAT_LOCAL_BTREE)
		return bpos_cmp(bkey_unpack_pos(&n->f, kw), pos) >= 0;
	if (r == BKEY_PACK_POS_FAIL)
		return true;
	c = bkey_cmp_packed(&n->f, kw, packed);
	return r == BKEY_PACK_POS_EXACT ? c >= 0 : c > 0;
}

uint32_t bk_node_lower_bound(const struct bk_node *n, struct bpos pos)
{
	uint64_t packed[BKEY_U64s];
	enum bkey_pack_pos_ret r = bkey_pack_pos_lossy(&n->f, pos, packed);
	uint32_t lo = 0, hi = n->nr_keys;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (key_at_or_above(n, mid, pos, r, packed))
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

int bk_btree_lookup(const struct bk_btree *bt, struct bpos pos, uint32_t *node, uint32_t *idx)
{
	uint32_t cur = bt->root, i, hops;

	for (;;) {
		const struct bk_node *n = &bt->nodes[cur];
		struct bkey k;
		const uint64_t *val;

		i = bk_node_lower_bound(n, pos);
		if (!n->level)
			break;
		if (i == n->nr_keys)	/* the last child reaches SPOS_MAX */
			return -ENOENT;
		val = bk_node_key(n, i, &k);
		cur = bk_ptr_child(&k, val);
		if (cur >= bt->nr_nodes)
			return -EINVAL;
	}
	/* past this leaf's keys: the next leaf's first key is the answer (the
	 * leaves' own links, as the programs follow them; a hop a node) */
	for (hops = 0; i == bt->nodes[cur].nr_keys; hops++) {
		if (!bt->nodes[cur].next_leaf)
			return -ENOENT;
		cur = bt->nodes[cur].next_leaf - 1;
		if (cur >= bt->nr_nodes || hops >= bt->nr_nodes)
			return -EINVAL;
		i = 0;
	}
	*node = cur;
	*idx = i;
	return 0;
}

/*
 * An interior node's children are node indices in the tree (the mem_ptr
 * of each btree_ptr_v2 value): in a node cache they are the slots from
 * @base on.
 */
static void relocate_children(const struct bk_node *n, uint64_t *words, uint32_t base)
{
	uint32_t i;

	if (!n->level || !base)
		return;
	for (i = 0; i < n->nr_keys; i++) {
		uint64_t *k = words + n->tab[i];

		if (n->tab[i + 1] > n->tab[i] + bkey_key_words(&n->f, k))
			k[bkey_key_words(&n->f, k)] += base;
	}
}

void bk_node_image(const struct bk_node *n, unsigned node_size, uint32_t format_id,
		   uint32_t base, void *out)
{
	struct bk_node_hdr *h = out;

	size_t words = 8 * (size_t)n->u64s, tab = 2 * ((size_t)n->nr_keys + 1);
	uint8_t *v = out;

	/* zero what the keys and the table do not cover: the header, the
	 * node's unused words (a slot is reused), the table's tail */
	memset(h, 0, BK_NODE_WORDS_OFF);
	memset(v + BK_NODE_WORDS_OFF + words, 0, node_size - words);
	memset(v + bk_node_tab_off(node_size) + tab, 0,
	       bk_node_value_size(node_size) - bk_node_tab_off(node_size) - tab);
	memcpy(h->format, &n->f, sizeof(n->f));
	h->nr_keys = n->nr_keys;
	h->level = n->level;
	h->format_id = format_id;
	h->next_leaf = n->level || !n->next_leaf ? 0 : n->next_leaf + base;
	bk_unpack_template(&n->f, h->tmpl);
	memcpy(v + BK_NODE_WORDS_OFF, n->words, words);
	memcpy(v + bk_node_tab_off(node_size), n->tab, tab);
	relocate_children(n, (uint64_t *)(v + BK_NODE_WORDS_OFF), base);
}

size_t bk_keyset_lower_bound(const struct bk_keyset *ks, struct bpos pos)
{
	size_t lo = 0, hi = ks->nr;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct bkey *k = &ks->keys[mid].k;

		if (bpos_cmp((struct bpos){ k->inode, k->offset, k->snapshot }, pos) >= 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

bool bk_keyset_answer_ok(const struct bk_keyset *ks, struct bpos pos, bool found,
			 const void *key)
{
	size_t want = bk_keyset_lower_bound(ks, pos);

	if (want == ks->nr)
		return !found;
	return found && !memcmp(key, &ks->keys[want].k, sizeof(struct bkey));
}
