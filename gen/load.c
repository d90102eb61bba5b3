// SPDX-License-Identifier: GPL-2.0
/*
 * Loading and running generated programs: BTF func_info/line_info, the
 * shared maps, BPF_PROG_TEST_RUN, and the kernel feature probe.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "gen.h"

/* The offsets generated code uses must be the structs' own. */
#define ABI_OFF(type, field, off) \
	_Static_assert(offsetof(struct type, field) == (off), #type "." #field)
ABI_OFF(bk_node_hdr, format, BK_NODE_OFF_FORMAT);
ABI_OFF(bk_node_hdr, tmpl, BK_NODE_OFF_TMPL);
_Static_assert(sizeof(struct bk_node_hdr) == BK_NODE_WORDS_OFF, "node header");
ABI_OFF(bk_ctl, status, BK_CTL_OFF_STATUS);
ABI_OFF(bk_ctl, arg_in, BK_CTL_OFF_ARG_IN);
ABI_OFF(bk_ctl, arg_end, BK_CTL_OFF_ARG_END);
ABI_OFF(bk_ctl, arg_out, BK_CTL_OFF_ARG_OUT);
ABI_OFF(bk_ctl, cur_in, BK_CTL_OFF_CUR_IN);
ABI_OFF(bk_ctl, cur_out, BK_CTL_OFF_CUR_OUT);
ABI_OFF(bk_ctl, node, BK_CTL_OFF_NODE);
ABI_OFF(bk_search_ctl, offset, BK_SCTL_OFF_OFFSET);
ABI_OFF(bk_search_ctl, snapshot, BK_SCTL_OFF_SNAPSHOT);
ABI_OFF(bk_search_ctl, node, BK_SCTL_OFF_NODE);
ABI_OFF(bk_search_ctl, status, BK_SCTL_OFF_STATUS);
ABI_OFF(bk_search_ctl, idx, BK_SCTL_OFF_IDX);
ABI_OFF(bk_search_ctl, lossy, BK_SCTL_OFF_LOSSY);
ABI_OFF(bk_search_ctl, packed, BK_SCTL_OFF_PACKED);
ABI_OFF(bk_search_ctl, pshift, BK_SCTL_OFF_PSHIFT);
ABI_OFF(bk_search_ctl, lo, BK_SCTL_OFF_LO);
ABI_OFF(bk_search_ctl, hi, BK_SCTL_OFF_HI);
ABI_OFF(bk_search_ctl, q, BK_SCTL_OFF_Q);
ABI_OFF(bk_search_ctl, nq, BK_SCTL_OFF_NQ);
ABI_OFF(bk_search_ctl, root, BK_SCTL_OFF_ROOT);
ABI_OFF(bk_search_ctl, root_fid, BK_SCTL_OFF_ROOT_FID);
ABI_OFF(bk_search_ctl, budget, BK_SCTL_OFF_BUDGET);
ABI_OFF(bk_search_ctl, hops, BK_SCTL_OFF_HOPS);
ABI_OFF(bk_search_ctl, root_level, BK_SCTL_OFF_ROOT_LEVEL);
ABI_OFF(bk_search_ctl, slot_first, BK_SCTL_OFF_SLOT_FIRST);
ABI_OFF(bk_search_ctl, slot_end, BK_SCTL_OFF_SLOT_END);
ABI_OFF(bk_search_ctl, per_run, BK_SCTL_OFF_PER_RUN);
_Static_assert(sizeof(struct bk_search_ctl) <= BK_LSLOT_OFF_QUERIES, "search ctl fits");
ABI_OFF(bk_result, node, 40);
ABI_OFF(bk_result, found, 48);
_Static_assert(sizeof(struct bk_result) == 56, "bk_result");
_Static_assert(sizeof(struct bk_query) == 24, "bk_query");
_Static_assert(sizeof(struct bk_node_hdr) <= BK_NODE_WORDS_OFF, "node header fits");
ABI_OFF(bk_node_hdr, tmpl, BK_NODE_OFF_TMPL);
ABI_OFF(bk_node_hdr, format, BK_NODE_OFF_FORMAT);
_Static_assert(sizeof(struct bk_ctl) <= BK_CTL_OFF_TMPL &&
	       BK_CTL_OFF_TMPL + BK_TMPL_SIZE <= BK_TAB_OFF, "ctl: arguments, template, table");
_Static_assert(BK_NODE_OFF_TMPL % 8 == 0 && BK_CTL_OFF_TMPL % 8 == 0, "templates word-aligned");
ABI_OFF(__sk_buff, cb[0], BK_CTX_OFF_SLOT);
_Static_assert(sizeof(struct bk_search_ctl) <= BK_LSLOT_OFF_QUERIES &&
	       BK_LSLOT_OFF_RESULTS + 56 <= 32767, "search slot: ctl, queries, results in reach");

/*
 * One BTF object per program: the function names and the line strings
 * are per format.  The program holds its own reference once loaded.
 */
/* A libbpf BTF builder's result: an id or offset, or (<0) the first error kept in *err. */
int bk_btf_ok(int v, int *err)
{
	if (v < 0 && !*err)
		*err = v;
	return v;
}

struct btf *bk_prog_btf(const struct bk_prog *p, struct bpf_func_info *fi,
			struct bpf_line_info *li, int *err)
{
	const struct bk_emit *e = &p->e;
	struct btf *btf;
	int int_id, u64_id, ptr_id, proto_main, proto_cb, file_off, i, ret = 0;

	btf = btf__new_empty();
	if (!btf) {
		*err = -errno;
		return NULL;
	}
	int_id = bk_btf_ok(btf__add_int(btf, "int", 4, BTF_INT_SIGNED), &ret);
	u64_id = bk_btf_ok(btf__add_int(btf, "unsigned long long", 8, 0), &ret);
	ptr_id = bk_btf_ok(btf__add_ptr(btf, 0), &ret);
	proto_main = bk_btf_ok(btf__add_func_proto(btf, int_id), &ret);
	proto_cb = bk_btf_ok(btf__add_func_proto(btf, u64_id), &ret);
	bk_btf_ok(btf__add_func_param(btf, "index", u64_id), &ret);
	bk_btf_ok(btf__add_func_param(btf, "ctx", ptr_id), &ret);
	fi[0].insn_off = 0;
	fi[0].type_id = bk_btf_ok(btf__add_func(btf, p->func_name, BTF_FUNC_GLOBAL, proto_main), &ret);
	for (i = 1; i < e->nr_subprogs; i++) {
		char name[80];

		bk_subprog_name(p, i, name, sizeof(name));
		fi[i].insn_off = e->subprog_start[i];
		fi[i].type_id = bk_btf_ok(btf__add_func(btf, name, BTF_FUNC_STATIC, proto_cb), &ret);
	}
	file_off = bk_btf_ok(btf__add_str(btf, p->file_name), &ret);
	for (i = 0; i < e->nr_lines; i++) {
		li[i].insn_off = e->line[i].insn;
		li[i].file_name_off = file_off;
		li[i].line_off = bk_btf_ok(btf__add_str(btf, bk_text(e, e->line[i].text)), &ret);
		li[i].line_col = (i + 1) << 10;		/* line i+1, column 0 */
	}
	if (ret) {
		btf__free(btf);
		*err = ret;
		return NULL;
	}
	return btf;
}

void bk_subprog_name(const struct bk_prog *p, int i, char *buf, size_t len)
{
	if (i > 1)
		snprintf(buf, len, "%s_cb%d", p->func_name, i);
	else if (i)
		snprintf(buf, len, "%s_cb", p->func_name);
	else
		snprintf(buf, len, "%s", p->func_name);
}

static int build_btf(const struct bk_prog *p, struct bpf_func_info *fi,
		     struct bpf_line_info *li, int *btf_fd)
{
	struct btf *btf;
	const void *raw;
	__u32 raw_size;
	int ret = 0;

	btf = bk_prog_btf(p, fi, li, &ret);
	if (!btf)
		return ret;
	raw = btf__raw_data(btf, &raw_size);
	if (!raw) {
		ret = -ENOMEM;
		goto out;
	}
	ret = bpf_btf_load(raw, raw_size, NULL);
	if (ret < 0) {
		ret = -errno;
		goto out;
	}
	*btf_fd = ret;
	ret = 0;
out:
	btf__free(btf);
	return ret;
}

bool bk_report_reject(FILE *out, const char *who, const struct bk_prog *p, int ret,
		      const char *log, const struct bk_map_name *names, int nr_names)
{
	if (!out || !bk_is_verdict(ret))
		return false;
	fprintf(out, "%s: the verifier rejected %s (%s):\n%s\n--- generated program ---\n",
		who, p->name, strerror(-ret), log ? log : "");
	bk_listing(&p->e, out, names, nr_names);
	return true;
}

/* As much of the verifier's log as a rejection report shows. */
#define BK_LOG_SIZE	(1 << 20)

int bk_prog_load_report(const struct bk_prog *p, struct bk_loaded *out, FILE *report,
			const char *who, const struct bk_map_name *names, int nr_names)
{
	/* pages are only touched if the verifier writes them */
	char *log = report ? malloc(BK_LOG_SIZE) : NULL;
	int ret;

	if (report && !log) {
		out->fd = -1;
		return -ENOMEM;
	}
	ret = bk_prog_load(p, out, log, log ? BK_LOG_SIZE : 0);
	if (ret)
		bk_report_reject(report, who, p, ret, log, names, nr_names);
	free(log);
	return ret;
}

int bk_prog_load(const struct bk_prog *p, struct bk_loaded *out, char *log, size_t log_len)
{
	struct bpf_func_info fi[BK_MAX_SUBPROGS];
	struct bpf_line_info *li = calloc(p->e.nr_lines + 1, sizeof(*li));
	struct bpf_prog_info info = {};
	__u32 info_len = sizeof(info);
	int btf_fd = -1, fd, ret;
	LIBBPF_OPTS(bpf_prog_load_opts, opts);

	memset(out, 0, sizeof(*out));
	out->fd = -1;
	ret = li ? build_btf(p, fi, li, &btf_fd) : -ENOMEM;
	if (ret) {
		free(li);
		if (log && log_len)
			snprintf(log, log_len, "BTF load failed: %s\n", strerror(-ret));
		return ret;
	}
	opts.prog_btf_fd = btf_fd;
	opts.func_info = fi;
	opts.func_info_cnt = p->e.nr_subprogs;
	opts.func_info_rec_size = sizeof(fi[0]);
	opts.line_info = li;
	opts.line_info_cnt = p->e.nr_lines;
	opts.line_info_rec_size = sizeof(li[0]);

	fd = bpf_prog_load(BK_PROG_TYPE, p->name, "GPL", p->e.insn, p->e.cnt, &opts);
	if (fd < 0 && log && log_len && bk_is_verdict(-errno)) {
		/* the verifier refused it: load again, this time with its log
		 * (other errors, such as ENOMEM, are no verdict to explain) */
		log[0] = 0;
		opts.log_buf = log;
		opts.log_size = log_len;
		opts.log_level = 1;
		fd = bpf_prog_load(BK_PROG_TYPE, p->name, "GPL", p->e.insn, p->e.cnt, &opts);
	}
	ret = fd < 0 ? -errno : 0;
	close(btf_fd);
	free(li);
	if (ret)
		return ret;

	out->fd = fd;
	out->f = p->plan.f;
	out->walk = p->walk;
	out->by_shape = p->by_shape;
	if (bpf_obj_get_info_by_fd(fd, &info, &info_len)) {
		ret = -errno;
		close(fd);
		out->fd = -1;
		return ret;
	}
	out->xlated_insns = info.xlated_prog_len / sizeof(struct bpf_insn);
	out->jited_bytes = info.jited_prog_len;
	out->verified_insns = info.verified_insns;
	out->id = info.id;
	return 0;
}

void bk_prog_unload(struct bk_loaded *l)
{
	if (l->fd >= 0)
		close(l->fd);
	l->fd = -1;
}

/* An array's elements are 8-byte aligned in its mmap'd memory. */
static size_t elem_stride(size_t value_size)
{
	return (value_size + 7) & ~7UL;
}

static size_t array_len(size_t value_size, uint32_t nr)
{
	size_t page = sysconf(_SC_PAGESIZE);

	return (elem_stride(value_size) * nr + page - 1) / page * page;
}

static int mmap_array(const char *name, size_t value_size, uint32_t nr, int *fd, void **mem)
{
	LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = BPF_F_MMAPABLE);
	size_t len = array_len(value_size, nr);

	*fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, name, 4, value_size, nr, &opts);
	if (*fd < 0)
		return -errno;
	*mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, *fd, 0);
	if (*mem == MAP_FAILED) {
		int ret = -errno;

		close(*fd);
		*fd = -1;
		*mem = NULL;
		return ret;
	}
	return 0;
}

