/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A bulk-loaded btree of bcachefs keys, node images close to a bset: keys
 * packed in the node's own format (spec 8), walked by u64s, plus a table
 * of key offsets.  Interior nodes hold btree_ptr_v2 keys at each child's
 * max key (spec 13).  This is the userspace side: building, and the
 * reference lookups the kernel's are checked against.
 */
#ifndef USER_BTREE_H
#define USER_BTREE_H

#include "bkey.h"
#include "keytext.h"

#define BK_NODE_SIZE_MIN	512
#define BK_NODE_SIZE_MAX	(256 * 1024)
#define BK_PTR_VAL_U64s		6	/* btree_ptr_v2 value: 40 bytes + one pointer */

struct bk_node {
	struct bkey_format	f;
	struct bpos		min_key, max_key;
	unsigned		level;		/* 0 = leaf */
	uint32_t		nr_keys;
	uint32_t		nr_unpacked;	/* keys stored unpacked (format byte 1) */
	uint32_t		u64s;		/* words of keys and values */
	uint64_t		*words;		/* the bset: keys walked by u64s */
	uint16_t		*tab;		/* word offset of each key, + the end */
	uint32_t		next_leaf;	/* a leaf: the next one's index + 1, 0 = last */
};

struct bk_btree_opts {
	unsigned		node_size;	/* bytes of keys and values per node */
	enum bkey_format_era	era;
	unsigned		format_sample;	/* 0: spec 8 (min, max, all keys); N: the first N keys only */
	/* leaves end below their max key, as real ones may: each leaf's max
	 * is just below the next leaf's first key, so a position past a
	 * leaf's last key is answered by the next leaf (next_leaf) */
	bool			leaf_gaps;
};

struct bk_btree {
	struct bk_btree_opts	o;
	struct bk_node		*nodes;		/* leaves first, the root last */
	uint32_t		nr_nodes, cap_nodes;
	uint32_t		root;
	unsigned		depth;		/* levels, 1 = the root is a leaf */
	uint32_t		nr_leaves;
	/* leaves may end below their max key (real trees): a lookup may hop
	 * to the next leaf, one more tail call than depth */
	bool			leaf_gaps;
};

/* Builds from a sorted key set (bk_keyset_sort()).  -EINVAL with a message
 * in @err for bad options or a key too big for a node. */
int bk_btree_build(struct bk_btree *bt, const struct bk_keyset *ks,
		   const struct bk_btree_opts *o, char *err, size_t errlen);
void bk_btree_free(struct bk_btree *bt);

/* The child a btree_ptr_v2 key (unpacked) points to. */
uint32_t bk_ptr_child(const struct bkey *k, const uint64_t *val);

/*
 * Lookup the way the kernel does it, in C with the model: in each node
 * pack the search position lossily, find the first key >= it by packed
 * comparison (exact comparison where packing was SMALLER or FAILed),
 * descend, and unpack the leaf's key.  Returns the key index in the leaf
 * and its node, or -ENOENT if every key is below @pos.
 */
int bk_btree_lookup(const struct bk_btree *bt, struct bpos pos, uint32_t *node, uint32_t *idx);
/* Unpacks key @idx of @node into @k; returns its value words. */
const uint64_t *bk_node_key(const struct bk_node *n, uint32_t idx, struct bkey *k);

/* The first key >= pos in node @n (the in-node step of the lookup). */
uint32_t bk_node_lower_bound(const struct bk_node *n, struct bpos pos);

/*
 * The node as programs read it (gen/abi.h): header, words, key table, in
 * a buffer of bk_node_value_size(node_size) bytes.  Its tree's node i is
 * slot @base + i of the nodes map: child pointers and the next leaf say so.
 */
void bk_node_image(const struct bk_node *n, unsigned node_size, uint32_t format_id,
		   uint32_t base, void *out);

/* The sorted-array reference: index of the first key >= pos, or nr. */
size_t bk_keyset_lower_bound(const struct bk_keyset *ks, struct bpos pos);
/* Is (@found, @key) the reference's answer for @pos? */
bool bk_keyset_answer_ok(const struct bk_keyset *ks, struct bpos pos, bool found,
			 const void *key);

#endif
