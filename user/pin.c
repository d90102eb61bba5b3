// SPDX-License-Identifier: GPL-2.0
/*
 * Pinned trees (pin.h): pinning a loaded tree, and opening a pinned one
 * with everything it says checked before it is relied on.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "pin.h"

/* The objects pinned so far, to unpin them all if one fails. */
struct pin_list {
	char	(*path)[PATH_MAX];
	int	nr, cap;
};

static int pin_one(struct pin_list *pl, int fd, const char *dir, const char *name,
		   char *err, size_t len)
{
	char *path = pl->path[pl->nr];

	if (pl->nr == pl->cap)
		return -E2BIG;
	snprintf(path, PATH_MAX, "%s/%s", dir, name);
	if (bpf_obj_pin(fd, path)) {
		int ret = -errno;

		snprintf(err, len, "cannot pin %s: %s%s", path, strerror(-ret),
			 ret == -EEXIST ? " (a tree is pinned there: remove it first)" : "");
		return ret;
	}
	pl->nr++;
	return 0;
}

static int pin_meta(struct pin_list *pl, const struct bk_tree_rt *t, const char *dir,
		    char *err, size_t len)
{
	const struct bk_pin_meta meta = {
		.magic = BK_PIN_MAGIC, .version = BK_PIN_VERSION,
		.node_size = t->bt->o.node_size, .slot_first = t->base,
		.nr_nodes = t->bt->nr_nodes, .nr_leaves = t->bt->nr_leaves, .root = t->bt->root,
		.depth = t->bt->depth, .leaf_gaps = t->bt->leaf_gaps, .nr_fids = t->nc->nr_slots,
	};
	uint32_t key = 0;
	int fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "bk_pin_meta", 4, sizeof(meta), 1, NULL);
	int ret;

	if (fd < 0 || bpf_map_update_elem(fd, &key, &meta, 0)) {
		ret = -errno;
		snprintf(err, len, "cannot make the meta map: %s", strerror(-ret));
		if (fd >= 0)
			close(fd);
		return ret;
	}
	ret = pin_one(pl, fd, dir, "meta", err, len);
	close(fd);
	return ret;
}

int bk_tree_pin(const struct bk_tree_rt *t, const char *dir, char *err, size_t len)
{
	struct bk_node_cache *nc = t->nc;
	const struct { const char *name; int fd; } maps[] = {
		{ "nodes", nc->lr.nodes_fd }, { "progs", nc->lr.progs_fd },
		{ "search", nc->lr.ctl_fd }, { "scan_ctl", nc->srt.ctl_fd },
		{ "scan_in", nc->srt.in_fd }, { "scan_out", nc->srt.out_fd },
	};
	struct pin_list pl = { .cap = 7 + 2 * (int)nc->nr_slots };
	char name[32];
	uint32_t fid;
	unsigned i;
	int ret = 0;

	pl.path = calloc(pl.cap, sizeof(*pl.path));
	if (!pl.path) {
		snprintf(err, len, "%s", strerror(ENOMEM));
		return -ENOMEM;
	}
	for (i = 0; i < sizeof(maps) / sizeof(maps[0]) && !ret; i++)
		ret = pin_one(&pl, maps[i].fd, dir, maps[i].name, err, len);
	for (fid = 0; fid < nc->cache.nr && !ret; fid++) {
		const struct bk_fmt_entry *e = &nc->cache.e[fid];

		if (e->lookup.fd < 0 || e->scan.fd < 0)
			continue;
		snprintf(name, sizeof(name), "lookup_%u", fid);
		ret = pin_one(&pl, e->lookup.fd, dir, name, err, len);
		snprintf(name, sizeof(name), "scan_%u", fid);
		if (!ret)
			ret = pin_one(&pl, e->scan.fd, dir, name, err, len);
	}
	/* meta last: a tree without it is no tree to open */
	if (!ret)
		ret = pin_meta(&pl, t, dir, err, len);
	if (ret)
		while (pl.nr--)
			unlink(pl.path[pl.nr]);
	else
		nc->pinned = true;	/* unloading keeps the prog array's programs */
	free(pl.path);
	return ret;
}

/* An object of the pinned tree: its fd, or -errno with @err naming it. */
static int open_obj(const char *dir, const char *name, bool may_lack, char *err, size_t len)
{
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = bpf_obj_get(path);
	if (fd < 0) {
		fd = -errno;
		if (!(may_lack && fd == -ENOENT))
			snprintf(err, len, "cannot open %s: %s", path, strerror(-fd));
	}
	return fd;
}