static void munmap_array(size_t value_size, uint32_t nr, int *fd, void **mem)
{
	if (*mem)
		munmap(*mem, array_len(value_size, nr));
	if (*fd >= 0)
		close(*fd);
	*mem = NULL;
	*fd = -1;
}

void bk_runtime_slot(const struct bk_runtime *rt, uint32_t slot, struct bk_runtime *view)
{
	*view = *rt;
	view->view = true;
	view->slot = slot;
	view->ctl = (void *)((char *)rt->ctl_mem + slot * elem_stride(BK_CTL_VALUE_SIZE));
	view->tab = (uint16_t *)((char *)view->ctl + BK_TAB_OFF);
	view->in = (void *)((char *)rt->in_mem + slot * elem_stride(BK_IN_VALUE_SIZE));
	view->out = (void *)((char *)rt->out_mem + slot * elem_stride(BK_OUT_VALUE_SIZE));
}

/* Its maps made or adopted (@ret 0): slot 0's view; else closed, and @ret. */
static int runtime_ready(struct bk_runtime *rt, int ret)
{
	if (ret) {
		bk_runtime_close(rt);
		return ret;
	}
	bk_runtime_slot(rt, 0, rt);
	rt->view = false;
	return 0;
}

/* The runtime's maps, ctl, in and out: the one list of their names and sizes. */
#define NR_RUNTIME_MAPS	3
static const struct {
	const char	*name;
	uint32_t	value_size;
} runtime_maps[NR_RUNTIME_MAPS] = {
	{ "bk_ctl", BK_CTL_VALUE_SIZE },
	{ "bk_in", BK_IN_VALUE_SIZE },
	{ "bk_out", BK_OUT_VALUE_SIZE },
};

