// SPDX-License-Identifier: GPL-2.0
/*
 * The lookup runtime: the maps lookup programs share (search ctl, nodes,
 * prog array, queries, results) and the batch driver.  A batch runs the
 * root's program; each lookup descends by tail calls, answers, and starts
 * the next query.  The kernel allows 33 tail calls per run: when they run
 * out the program stops and the driver runs the program of the node
 * where it stopped.
 */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "gen.h"

static void *map_mmap(int fd, size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	return p == MAP_FAILED ? NULL : p;
}

static size_t page_round(size_t n)
{
	size_t page = sysconf(_SC_PAGESIZE);

	return (n + page - 1) / page * page;
}

/*
 * The nodes map is the node cache's buffers: write every page once here,
 * as a cache allocates its buffers once, so that loading a node into a
 * slot is a copy and not a first-touch fault per page (measured: ~150 us
 * for a 64 KiB slot's first write, ~1.5 us for the next).  The map is
 * zero-filled, so writing zero changes nothing.
 */
static void prefault(void *mem, size_t len)
{
	volatile uint8_t *p = mem;
	size_t off, page = sysconf(_SC_PAGESIZE);

	for (off = 0; off < len; off += page)
		p[off] = 0;
}

void bk_lookup_rt_slot(const struct bk_lookup_rt *lr, uint32_t slot, struct bk_lookup_rt *view)
{
	uint8_t *base = (uint8_t *)lr->slots + (size_t)slot * BK_LSLOT_SIZE;

	*view = *lr;
	view->view = true;
	view->slot = slot;
	view->ctl = (void *)base;
	view->queries = (void *)(base + BK_LSLOT_OFF_QUERIES);
	view->results = (void *)(base + BK_LSLOT_OFF_RESULTS);
}

/* Its maps made or adopted (@ret 0): slot 0's view; else closed, and @ret. */
static int lookup_rt_ready(struct bk_lookup_rt *lr, int ret)
{
	if (ret) {
		bk_lookup_rt_close(lr);
		return ret;
	}
	bk_lookup_rt_slot(lr, 0, lr);
	lr->view = false;
	return 0;
}

int bk_lookup_rt_open_slots(struct bk_lookup_rt *lr, unsigned node_size, uint32_t nr_nodes,
			    uint32_t max_formats, uint32_t nr_slots)
{
	LIBBPF_OPTS(bpf_map_create_opts, mm, .map_flags = BPF_F_MMAPABLE);
	int ret = -ENOMEM;

	memset(lr, 0, sizeof(*lr));
	lr->ctl_fd = lr->nodes_fd = lr->progs_fd = -1;
	if (!nr_slots)
		return -EINVAL;
	lr->node_size = node_size;
	lr->node_value_size = bk_node_value_size(node_size);
	lr->nr_nodes = nr_nodes;
	lr->nr_slots = nr_slots;
	lr->ctl_fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "bk_lslots", 4, BK_LSLOT_SIZE, nr_slots,
				    &mm);
	lr->nodes_fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "bk_nodes", 4, lr->node_value_size,
				      nr_nodes, &mm);
	lr->progs_fd = bpf_map_create(BPF_MAP_TYPE_PROG_ARRAY, "bk_progs", 4, 4, max_formats, NULL);
	if (lr->ctl_fd < 0 || lr->nodes_fd < 0 || lr->progs_fd < 0) {
		ret = -errno;
		goto fail;
	}
	lr->slots = map_mmap(lr->ctl_fd, page_round((size_t)BK_LSLOT_SIZE * nr_slots));
	lr->nodes = map_mmap(lr->nodes_fd, page_round((size_t)lr->node_value_size * nr_nodes));
	if (!lr->slots || !lr->nodes) {
		ret = -errno;
		goto fail;
	}
	prefault(lr->nodes, page_round((size_t)lr->node_value_size * nr_nodes));
	ret = 0;
fail:
	return lookup_rt_ready(lr, ret);
}

