/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Pinned trees: a loaded btree pinned under a bpffs directory, so that
 * other processes (a later `loader lookup --pinned DIR`) can query it.
 * The layout (one bpffs object each, README "Pinned trees"):
 *
 *   meta          array map, one struct bk_pin_meta: what the rest is
 *   nodes         the nodes map (node images, gen/abi.h)
 *   progs         the prog array: format id -> lookup program
 *   search        the lookups' search slots (ctl, queries, results)
 *   scan_ctl, scan_in, scan_out   the scans' run slots
 *   lookup_<fid>, scan_<fid>      the programs of each shape
 *
 * Anyone who can write bpffs can change any of it: opening checks the
 * meta and every node header it relies on, and the programs and driver
 * check the nodes as they walk them (never a hang, a crash or a wrong
 * answer).
 */
#ifndef USER_PIN_H
#define USER_PIN_H

#include "nodecache.h"

#define BK_PIN_MAGIC	0x656572747965626bULL	/* "bkeytree" */
#define BK_PIN_VERSION	2	/* 2: node headers and ctl lost unread fields */
/*
 * Run slots of a tree to pin: each process that opens it claims one (the
 * owner word of its scan ctl, by compare-and-swap), so up to this many
 * query it at once without sharing arguments, scratch or results.
 */
#define BK_PIN_RUN_SLOTS	8

struct bk_pin_meta {
	unsigned long long	magic;
	unsigned int		version;
	unsigned int		node_size;
	unsigned int		slot_first;	/* the tree's nodes: these slots */
	unsigned int		nr_nodes;
	unsigned int		nr_leaves;	/* its first nodes */
	unsigned int		root;		/* the tree's node index */
	unsigned int		depth;
	unsigned int		leaf_gaps;
	unsigned int		nr_fids;	/* program slots (format ids) */
	unsigned int		pad;
};

/*
 * Pins @t under @dir (a bpffs directory).  Nothing is left half pinned:
 * on failure what was pinned is unpinned, and @err says which object and
 * why (an object already there: remove the old tree first).
 */
int bk_tree_pin(const struct bk_tree_rt *t, const char *dir, char *err, size_t len);

/* A pinned tree, opened: t is queried like a loaded one. */
struct bk_pinned {
	struct bk_btree		bt;	/* the shape of the tree, from meta and headers */
	struct bk_node_cache	nc;
	struct bk_tree_rt	t;
	unsigned int		*owner;	/* the claimed run slot's owner word */
};

/*
 * Opens the tree pinned under @dir and claims a free run slot of it
 * (-EBUSY if all are held by live processes); -errno with @err naming the
 * object or node.
 */
int bk_pinned_open(struct bk_pinned *p, const char *dir, char *err, size_t len);
void bk_pinned_close(struct bk_pinned *p);

#endif