/* @rt's fd and memory of each of runtime_maps[]. */
static void runtime_map_fields(struct bk_runtime *rt, int *fds[NR_RUNTIME_MAPS],
			       void **mems[NR_RUNTIME_MAPS])
{
	fds[0] = &rt->ctl_fd;
	fds[1] = &rt->in_fd;
	fds[2] = &rt->out_fd;
	mems[0] = &rt->ctl_mem;
	mems[1] = &rt->in_mem;
	mems[2] = &rt->out_mem;
}

int bk_runtime_open_slots(struct bk_runtime *rt, uint32_t nr_slots)
{
	int *fds[NR_RUNTIME_MAPS], ret = 0, i;
	void **mems[NR_RUNTIME_MAPS];

	memset(rt, 0, sizeof(*rt));
	rt->ctl_fd = rt->in_fd = rt->out_fd = -1;
	if (!nr_slots)
		return -EINVAL;
	rt->nr_slots = nr_slots;
	runtime_map_fields(rt, fds, mems);
	for (i = 0; i < NR_RUNTIME_MAPS && !ret; i++)
		ret = mmap_array(runtime_maps[i].name, runtime_maps[i].value_size, nr_slots,
				 fds[i], mems[i]);
	return runtime_ready(rt, ret);
}

/* An mmap'able array of @value_size-byte values, @nr of them: mapped into *mem. */
static int adopt_array(int fd, size_t value_size, uint32_t nr, void **mem)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);

	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return -errno;
	if (info.type != BPF_MAP_TYPE_ARRAY || info.value_size != value_size ||
	    info.max_entries != nr || !(info.map_flags & BPF_F_MMAPABLE))
		return -EINVAL;
	*mem = mmap(NULL, array_len(value_size, nr), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (*mem == MAP_FAILED) {
		*mem = NULL;
		return -errno;
	}
	return 0;
}