/* Whether map @fd is of @type, holds @value_size-byte values, and is mmap'able if @mmap. */
static int map_is(int fd, enum bpf_map_type type, __u32 value_size, bool mmapable,
		  __u32 *max_entries)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);

	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return -errno;
	if (info.type != type || info.value_size != value_size || !info.max_entries ||
	    (mmapable && !(info.map_flags & BPF_F_MMAPABLE)))
		return -EINVAL;
	*max_entries = info.max_entries;
	return 0;
}

int bk_lookup_rt_adopt(struct bk_lookup_rt *lr, int ctl_fd, int nodes_fd, int progs_fd,
		       unsigned node_size)
{
	__u32 nr_progs;
	int ret;

	memset(lr, 0, sizeof(*lr));
	lr->ctl_fd = ctl_fd;
	lr->nodes_fd = nodes_fd;
	lr->progs_fd = progs_fd;
	lr->node_size = node_size;
	lr->node_value_size = bk_node_value_size(node_size);
	ret = map_is(ctl_fd, BPF_MAP_TYPE_ARRAY, BK_LSLOT_SIZE, true, &lr->nr_slots);
	if (!ret)
		ret = map_is(nodes_fd, BPF_MAP_TYPE_ARRAY, lr->node_value_size, true, &lr->nr_nodes);
	if (!ret)
		ret = map_is(progs_fd, BPF_MAP_TYPE_PROG_ARRAY, 4, false, &nr_progs);
	if (ret)
		goto fail;
	lr->slots = map_mmap(ctl_fd, page_round((size_t)BK_LSLOT_SIZE * lr->nr_slots));
	lr->nodes = map_mmap(nodes_fd, page_round((size_t)lr->node_value_size * lr->nr_nodes));
	if (!lr->slots || !lr->nodes)
		ret = -errno;
fail:
	return lookup_rt_ready(lr, ret);
}

int bk_lookup_rt_open(struct bk_lookup_rt *lr, unsigned node_size, uint32_t nr_nodes,
		      uint32_t max_formats)
{
	return bk_lookup_rt_open_slots(lr, node_size, nr_nodes, max_formats, 1);
}

void bk_lookup_rt_close(struct bk_lookup_rt *lr)
{
	if (lr->view)
		return;
	if (lr->slots)
		munmap(lr->slots, page_round((size_t)BK_LSLOT_SIZE * lr->nr_slots));
	if (lr->nodes)
		munmap(lr->nodes, page_round((size_t)lr->node_value_size * lr->nr_nodes));
	if (lr->ctl_fd >= 0)
		close(lr->ctl_fd);
	if (lr->nodes_fd >= 0)
		close(lr->nodes_fd);
	if (lr->progs_fd >= 0)
		close(lr->progs_fd);
	memset(lr, 0, sizeof(*lr));
	lr->ctl_fd = lr->nodes_fd = lr->progs_fd = -1;
}

const struct bk_node_hdr *bk_lookup_node(const struct bk_lookup_rt *lr, uint32_t node)
{
	return (const void *)((const uint8_t *)lr->nodes + (size_t)node * lr->node_value_size);
}

int bk_lookup_set_prog(struct bk_lookup_rt *lr, uint32_t fid, int prog_fd)
{
	return bpf_map_update_elem(lr->progs_fd, &fid, &prog_fd, 0) ? -errno : 0;
}

/*
 * A run starts at (or a tail call went to) @node: one of the tree's, with
 * a program for its format id.  The map is anyone's to write.
 */
static int check_run_node(const struct bk_lookup_rt *lr, const struct bk_lookup_tree *tree,
			  uint32_t node, int *prog_fd)
{
	uint32_t fid;

	if (node < tree->slot_first || node >= tree->slot_end)
		return BK_ERR_NODE_PTR;
	/* read once: a writer of the map may change it under us */
	fid = __atomic_load_n(&bk_lookup_node(lr, node)->format_id, __ATOMIC_RELAXED);
	if (fid >= tree->nr_fids || tree->prog_fd_by_fid[fid] < 0)
		return BK_ERR_NODE_FID;
	*prog_fd = tree->prog_fd_by_fid[fid];
	return 0;
}