static int read_meta(const char *dir, struct bk_pin_meta *m, char *err, size_t len)
{
	int fd = open_obj(dir, "meta", false, err, len), ret = 0;
	uint32_t key = 0;

	if (fd < 0)
		return fd;
	if (bpf_map_lookup_elem(fd, &key, m)) {
		ret = -errno;
		snprintf(err, len, "%s/meta: %s", dir, strerror(-ret));
	}
	close(fd);
	if (ret)
		return ret;
	if (m->magic != BK_PIN_MAGIC || m->version != BK_PIN_VERSION)
		snprintf(err, len, "%s/meta: not a bkey-bpf tree of version %u", dir, BK_PIN_VERSION);
	else if (m->node_size < BK_NODE_SIZE_MIN || m->node_size > BK_NODE_SIZE_MAX ||
		 m->node_size % 8)
		snprintf(err, len, "%s/meta: node_size %u", dir, m->node_size);
	else if (!m->nr_nodes || !m->nr_leaves || m->nr_leaves > m->nr_nodes ||
		 m->root >= m->nr_nodes || !m->depth || m->depth > 64 || m->leaf_gaps > 1)
		snprintf(err, len, "%s/meta: nodes %u, leaves %u, root %u, depth %u", dir,
			 m->nr_nodes, m->nr_leaves, m->root, m->depth);
	else if (!m->nr_fids || m->nr_fids > 1u << 24 || m->slot_first > UINT32_MAX - m->nr_nodes)
		snprintf(err, len, "%s/meta: %u format ids, first slot %u", dir, m->nr_fids,
			 m->slot_first);
	else
		return 0;
	return -EINVAL;
}

static __u32 map_id(int fd)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);

	return bpf_obj_get_info_by_fd(fd, &info, &len) ? 0 : info.id;
}

/* Whether the program uses every map of @ids (the ones this process reads and writes). */
static bool prog_uses(const struct bpf_prog_info *info, const __u32 *used, const __u32 *ids,
		      unsigned n)
{
	unsigned i, j;

	for (i = 0; i < n; i++) {
		for (j = 0; j < info->nr_map_ids && used[j] != ids[i]; j++)
			;
		if (j == info->nr_map_ids)
			return false;
	}
	return true;
}

/*
 * A pinned program of ours, a socket filter (another kind cannot run
 * here) that uses the maps of @ids (the tree's, not others pinned in
 * their place): its fd in *fd, -1 if there is none; 0 or -errno.
 */
static int open_prog(const char *dir, const char *name, const __u32 *ids, unsigned nr_ids,
		     int *fd_out, char *err, size_t len)
{
	__u32 used[16] = {};
	struct bpf_prog_info info = { .nr_map_ids = 16, .map_ids = (__u64)(unsigned long)used };
	__u32 info_len = sizeof(info);
	int fd = open_obj(dir, name, true, err, len);

	*fd_out = -1;
	if (fd < 0)
		return fd == -ENOENT ? 0 : fd;
	if (bpf_obj_get_info_by_fd(fd, &info, &info_len) || info.type != BK_PROG_TYPE ||
	    info.nr_map_ids > 16 || !prog_uses(&info, used, ids, nr_ids)) {
		snprintf(err, len, "%s/%s: not one of the tree's programs (a socket filter using "
			 "the tree's maps)", dir, name);
		close(fd);
		return -EINVAL;
	}
	*fd_out = fd;
	return 0;
}