int bk_runtime_adopt(struct bk_runtime *rt, int ctl_fd, int in_fd, int out_fd)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);
	int *fds[NR_RUNTIME_MAPS], ret, i;
	void **mems[NR_RUNTIME_MAPS];

	memset(rt, 0, sizeof(*rt));
	rt->ctl_fd = ctl_fd;
	rt->in_fd = in_fd;
	rt->out_fd = out_fd;
	ret = bpf_obj_get_info_by_fd(ctl_fd, &info, &len) ? -errno : 0;
	rt->nr_slots = info.max_entries;
	if (!ret && !rt->nr_slots)
		ret = -EINVAL;
	runtime_map_fields(rt, fds, mems);
	for (i = 0; i < NR_RUNTIME_MAPS && !ret; i++)
		ret = adopt_array(*fds[i], runtime_maps[i].value_size, rt->nr_slots, mems[i]);
	return runtime_ready(rt, ret);
}

void bk_runtime_obj_maps(struct bk_obj_map maps[3], int ctl_fd, int in_fd, int out_fd)
{
	const int fds[NR_RUNTIME_MAPS] = { ctl_fd, in_fd, out_fd };
	int i;

	for (i = 0; i < NR_RUNTIME_MAPS; i++)
		maps[i] = (struct bk_obj_map){
			.fd = fds[i], .name = runtime_maps[i].name, .type = BPF_MAP_TYPE_ARRAY,
			.key_size = 4, .value_size = runtime_maps[i].value_size, .max_entries = 1,
			.flags = BPF_F_MMAPABLE,
		};
}