int bk_lookup_batch(struct bk_lookup_rt *lr, const struct bk_lookup_tree *tree, uint32_t nq,
		    uint32_t *status, struct bk_lookup_stats *st)
{
	/* a lookup takes depth tail calls (depth - 1 for a run's first):
	 * that many whole lookups fit the kernel's 33 per run */
	unsigned per_run = tree->per_run ? tree->per_run : bk_lookups_per_run(tree->depth);
	unsigned char pkt[64] = {};
	struct __sk_buff ctx = { .cb[0] = lr->slot };
	struct bk_search_ctl *c = lr->ctl;
	const struct bk_query *q0 = &lr->queries[0];
	uint32_t runs;

	if (!nq || nq > BK_BATCH || lr->slot >= lr->nr_slots ||
	    tree->slot_first >= tree->slot_end || tree->slot_end > lr->nr_nodes ||
	    tree->root < tree->slot_first || tree->root >= tree->slot_end)
		return -EINVAL;
	bk_lookup_start(c, q0, nq, tree->root, tree->root_level,
			bk_lookup_node(lr, tree->root)->format_id, tree->slot_first,
			tree->slot_end, per_run);
	/*
	 * Every test run but the last finishes a lookup, or the walk loops.
	 * From the root, one test run repeats the root's program as many
	 * times as the batch's lookups need runs (each repeat a run with its
	 * own 33 tail calls; the programs end a run between lookups and go
	 * on in the next repeat): one syscall a batch, not one a run.  A
	 * walk stopped below the root (its tail calls spent) is resumed by
	 * one run of that node's program.
	 */
	for (runs = 0; runs <= nq; runs++) {
		uint32_t q = c->q, node = __atomic_load_n(&c->node, __ATOMIC_RELAXED);
		uint32_t repeat = node == tree->root ? (nq - q + per_run - 1) / per_run : 1;
		LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = pkt, .data_size_in = sizeof(pkt),
			    .ctx_in = &ctx, .ctx_size_in = sizeof(ctx), .repeat = repeat ?: 1);
		int prog_fd, bad = check_run_node(lr, tree, node, &prog_fd);

		if (bad) {
			c->node = node;		/* names it */
			*status = bad;
			return 0;
		}
		c->status = ~0u;
		c->budget = per_run;
		if (bpf_prog_test_run_opts(prog_fd, &opts)) {
			if (errno != EINTR)
				return -errno;
			/* a signal stopped the repeats between two runs: the
			 * runs made stand, and the status says how far they got
			 * (their time is not reported) */
			if (c->status == ~0u)
				continue;
		} else if (st) {
			st->runs += opts.repeat;
			st->run_ns += (unsigned long long)opts.duration * opts.repeat;
		}
		/* read once: the map is anyone's to write */
		*status = __atomic_load_n(&c->status, __ATOMIC_RELAXED);
		if (*status == ~0u)		/* no slot of its run's: its return */
			*status = opts.retval ? opts.retval : BK_ERR_ARGS;
		if (*status != BK_ERR_TAIL)	/* answered, or a bad node named by c->node */
			return 0;
		/* a run ends between lookups, and one lookup fits a run: a run
		 * that finished none went round a loop of pointers */
		if (c->q == q || c->q > nq) {	/* (or a tail call to no program) */
			int prog_fd;

			node = __atomic_load_n(&c->node, __ATOMIC_RELAXED);
			c->node = node;
			*status = check_run_node(lr, tree, node, &prog_fd);
			return *status ? 0 : -ELOOP;
		}
		if (st && c->node != tree->root)
			st->split++;		/* stopped inside a walk */
	}
	return -ELOOP;
}
