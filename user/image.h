/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Real bcachefs images: every btree read from its root through
 * btree_ptr_v2 pointers (bkey/ondisk.h does the parsing), each node's
 * bsets merged into the live keys the way bcachefs's node iterator sees
 * them, and each btree turned into a struct bk_btree that nodecache.c
 * loads into BPF like any other: the real nodes' own formats and packed
 * keys, followed by one extra node image per on-disk bset so that the
 * same programs unpack every on-disk key in the kernel.
 */
#ifndef USER_IMAGE_H
#define USER_IMAGE_H

#include <stdio.h>

#include "btree.h"
#include "nodecache.h"
#include "ondisk.h"

struct bk_img_btree {
	unsigned		id;
	bool			present;	/* has a root */
	unsigned		depth;		/* root level + 1 */
	struct bch_node		*nodes;		/* post-order, as bcachefs lists -l 0 */
	uint32_t		nr_nodes, cap_nodes;
	uint32_t		nr_bsets;
	uint64_t		nr_keys;	/* on disk, in every bset */
	uint32_t		nr_skipped;	/* nodes not read, with their subtrees */
};

struct bk_image {
	uint8_t			*buf;
	size_t			size;
	struct bch_sb_info	sb;
	struct bk_img_btree	bt[BCH_BTREE_ID_NR];
	unsigned		nr_node_errors;
};

/*
 * Reads a whole image file, zstd-compressed (by its magic) or plain.
 * -errno with a message naming the file.
 */
int bk_image_read_file(const char *path, uint8_t **buf, size_t *size, char *err, size_t errlen);

/*
 * Reads the superblock and walks every btree from its root.  A node that
 * fails (checksum, framing, a stale or misplaced node) is reported on
 * @errs, counted, and skipped with its subtree; the other nodes are kept.
 * Returns 0, or -errno with @err for an image that cannot be read at all
 * (superblock: magic, version, checksum, truncation).  Takes @buf.
 */
int bk_image_open(struct bk_image *im, uint8_t *buf, size_t size, FILE *errs,
		  char *err, size_t errlen);
void bk_image_close(struct bk_image *im);

/* A live key of a node: where it is on disk and its model unpack. */
struct bk_img_key {
	struct bkey		k;
	const uint8_t		*raw;		/* the key on disk, value after it */
	uint32_t		bset;
};

/*
 * The node's live keys in order: bsets merged, at one position the newest
 * bset's key wins, deleted keys and whiteouts dropped.  *out is malloc'd.
 */
int bk_node_merge(const struct bch_node *n, struct bk_img_key **out, size_t *nr);

/* A btree loaded into BPF: its merged nodes, then one node per bset. */
struct bk_img_tree {
	const struct bk_img_btree *ib;
	struct bk_btree		bt;
	uint32_t		*bset_node;	/* first pseudo node of each real node */
	struct bk_keyset	live;		/* the reference: live keys in order */
	struct bk_tree_rt	t;
	bool			loaded;
};

/*
 * Builds and loads btree @id of @im into node cache @nc (NULL: its own).
 * -ENOENT if it has no root, -EUCLEAN if nodes of it were skipped (nothing
 * is loaded), else as bk_tree_load(); messages in @err.
 */
int bk_img_tree_load(struct bk_img_tree *it, const struct bk_image *im, unsigned id,
		     struct bk_node_cache *nc, FILE *log_out, char *err, size_t errlen);
/* The node slots btree @id of @im takes when loaded (0 if it is not loaded). */
uint32_t bk_img_tree_slots(const struct bk_image *im, unsigned id);
void bk_img_tree_unload(struct bk_img_tree *it);

/*
 * One run of the unpack of bset @b of real node @node in the kernel: its
 * keys land in it->t.srt.out; *duration_ns (may be NULL) gets the
 * kernel's time.  Returns 0, a BK_ERR_* status, -EIO with @err if keys
 * are missing, or -errno.
 */
int bk_img_run_bset(struct bk_img_tree *it, uint32_t node, unsigned b, uint32_t *duration_ns,
		    char *err, size_t errlen);

/*
 * The same run, its keys copied to @out (b's nr_keys keys), each checked
 * against the model's unpack: -EIO with @err on a disagreement.
 */
int bk_img_unpack_bset(struct bk_img_tree *it, uint32_t node, unsigned b, struct bkey *out,
		       char *err, size_t errlen);

/*
 * bcachefs's nodes_ondisk listing of btree @it, unpacked in the kernel:
 * per node a line (btree, level, min..max, seq, written, pointer, format),
 * per bset "  offset S version V, journal seq J", per key
 * "    u64s U type T pos len N ver V".  Returns 0 or as bk_img_unpack_bset().
 */
int bk_img_list_ondisk(struct bk_img_tree *it, const struct bch_sb_info *sb, FILE *out,
		       char *err, size_t errlen);

/* "u64s U type T inode:offset:snapshot len N ver V", bcachefs's text */
void bk_img_key_str(const struct bkey *k, char *buf, size_t len);

#endif