int bk_runtime_open(struct bk_runtime *rt)
{
	return bk_runtime_open_slots(rt, 1);
}

void bk_runtime_set_format(struct bk_runtime *rt, const struct bkey_format *f)
{
	bk_unpack_template(f, (uint8_t *)rt->ctl + BK_CTL_OFF_TMPL);
}

void bk_runtime_close(struct bk_runtime *rt)
{
	int *fds[NR_RUNTIME_MAPS], i;
	void **mems[NR_RUNTIME_MAPS];

	if (rt->view)
		return;
	runtime_map_fields(rt, fds, mems);
	for (i = 0; i < NR_RUNTIME_MAPS; i++)
		munmap_array(runtime_maps[i].value_size, rt->nr_slots, fds[i], mems[i]);
	rt->ctl = NULL;
	rt->tab = NULL;
	rt->in = NULL;
	rt->out = NULL;
}

/*
 * One run over in[@start, @end) in the walk's own unit (words by u64s,
 * key table entries by table) into out[@out_start...]: the arguments in
 * bytes, as programs read them; the results back as indices.
 */
static int run_walk(const struct bk_loaded *l, struct bk_runtime *rt, uint32_t start,
		    uint32_t end, uint32_t out_start, uint32_t repeat, uint32_t *duration_ns)
{
	/* skb test runs want at least an Ethernet header of data; the
	 * context names the run's slot */
	unsigned char pkt[64] = {};
	struct __sk_buff ctx = { .cb[0] = rt->slot };
	LIBBPF_OPTS(bpf_test_run_opts, opts,
		.data_in = pkt,
		.data_size_in = sizeof(pkt),
		.ctx_in = &ctx,
		.ctx_size_in = sizeof(ctx),
		.repeat = repeat,
	);
	bool table = l->walk == BK_WALK_TABLE;
	unsigned scale = table ? 2 : 8;		/* bytes per unit */

	/* programs only mask these (16-bit indices): refuse what they would wrap */
	if (start > end || end > BK_IN_CAP_WORDS || out_start > BK_OUT_CAP_KEYS ||
	    rt->slot >= rt->nr_slots)
		return -EINVAL;
	rt->ctl->status = ~0u;
	rt->ctl->arg_in = scale * start;
	rt->ctl->arg_end = scale * end;
	rt->ctl->arg_out = 40 * out_start;
	rt->ctl->cur_in = rt->ctl->arg_in;
	rt->ctl->cur_out = rt->ctl->arg_out;
	if (bpf_prog_test_run_opts(l->fd, &opts))
		return -errno;
	if (duration_ns)
		*duration_ns = opts.duration;
	/* a program that found no slot of its run's wrote nothing: its return */
	if (rt->ctl->status == ~0u) {
		rt->ctl->status = opts.retval;
		return 0;
	}
	/* byte offsets from the program; division has no place in it */
	rt->ctl->in_pos = table ? rt->tab[(rt->ctl->cur_in / 2) & BK_IDX_MASK] :
				  rt->ctl->cur_in / 8;
	rt->ctl->out_pos = table ? rt->ctl->cur_in / 2 : rt->ctl->cur_out / 40;
	if (rt->ctl->status == BK_ERR_BAD_KEY) {
		uint32_t end_word = table ? rt->tab[end] : end;
		unsigned kw;
		enum bkey_stream_err why = bkey_stream_check(&l->f, rt->in, end_word,
							     rt->ctl->in_pos, &kw);

		/* the program and the reference check the same things; a key
		 * that passes here disagreed with the table */
		rt->ctl->status = why ? (unsigned)why : BK_ERR_BAD_KEY;
	}
	return 0;
}

int bk_run_words(const struct bk_loaded *l, struct bk_runtime *rt, uint32_t word_start,
		 uint32_t word_end, uint32_t out_start, uint32_t repeat, uint32_t *duration_ns)
{
	if (l->walk != BK_WALK_U64S)
		return -EINVAL;
	return run_walk(l, rt, word_start, word_end, out_start, repeat, duration_ns);
}