static int open_programs(struct bk_pinned *p, const char *dir, char *err, size_t len)
{
	struct bk_node_cache *nc = &p->nc;
	/* the maps this process reads: the programs must be using these */
	const __u32 lookup_ids[3] = { map_id(nc->lr.nodes_fd), map_id(nc->lr.ctl_fd),
				      map_id(nc->lr.progs_fd) };
	const __u32 scan_ids[3] = { map_id(nc->lr.nodes_fd), map_id(nc->srt.ctl_fd),
				    map_id(nc->srt.out_fd) };
	char name[32];
	uint32_t fid;

	nc->cache.e = calloc(nc->nr_slots, sizeof(*nc->cache.e));
	nc->prog_fd_by_fid = calloc(nc->nr_slots, sizeof(*nc->prog_fd_by_fid));
	if (!nc->cache.e || !nc->prog_fd_by_fid) {
		snprintf(err, len, "%s", strerror(ENOMEM));
		return -ENOMEM;
	}
	nc->cache.cap = nc->cache.nr = nc->nr_slots;
	for (fid = 0; fid < nc->nr_slots; fid++) {
		nc->cache.e[fid].fid = fid;
		nc->cache.e[fid].lookup.fd = nc->cache.e[fid].scan.fd = -1;
		nc->prog_fd_by_fid[fid] = -1;
	}
	for (fid = 0; fid < nc->nr_slots; fid++) {
		struct bk_fmt_entry *e = &nc->cache.e[fid];

		int ret;

		snprintf(name, sizeof(name), "lookup_%u", fid);
		ret = open_prog(dir, name, lookup_ids, 3, &e->lookup.fd, err, len);
		snprintf(name, sizeof(name), "scan_%u", fid);
		if (!ret)
			ret = open_prog(dir, name, scan_ids, 3, &e->scan.fd, err, len);
		if (ret)
			return ret;
		nc->prog_fd_by_fid[fid] = e->lookup.fd;
	}
	return 0;
}

/* The tree's shape from its node headers, each checked before it is used. */
static int read_nodes(struct bk_pinned *p, const struct bk_pin_meta *m, char *err, size_t len)
{
	struct bk_node_cache *nc = &p->nc;
	uint32_t i, nw = m->node_size / 8;

	p->bt.nodes = calloc(m->nr_nodes, sizeof(*p->bt.nodes));
	p->t.fid_of_node = calloc(m->nr_nodes, sizeof(*p->t.fid_of_node));
	if (!p->bt.nodes || !p->t.fid_of_node) {
		snprintf(err, len, "%s", strerror(ENOMEM));
		return -ENOMEM;
	}
	for (i = 0; i < m->nr_nodes; i++) {
		const struct bk_node_hdr *h = bk_lookup_node(&nc->lr, m->slot_first + i);
		uint32_t fid = h->format_id;

		if (h->nr_keys > nw) {
			snprintf(err, len, "node %u: %u keys, more than it holds", i, h->nr_keys);
			return -EINVAL;
		}
		if (fid >= nc->nr_slots || nc->cache.e[fid].lookup.fd < 0 ||
		    nc->cache.e[fid].scan.fd < 0) {
			snprintf(err, len, "node %u: format id %u has no program", i, fid);
			return -EINVAL;
		}
		/* the header's next leaf is a slot + 1, the tree's a node index + 1 */
		if (h->next_leaf && (h->next_leaf - 1 < m->slot_first ||
				     h->next_leaf - 1 - m->slot_first >= m->nr_nodes)) {
			snprintf(err, len, "node %u: its next leaf, slot %u, is not the tree's", i,
				 h->next_leaf - 1);
			return -EINVAL;
		}
		memcpy(&p->bt.nodes[i].f, h->format, sizeof(p->bt.nodes[i].f));
		p->bt.nodes[i].nr_keys = h->nr_keys;
		p->bt.nodes[i].level = h->level;
		p->bt.nodes[i].next_leaf = h->next_leaf ? h->next_leaf - m->slot_first : 0;
		p->t.fid_of_node[i] = fid;
	}
	return 0;
}

/*
 * A run slot of our own: its owner word goes from 0 (or a process that
 * is gone) to our pid.  The word is in the pinned scan ctl, shared by
 * every process that opens the tree.
 */
static int claim_run_slot(struct bk_pinned *p, const char *dir, char *err, size_t len)
{
	uint32_t k, me = getpid();

	for (k = 0; k < p->nc.nr_run_slots; k++) {
		struct bk_runtime view;
		unsigned int *owner, held;

		bk_runtime_slot(&p->nc.srt, k, &view);
		owner = &view.ctl->owner;
		held = __atomic_load_n(owner, __ATOMIC_ACQUIRE);
		if (held && held != me && (kill(held, 0) == 0 || errno != ESRCH))
			continue;	/* a live process's */
		if (__atomic_compare_exchange_n(owner, &held, me, false, __ATOMIC_ACQ_REL,
						__ATOMIC_ACQUIRE)) {
			p->owner = owner;
			p->t.run_slot = k;
			return 0;
		}
	}
	snprintf(err, len, "%s: all %u run slots are held by other processes", dir,
		 p->nc.nr_run_slots);
	return -EBUSY;
}

