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
	return (n + 4095) & ~4095UL;
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
	size_t off;

	for (off = 0; off < len; off += 4096)
		p[off] = 0;
}

int bk_lookup_rt_open(struct bk_lookup_rt *lr, unsigned node_size, uint32_t nr_nodes,
		      uint32_t max_formats)
{
	LIBBPF_OPTS(bpf_map_create_opts, mm, .map_flags = BPF_F_MMAPABLE);
	int ret = -ENOMEM;

	memset(lr, 0, sizeof(*lr));
	lr->ctl_fd = lr->nodes_fd = lr->progs_fd = lr->queries_fd = lr->results_fd = -1;
	lr->node_size = node_size;
	lr->node_value_size = bk_node_value_size(node_size);
	lr->nr_nodes = nr_nodes;
	lr->ctl_fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "bk_lctl", 4, sizeof(struct bk_search_ctl),
				    1, &mm);
	lr->nodes_fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "bk_nodes", 4, lr->node_value_size,
				      nr_nodes, &mm);
	lr->progs_fd = bpf_map_create(BPF_MAP_TYPE_PROG_ARRAY, "bk_progs", 4, 4, max_formats, NULL);
	lr->queries_fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "bk_queries", 4,
					BK_BATCH * sizeof(struct bk_query), 1, &mm);
	lr->results_fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "bk_results", 4,
					BK_BATCH * sizeof(struct bk_result), 1, &mm);
	if (lr->ctl_fd < 0 || lr->nodes_fd < 0 || lr->progs_fd < 0 || lr->queries_fd < 0 ||
	    lr->results_fd < 0) {
		ret = -errno;
		goto fail;
	}
	lr->ctl = map_mmap(lr->ctl_fd, page_round(sizeof(*lr->ctl)));
	lr->nodes = map_mmap(lr->nodes_fd, page_round((size_t)lr->node_value_size * nr_nodes));
	lr->queries = map_mmap(lr->queries_fd, page_round(BK_BATCH * sizeof(struct bk_query)));
	lr->results = map_mmap(lr->results_fd, page_round(BK_BATCH * sizeof(struct bk_result)));
	if (!lr->ctl || !lr->nodes || !lr->queries || !lr->results) {
		ret = -errno;
		goto fail;
	}
	prefault(lr->nodes, page_round((size_t)lr->node_value_size * nr_nodes));
	return 0;
fail:
	bk_lookup_rt_close(lr);
	return ret;
}

void bk_lookup_rt_close(struct bk_lookup_rt *lr)
{
	if (lr->ctl)
		munmap(lr->ctl, page_round(sizeof(*lr->ctl)));
	if (lr->nodes)
		munmap(lr->nodes, page_round((size_t)lr->node_value_size * lr->nr_nodes));
	if (lr->queries)
		munmap(lr->queries, page_round(BK_BATCH * sizeof(struct bk_query)));
	if (lr->results)
		munmap(lr->results, page_round(BK_BATCH * sizeof(struct bk_result)));
	if (lr->ctl_fd >= 0)
		close(lr->ctl_fd);
	if (lr->nodes_fd >= 0)
		close(lr->nodes_fd);
	if (lr->progs_fd >= 0)
		close(lr->progs_fd);
	if (lr->queries_fd >= 0)
		close(lr->queries_fd);
	if (lr->results_fd >= 0)
		close(lr->results_fd);
	memset(lr, 0, sizeof(*lr));
	lr->ctl_fd = lr->nodes_fd = lr->progs_fd = lr->queries_fd = lr->results_fd = -1;
}

const struct bk_node_hdr *bk_lookup_node(const struct bk_lookup_rt *lr, uint32_t node)
{
	return (const void *)((const uint8_t *)lr->nodes + (size_t)node * lr->node_value_size);
}

int bk_lookup_set_prog(struct bk_lookup_rt *lr, uint32_t fid, int prog_fd)
{
	return bpf_map_update_elem(lr->progs_fd, &fid, &prog_fd, 0) ? -errno : 0;
}

int bk_lookup_batch(struct bk_lookup_rt *lr, const int *prog_fd_by_fid, uint32_t root,
		    uint32_t nq, unsigned depth, struct bk_lookup_stats *st)
{
	/* a lookup takes depth tail calls (depth - 1 for a run's first):
	 * that many whole lookups fit the kernel's 33 per run */
	unsigned per_run = depth ? 33 / depth : 1;
	unsigned char pkt[64] = {};
	struct bk_search_ctl *c = lr->ctl;
	const struct bk_query *q0 = &lr->queries[0];

	if (!nq || nq > BK_BATCH || root >= lr->nr_nodes)
		return -EINVAL;
	c->q = 0;
	c->nq = nq;
	c->root = root;
	c->root_fid = bk_lookup_node(lr, root)->format_id;
	c->node = root;
	c->inode = q0->inode;
	c->offset = q0->offset;
	c->snapshot = q0->snapshot;
	for (;;) {
		LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = pkt, .data_size_in = sizeof(pkt),
			    .repeat = 1);
		uint32_t fid, q = c->q;

		if (c->node >= lr->nr_nodes)
			return -EINVAL;
		fid = bk_lookup_node(lr, c->node)->format_id;
		c->status = ~0u;
		c->budget = per_run ? per_run : 1;
		if (bpf_prog_test_run_opts(prog_fd_by_fid[fid], &opts))
			return -errno;
		if (st) {
			st->runs++;
			st->run_ns += opts.duration;
		}
		if (c->status == BK_OK)
			return 0;
		if (c->status != BK_ERR_TAIL)
			return c->status;	/* a bad node: BK_ERR_* with c->node */
		/* a run ends between lookups, and one lookup fits a run: a run
		 * that finished none went round a loop of pointers */
		if (c->q == q)
			return -ELOOP;
		if (st && c->node != root)
			st->split++;		/* stopped inside a walk */
	}
}