int bk_run_keys(const struct bk_loaded *l, struct bk_runtime *rt, uint32_t key_first,
		uint32_t key_end, uint32_t repeat, uint32_t *duration_ns)
{
	if (l->walk != BK_WALK_TABLE)
		return -EINVAL;
	/* the table walk writes key i to out[i] */
	return run_walk(l, rt, key_first, key_end, key_first, repeat, duration_ns);
}

int bk_run_node(const struct bk_loaded *l, struct bk_runtime *rt, uint32_t node,
		uint32_t first, uint32_t end, uint32_t *status, uint32_t *nr_out,
		uint32_t repeat, uint32_t *duration_ns)
{
	unsigned char pkt[64] = {};
	struct __sk_buff ctx = { .cb[0] = rt->slot };
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = pkt, .data_size_in = sizeof(pkt),
		    .ctx_in = &ctx, .ctx_size_in = sizeof(ctx), .repeat = repeat);

	if (first > end || end > BK_IDX_MASK || rt->slot >= rt->nr_slots)
		return -EINVAL;
	rt->ctl->node = node;
	rt->ctl->arg_in = rt->ctl->cur_in = 2 * first;
	rt->ctl->arg_end = 2 * end;
	rt->ctl->status = ~0u;
	if (bpf_prog_test_run_opts(l->fd, &opts))
		return -errno;
	if (duration_ns)
		*duration_ns = opts.duration;
	if (rt->ctl->status == ~0u) {		/* no slot of its run's: its return */
		*status = opts.retval ? opts.retval : BK_ERR_ARGS;
		return 0;
	}
	/* key i went to out[i] */
	if (nr_out)
		*nr_out = rt->ctl->cur_in / 2 - first;
	*status = rt->ctl->status;
	return 0;
}

uint32_t bk_build_table(const struct bkey_format *f, const uint64_t *words, uint32_t nr_words,
			uint16_t *tab, uint32_t *bad_word)
{
	uint32_t pos = 0, n = 0;
	unsigned kw;

	while (pos < nr_words && !bkey_stream_check(f, words, nr_words, pos, &kw)) {
		tab[n++] = pos;
		pos += ((const uint8_t *)&words[pos])[0];
	}
	tab[n] = pos;
	if (bad_word)
		*bad_word = pos;
	return n;
}

int bk_unpack_words(const struct bk_loaded *l, struct bk_runtime *rt, const uint64_t *words,
		    uint32_t nr_words, uint32_t *status, uint32_t *nr_keys, uint32_t *stop_word)
{
	uint32_t n = nr_words, bad = nr_words;
	int ret;

	if (nr_words > BK_IN_CAP_WORDS)
		return -E2BIG;
	memcpy(rt->in, words, 8 * (size_t)nr_words);
	/* the table covers the keys up to the first bad one, which the
	 * reference then names as the walk would */
	if (l->walk == BK_WALK_TABLE)
		n = bk_build_table(&l->f, rt->in, nr_words, rt->tab, &bad);
	ret = l->walk == BK_WALK_TABLE ? bk_run_keys(l, rt, 0, n, 1, NULL) :
					 bk_run_words(l, rt, 0, n, 0, 1, NULL);
	if (ret)
		return ret;
	if (l->walk == BK_WALK_TABLE && rt->ctl->status == BK_OK && bad < nr_words) {
		unsigned kw;

		rt->ctl->status = bkey_stream_check(&l->f, rt->in, nr_words, bad, &kw);
		rt->ctl->in_pos = bad;
	}
	if (nr_keys)
		*nr_keys = rt->ctl->out_pos;
	if (stop_word)
		*stop_word = rt->ctl->in_pos;
	*status = rt->ctl->status;
	return 0;
}

/* ---- Feature probe ---- */

/*
 * Loads a probe: 1 if the kernel takes it, 0 if its verifier refuses it
 * (EINVAL: the feature is absent), or -errno if the load itself failed
 * (ENOMEM, EPERM, ...), which says nothing of the feature.
 */
static int probe_load(const struct bpf_insn *insns, int cnt)
{
	int fd = bpf_prog_load(BK_PROG_TYPE, "bk_probe", "GPL", insns, cnt, NULL);

	if (fd < 0)
		return errno == EINVAL || errno == EOPNOTSUPP || errno == 524 /* ENOTSUPP */ ?
		       0 : -errno;
	close(fd);
	return 1;
}

/*
 * bpf_loop() with a callback (5.17+; 6.1 takes callbacks only with the
 * JIT).  A callback needs BTF func_info, so the probe is made and loaded
 * as the generated programs are.
 */