int bk_pinned_open(struct bk_pinned *p, const char *dir, char *err, size_t len)
{
	struct bk_node_cache *nc = &p->nc;
	struct bk_pin_meta m;
	int fds[6], i, ret;
	static const char *const names[6] = {
		"search", "nodes", "progs", "scan_ctl", "scan_in", "scan_out",
	};

	memset(p, 0, sizeof(*p));
	nc->lr.ctl_fd = nc->lr.nodes_fd = nc->lr.progs_fd = -1;
	nc->srt.ctl_fd = nc->srt.in_fd = nc->srt.out_fd = -1;
	ret = read_meta(dir, &m, err, len);
	if (ret)
		return ret;
	for (i = 0; i < 6; i++)
		fds[i] = -1;
	for (i = 0; i < 6 && !ret; i++) {
		fds[i] = open_obj(dir, names[i], false, err, len);
		if (fds[i] < 0)
			ret = fds[i];
	}
	if (ret) {
		while (i--)
			if (fds[i] >= 0)
				close(fds[i]);
		return ret;
	}
	ret = bk_lookup_rt_adopt(&nc->lr, fds[0], fds[1], fds[2], m.node_size);
	if (ret) {
		close(fds[3]);
		close(fds[4]);
		close(fds[5]);
		snprintf(err, len, "%s: search, nodes or progs is not a map of %u-byte nodes' tree",
			 dir, m.node_size);
		goto fail;
	}
	ret = bk_runtime_adopt(&nc->srt, fds[3], fds[4], fds[5]);
	if (ret) {
		snprintf(err, len, "%s: scan_ctl, scan_in or scan_out is not a scan map", dir);
		goto fail;
	}
	if (m.slot_first + m.nr_nodes > nc->lr.nr_nodes) {
		snprintf(err, len, "%s/meta: slots %u..%u past the nodes map's %u", dir, m.slot_first,
			 m.slot_first + m.nr_nodes - 1, nc->lr.nr_nodes);
		ret = -EINVAL;
		goto fail;
	}
	{
		struct bpf_map_info info = {};
		__u32 info_len = sizeof(info);

		if (bpf_obj_get_info_by_fd(nc->lr.progs_fd, &info, &info_len) ||
		    m.nr_fids > info.max_entries) {
			snprintf(err, len, "%s/meta: %u format ids, more than the prog array holds",
				 dir, m.nr_fids);
			ret = -EINVAL;
			goto fail;
		}
	}
	nc->node_size = m.node_size;
	nc->nr_slots = m.nr_fids;
	nc->nr_used = nc->lr.nr_nodes;
	nc->nr_run_slots = nc->lr.nr_slots < nc->srt.nr_slots ? nc->lr.nr_slots : nc->srt.nr_slots;
	ret = open_programs(p, dir, err, len);
	if (!ret)
		ret = read_nodes(p, &m, err, len);
	if (ret)
		goto fail;
	p->bt.o.node_size = m.node_size;
	p->bt.nr_nodes = p->bt.cap_nodes = m.nr_nodes;
	p->bt.nr_leaves = m.nr_leaves;
	p->bt.root = m.root;
	p->bt.depth = m.depth;
	p->bt.leaf_gaps = m.leaf_gaps;
	p->t.bt = &p->bt;
	p->t.nc = nc;
	p->t.base = m.slot_first;
	p->t.nr_loaded = m.nr_nodes;
	ret = claim_run_slot(p, dir, err, len);
	if (ret)
		goto fail;
	return 0;
fail:
	bk_pinned_close(p);
	return ret;
}

void bk_pinned_close(struct bk_pinned *p)
{
	struct bk_node_cache *nc = &p->nc;
	unsigned int me = getpid();
	uint32_t fid;

	if (p->owner)	/* the run slot goes back, if it is still ours */
		__atomic_compare_exchange_n(p->owner, &me, 0, false, __ATOMIC_ACQ_REL,
					    __ATOMIC_RELAXED);
	for (fid = 0; nc->cache.e && fid < nc->cache.nr; fid++) {
		if (nc->cache.e[fid].lookup.fd >= 0)
			close(nc->cache.e[fid].lookup.fd);
		if (nc->cache.e[fid].scan.fd >= 0)
			close(nc->cache.e[fid].scan.fd);
	}
	free(nc->cache.e);
	free(nc->prog_fd_by_fid);
	bk_lookup_rt_close(&nc->lr);
	bk_runtime_close(&nc->srt);
	free(p->bt.nodes);
	free(p->t.fid_of_node);
	memset(p, 0, sizeof(*p));
}