static int probe_bpf_loop(void)
{
	struct bk_prog *p = calloc(1, sizeof(*p));
	struct bk_loaded l;
	int ld_func, ret;

	if (!p)
		return -ENOMEM;
	snprintf(p->name, sizeof(p->name), "bk_probe");
	snprintf(p->func_name, sizeof(p->func_name), "bk_probe_loop");
	snprintf(p->file_name, sizeof(p->file_name), "bk_probe.bkgen");
	bk_emit_init(&p->e, false);
	bk_subprog(&p->e);
	bk_line(&p->e, "bpf_loop(1, callback, NULL, 0)");
	bk_insn(&p->e, BPF_MOV64_IMM(BPF_REG_1, 1));
	ld_func = p->e.cnt;
	bk_ld_imm64(&p->e, BPF_REG_2, BPF_PSEUDO_FUNC, 0);
	bk_insn(&p->e, BPF_MOV64_IMM(BPF_REG_3, 0));
	bk_insn(&p->e, BPF_MOV64_IMM(BPF_REG_4, 0));
	bk_insn(&p->e, BPF_EMIT_CALL(BPF_FUNC_loop));
	bk_insn(&p->e, BPF_MOV64_IMM(BPF_REG_0, 0));
	bk_insn(&p->e, BPF_EXIT_INSN());
	bk_fix_func(&p->e, ld_func);
	bk_subprog(&p->e);
	bk_line(&p->e, "callback");
	bk_insn(&p->e, BPF_MOV64_IMM(BPF_REG_0, 0));
	bk_insn(&p->e, BPF_EXIT_INSN());
	ret = bk_emit_finish(&p->e);
	if (!ret)
		ret = bk_prog_load(p, &l, NULL, 0);
	bk_prog_release(p);
	free(p);
	if (!ret) {
		bk_prog_unload(&l);
		return 1;
	}
	return ret == -EINVAL || ret == -EOPNOTSUPP || ret == -524 ? 0 : ret;
}

/*
 * A tail call in a program that also makes a bpf-to-bpf call (here a
 * bpf_loop callback's kind of subprogram): the JIT must support mixing
 * them ("tail_calls are not allowed in non-JITed programs with bpf-to-bpf
 * calls", or the arch's own refusal).
 */
static int probe_tail_call_subprog(void)
{
	int map_fd = bpf_map_create(BPF_MAP_TYPE_PROG_ARRAY, "bk_probe", 4, 4, 1, NULL);
	int ret;

	if (map_fd < 0)
		return -errno;
	{
		const struct bpf_insn prog[] = {
			BPF_MOV64_REG(BPF_REG_6, BPF_REG_1),
			{ .code = BPF_JMP | BPF_CALL, .src_reg = BPF_PSEUDO_CALL, .imm = 7 },
			BPF_MOV64_REG(BPF_REG_1, BPF_REG_6),
			BPF_LD_IMM64_RAW_1(BPF_REG_2, BPF_PSEUDO_MAP_FD, map_fd), BPF_LD_IMM64_RAW_2(0),
			BPF_MOV64_IMM(BPF_REG_3, 0),
			BPF_EMIT_CALL(BPF_FUNC_tail_call),
			BPF_MOV64_IMM(BPF_REG_0, 0),
			BPF_EXIT_INSN(),
			/* the subprogram */
			BPF_MOV64_IMM(BPF_REG_0, 0),
			BPF_EXIT_INSN(),
		};

		ret = probe_load(prog, sizeof(prog) / sizeof(prog[0]));
	}
	close(map_fd);
	return ret;
}

int bk_probe_features(struct bk_features *ft)
{
	/* r0 = 0; loop: may_goto +1; goto loop-ish: a may_goto bounded loop */
	const struct bpf_insn may_goto_prog[] = {
		BPF_MOV64_IMM(BPF_REG_0, 0),
		BPF_MAY_GOTO_INSN(2),
		BPF_ALU64_IMM(BPF_ADD, BPF_REG_0, 1),
		BPF_JMP_A(-3),
		BPF_MOV64_IMM(BPF_REG_0, 0),
		BPF_EXIT_INSN(),
	};
	const struct bpf_insn ret0[] = {
		BPF_MOV64_IMM(BPF_REG_0, 0),
		BPF_EXIT_INSN(),
	};
	struct bpf_prog_info info = {};
	__u32 info_len = sizeof(info);
	int fd, ret;

	memset(ft, 0, sizeof(*ft));
	fd = bpf_prog_load(BK_PROG_TYPE, "bk_probe", "GPL", ret0, 2, NULL);
	if (fd < 0)
		return -errno;
	ret = bpf_obj_get_info_by_fd(fd, &info, &info_len) ? -errno : 0;
	close(fd);
	if (ret)
		return ret;
	ft->jit = info.jited_prog_len > 0;

	ret = probe_load(may_goto_prog, sizeof(may_goto_prog) / sizeof(may_goto_prog[0]));
	if (ret < 0)
		return ret;
	ft->may_goto = ret;
	ret = probe_bpf_loop();
	if (ret < 0)
		return ret;
	/* "callbacks are not allowed in non-JITed programs" (6.1) */
	ft->bpf_loop = ret && ft->jit;
	ret = probe_tail_call_subprog();
	if (ret < 0)
		return ret;
	ft->tail_call_subprog = ret;

	if (ft->may_goto) {
		ft->best = BK_SHAPE_MAY_GOTO;
		ft->best_walk = BK_WALK_TABLE;
		snprintf(ft->why, sizeof(ft->why),
			 "may_goto: one loop, no call per key, verified in a few passes; "
			 "nodes with a key table walk it (no load-to-load chain)");
	} else if (ft->bpf_loop) {
		ft->best = BK_SHAPE_BPF_LOOP;
		ft->best_walk = BK_WALK_U64S;
		snprintf(ft->why, sizeof(ft->why),
			 "no may_goto (kernel < 6.9): bpf_loop callback per chunk of keys, "
			 "walking by u64s");
	} else {
		ft->best = BK_SHAPE_AUTO;
		snprintf(ft->why, sizeof(ft->why),
			 "neither may_goto nor bpf_loop (whose callbacks need the JIT): no supported shape");
		return -EOPNOTSUPP;
	}
	return 0;
}

static long meminfo_kb(const char *field)
{
	FILE *f = fopen("/proc/meminfo", "r");
	char line[256];
	long v = -1;

	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, field, strlen(field)) && line[strlen(field)] == ':')
			v = atol(line + strlen(field) + 1);
	if (f)
		fclose(f);
	return v;
}

/*
 * The memory cgroup's kernel-memory counter (v1 memory.kmem.usage_in_bytes,
 * v2 memory.stat "kernel"), which BPF programs, their BTF and JIT images
 * are charged to since 5.11; else minus MemFree, which other activity
 * disturbs.  Differences are what count.
 */
long long bk_kernel_mem_bytes(const char **method)
{
	char line[400], path[600], v1[400] = "", v2[400] = "";
	long long v = -1;
	FILE *f = fopen("/proc/self/cgroup", "r");

	while (f && fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = 0;
		if (strstr(line, ":memory:"))
			snprintf(v1, sizeof(v1), "%.300s", strstr(line, ":memory:") + 8);
		else if (!strncmp(line, "0::", 3))
			snprintf(v2, sizeof(v2), "%.300s", line + 3);
	}
	if (f)
		fclose(f);
	snprintf(path, sizeof(path), "/sys/fs/cgroup/memory%s/memory.kmem.usage_in_bytes", v1);
	if (v1[0] && (f = fopen(path, "r"))) {
		if (fscanf(f, "%lld", &v) != 1)
			v = -1;
		fclose(f);
		*method = "memcg v1 memory.kmem.usage_in_bytes";
		return v;
	}
	snprintf(path, sizeof(path), "/sys/fs/cgroup%s/memory.stat", v2);
	if (v2[0] && (f = fopen(path, "r"))) {
		while (fgets(line, sizeof(line), f))
			if (sscanf(line, "kernel %lld", &v) == 1)
				break;
		fclose(f);
		if (v >= 0) {
			*method = "memcg v2 memory.stat kernel";
			return v;
		}
	}
	*method = "MemFree";
	return meminfo_kb("MemFree") >= 0 ? -1024LL * meminfo_kb("MemFree") : -1;
}

long long bk_kernel_mem_settle(const char **method)
{
	long long prev = bk_kernel_mem_bytes(method), v;
	unsigned stable = 0, i;

	/* closed programs and maps are freed after an RCU grace period or
	 * from a workqueue: wait until three reads 5 ms apart agree */
	for (i = 0; i < 100 && stable < 3; i++) {
		usleep(5000);
		v = bk_kernel_mem_bytes(method);
		stable = v == prev ? stable + 1 : 0;
		prev = v;
	}
	return prev;
}
