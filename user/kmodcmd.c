// SPDX-License-Identifier: GPL-2.0
/*
 * loader kmod MODULE.ko: the generated programs called from kernel C.
 *
 * Builds the main job's workload (smaller), picks leaves of distinct
 * formats from its three btrees, loads one shape program per shape (the
 * node cache's contract: the table walk, offsets from the template), and
 * writes each leaf into run slots of the unpack maps, one slot per module
 * thread.  Then it loads kmod/'s module with the programs' fds: the
 * module's init calls the JIT'd images directly from several kthreads,
 * checks every key against the model's C unpack built into it, times BPF
 * against that C, and leaves its findings in a read-only parameter.  The
 * loader reads them, removes the module and reports.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "btree.h"
#include "caps.h"
#include "gen.h"
#include "kmodcmd.h"
#include "nodecache.h"
#include "util.h"
#include "workload.h"

#define EXIT_USAGE		2	/* as the loader's other commands */
#define KMOD_NAME		"bkey_kmod"
#define KMOD_MAX_NODES		16	/* BK_KMOD_MAX_PROGS */
#define KMOD_MAX_THREADS	8

struct kmod_opts {
	const char	*module;
	size_t		keys;
	unsigned	node_size, nodes, threads, stress_ms, rounds, lookups;
	uint64_t	seed;
	bool		json;
	const char	*pin_dir;	/* programs to the module by bpffs path */
	int		flip_key;	/* the module's self-test: -1 = none */
};

/* What the module left in its "result" parameter. */
struct kmod_result {
	unsigned	progs, threads;
	unsigned long	cpus;
	unsigned long long keys_per_pass, calls, keys_compared, mismatches;
	unsigned long long node_bpf_ns, node_c_ns, key_bpf_ns, key_c_ns;
	unsigned	trees, lookups_per_pass;
	unsigned long long lookups_compared, lookup_bpf_ns, lookup_c_ns;
	char		first_mismatch[96];
};

struct kmod_node {
	const struct bk_node	*n;
	int			prog_fd;	/* its shape's program (not owned) */
	const char		*btree;
};

void kmod_usage(FILE *out, const char *prog_name)
{
	fprintf(out,
"Usage: %s kmod [OPTIONS] MODULE.ko\n"
"\n"
"Call the generated unpack programs from kernel C, the way bcachefs called its\n"
"compiled unpack: kmod/'s module (make kmod) calls each program's JIT'd image\n"
"directly on node memory from several kthreads at once, compares every key\n"
"with the model's C unpack built into the module, and times BPF against it.\n"
"\n"
"The loader builds a filesystem-like workload in three btrees, takes leaves of\n"
"distinct formats, loads one program per shape and writes each leaf into the\n"
"unpack maps (one run slot per thread), then loads the module with the\n"
"programs' fds, reads what its init found and removes it.\n"
"\n"
"Options:\n"
"  -k, --keys N        keys of the workload (default 20000)\n"
"  -n, --node-size N   bytes of keys per node, 512..65536 (default 16384)\n"
"  -N, --nodes N       leaves to call, 1..%d (default 8)\n"
"  -t, --threads N     kthreads calling at once, 1..%d (default 2)\n"
"  -s, --stress-ms N   how long the threads call and check (default 2000)\n"
"  -r, --rounds N      timing rounds, BPF and C in turns (default 15)\n"
"  -l, --lookups N     queries per tree for the lookups through the three whole\n"
"                      trees, 0..1024 (default 1024; 0: no lookups)\n"
"      --seed N        the workload's seed (default 1)\n"
"      --pin DIR       give the module the programs by bpffs path (pinned in DIR,\n"
"                      a bpffs directory, and unpinned after) instead of by fd\n"
"      --flip-key N    a self-test of the check: the module flips a bit of key N\n"
"                      of the first node's output in its first thread, so the\n"
"                      run must report mismatches and exit 1\n"
"  -j, --json          one JSON object on stdout\n"
"\n"
"Output: 'kmod: N keys compared, M mismatches, unpack bpf/C X.XX, per-key call\n"
"bpf/C Y.YY', then the figures behind it.  unpack is a whole node per call\n"
"against the model's bkey_unpack_stream(); per-key call is one key per call\n"
"against an indirect call of bkey_unpack_key(), each the fastest of the rounds.\n"
"\n"
"Needs CAP_SYS_MODULE besides what programs need (CAP_BPF, CAP_PERFMON), and a\n"
"module built for the running kernel.  Exit status: 0 with 0 mismatches, 1 on\n"
"a mismatch or a kernel failure (the kernel log has the module's reason),\n"
"2 on bad options.\n",
		prog_name, KMOD_MAX_NODES, KMOD_MAX_THREADS);
}

static int parse_result(const char *s, struct kmod_result *r)
{
	int n = sscanf(s, "progs=%u keys_per_pass=%llu threads=%u cpus=0x%lx calls=%llu "
		       "keys_compared=%llu mismatches=%llu node_bpf_ns=%llu node_c_ns=%llu "
		       "key_bpf_ns=%llu key_c_ns=%llu trees=%u lookups_per_pass=%u "
		       "lookups_compared=%llu lookup_bpf_ns=%llu lookup_c_ns=%llu first_mismatch=%95[^\n]",
		       &r->progs, &r->keys_per_pass, &r->threads, &r->cpus, &r->calls,
		       &r->keys_compared, &r->mismatches, &r->node_bpf_ns, &r->node_c_ns,
		       &r->key_bpf_ns, &r->key_c_ns, &r->trees, &r->lookups_per_pass,
		       &r->lookups_compared, &r->lookup_bpf_ns, &r->lookup_c_ns, r->first_mismatch);

	return n == 17 ? 0 : -EPROTO;
}

/* Leaves of distinct formats, round robin over the trees, at most @max. */
static unsigned pick_leaves(const struct bk_btree *bt, const char *const *names, unsigned nr_trees,
			    struct kmod_node *out, unsigned max)
{
	uint32_t next[3] = {};
	unsigned n = 0, t, j;
	bool more = true;

	while (n < max && more) {
		more = false;
		for (t = 0; t < nr_trees && n < max; t++) {
			while (next[t] < bt[t].nr_nodes) {
				const struct bk_node *c = &bt[t].nodes[next[t]++];
				bool seen = false;

				if (c->level || !c->nr_keys)
					continue;
				for (j = 0; j < n; j++)
					seen |= !memcmp(&out[j].n->f, &c->f, sizeof(c->f));
				if (seen)
					continue;
				out[n].n = c;
				out[n].btree = names[t];
				out[n++].prog_fd = -1;
				more = true;
				break;
			}
		}
	}
	return n;
}

static int load_shape_progs(struct kmod_node *nodes, unsigned nr, const struct bk_runtime *rt,
			    const struct bk_features *ft, int *fds, unsigned *nr_fds)
{
	struct bk_gen_opts o = {
		.shape = ft->may_goto ? BK_SHAPE_MAY_GOTO : BK_SHAPE_BPF_LOOP,
		.walk = BK_WALK_TABLE, .chunk = 1, .by_shape = true,
		.strict_align = bk_strict_align_default(),
		.ctl_fd = rt->ctl_fd, .in_fd = rt->in_fd, .out_fd = rt->out_fd,
	};
	struct bk_prog p = {};
	unsigned i, j;
	int ret = 0;

	for (i = 0; i < nr && !ret; i++) {
		struct bk_loaded l = { .fd = -1 };

		/* a node of a shape loaded already shares its program */
		for (j = 0; j < i; j++)
			if (!memcmp(&nodes[j].n->f, &nodes[i].n->f, 8))
				nodes[i].prog_fd = nodes[j].prog_fd;
		if (nodes[i].prog_fd >= 0)
			continue;
		ret = bk_gen_unpack(&nodes[i].n->f, &o, &p, NULL);
		if (ret)
			break;
		ret = bk_prog_load_report(&p, &l, stderr, "loader", NULL, 0);
		if (ret)
			break;
		nodes[i].prog_fd = fds[(*nr_fds)++] = l.fd;
	}
	bk_prog_release(&p);
	return ret;
}

/* Node @i into slots i * threads .. + threads - 1: words, key table, template. */
static void fill_slots(const struct kmod_node *nodes, unsigned nr, unsigned threads,
		       const struct bk_runtime *rt)
{
	unsigned i, t;

	for (i = 0; i < nr; i++) {
		const struct bk_node *n = nodes[i].n;

		for (t = 0; t < threads; t++) {
			struct bk_runtime s;

			bk_runtime_slot(rt, i * threads + t, &s);
			memcpy(s.in, n->words, 8ull * n->u64s);
			memcpy(s.tab, n->tab, 2ull * (n->nr_keys + 1));
			bk_runtime_set_format(&s, &n->f);
		}
	}
}

/* Where program @i is pinned with --pin. */
static void pin_path(const struct kmod_opts *o, unsigned i, char *buf, size_t len)
{
	snprintf(buf, len, "%s/" KMOD_NAME "_%u", o->pin_dir, i);
}

/* --pin: each node's program pinned under its own name; 0 or -errno. */
static int pin_progs(const struct kmod_node *nodes, unsigned nr, const struct kmod_opts *o,
		     unsigned *nr_pinned, const char *prog_name)
{
	char path[4096];

	for (*nr_pinned = 0; *nr_pinned < nr; (*nr_pinned)++) {
		pin_path(o, *nr_pinned, path, sizeof(path));
		if (bpf_obj_pin(nodes[*nr_pinned].prog_fd, path)) {
			int ret = -errno;

			fprintf(stderr, "%s: kmod: --pin: pinning at %s: %s (is %s a bpffs directory?)\n",
				prog_name, path, strerror(-ret), o->pin_dir);
			return ret;
		}
	}
	return 0;
}

static void unpin_progs(unsigned nr_pinned, const struct kmod_opts *o)
{
	char path[4096];
	unsigned i;

	for (i = 0; i < nr_pinned; i++) {
		pin_path(o, i, path, sizeof(path));
		unlink(path);
	}
}

/*
 * The module's parameters: the unpack programs and their nodes, and with
 * --lookups the trees @tr loaded in @nc (a lookup program of it names
 * the maps).
 */
static int module_params(const struct kmod_node *nodes, unsigned nr, const struct kmod_opts *o,
			 const struct bk_node_cache *nc, const struct bk_tree_rt *tr, char **out)
{
	size_t cap = 512 + 5 * 3 * 12 + nr * (2 * sizeof(struct bkey_format) + 32 +
				 (o->pin_dir ? strlen(o->pin_dir) + 32 : 0));
	char *s = malloc(cap);
	size_t len = 0, b;
	unsigned i;

	if (!s)
		return -ENOMEM;
	len += snprintf(s + len, cap - len, "threads=%u stress_ms=%u rounds=%u flip_key=%d %s=",
			o->threads, o->stress_ms, o->rounds, o->flip_key,
			o->pin_dir ? "paths" : "progs");
	for (i = 0; i < nr; i++) {
		char path[4096];

		pin_path(o, i, path, sizeof(path));
		if (o->pin_dir)
			len += snprintf(s + len, cap - len, "%s%s", i ? "," : "", path);
		else
			len += snprintf(s + len, cap - len, "%s%d", i ? "," : "", nodes[i].prog_fd);
	}
	if (o->lookups) {
		len += snprintf(s + len, cap - len, " lookup_prog=%d lookup_nq=%u node_size=%u",
				nc->cache.e[0].lookup.fd, o->lookups, nc->node_size);
#define TREE_PARAM(name, expr) do {							\
			len += snprintf(s + len, cap - len, " " name "=");			\
			for (i = 0; i < 3; i++)							\
				len += snprintf(s + len, cap - len, "%s%u", i ? "," : "",	\
						(unsigned)(expr));				\
		} while (0)
		TREE_PARAM("tree_root", tr[i].base + tr[i].bt->root);
		TREE_PARAM("tree_level", tr[i].bt->depth - 1);
		TREE_PARAM("tree_first", tr[i].base);
		TREE_PARAM("tree_end", tr[i].base + tr[i].bt->nr_nodes);
		TREE_PARAM("tree_depth", tr[i].bt->depth + tr[i].bt->leaf_gaps);
#undef TREE_PARAM
	}
	len += snprintf(s + len, cap - len, " words=");
	for (i = 0; i < nr; i++)
		len += snprintf(s + len, cap - len, "%s%u", i ? "," : "", nodes[i].n->u64s);
	len += snprintf(s + len, cap - len, " formats=");
	for (i = 0; i < nr; i++) {
		const uint8_t *f = (const uint8_t *)&nodes[i].n->f;

		len += snprintf(s + len, cap - len, "%s", i ? "," : "");
		for (b = 0; b < sizeof(struct bkey_format); b++)
			len += snprintf(s + len, cap - len, "%02x", f[b]);
	}
	*out = s;
	return 0;
}

/*
 * Tree @i's queries into its search slots (i * threads + t): keys' own
 * positions and positions just past them, in random order.
 */
static void write_queries(struct bk_node_cache *nc, const struct bk_keyset *ks, unsigned i,
			  unsigned threads, unsigned nq, uint64_t seed)
{
	struct bk_lookup_rt v;
	unsigned q, t;

	bk_lookup_rt_slot(&nc->lr, i * threads, &v);
	for (q = 0; q < nq; q++) {
		const struct bkey *k = &ks->keys[bk_rnd(&seed) % ks->nr].k;

		v.queries[q] = (struct bk_query){ k->inode, k->offset + (q & 1), k->snapshot };
	}
	for (t = 1; t < threads; t++) {
		struct bk_lookup_rt o;

		bk_lookup_rt_slot(&nc->lr, i * threads + t, &o);
		memcpy(o.queries, v.queries, nq * sizeof(*v.queries));
	}
}

/* The last timed batch of each tree (its first search slot) against the keyset reference. */
static unsigned long long check_last_lookups(struct bk_node_cache *nc, const struct bk_keyset **ks,
					     unsigned nr_trees, unsigned threads, unsigned nq)
{
	unsigned long long bad = 0;
	unsigned i, q;

	for (i = 0; i < nr_trees; i++) {
		struct bk_lookup_rt v;

		bk_lookup_rt_slot(&nc->lr, i * threads, &v);
		for (q = 0; q < nq; q++) {
			const struct bk_query *qq = &v.queries[q];
			struct bpos pos = { .inode = qq->inode, .offset = qq->offset,
					    .snapshot = qq->snapshot };

			bad += !bk_keyset_answer_ok(ks[i], pos, v.results[q].found, v.results[q].key);
		}
	}
	return bad;
}

/*
 * Loads the module (its init does all the work, in this process, where
 * the fds in @params are valid), reads its result and removes it.
 */
static int run_module(int fd, const char *path, const char *params, char *res, size_t len,
		      const char *prog_name)
{
	int ret = 0;
	FILE *f;

	if (syscall(SYS_finit_module, fd, params, 0)) {
		ret = -errno;
		if (ret == -EPERM)
			fprintf(stderr, "%s: kmod: loading %s: missing capability CAP_SYS_MODULE "
				"(or modules are disabled: /proc/sys/kernel/modules_disabled)\n",
				prog_name, path);
		else if (ret == -ENOSYS)
			fprintf(stderr, "%s: kmod: loading %s: this kernel cannot load modules "
				"(built without CONFIG_MODULES)\n", prog_name, path);
		else if (ret == -EEXIST)
			fprintf(stderr, "%s: kmod: %s is loaded already: rmmod %s\n", prog_name,
				KMOD_NAME, KMOD_NAME);
		else
			fprintf(stderr, "%s: kmod: loading %s failed: %s (the kernel log says why: "
				"dmesg | grep %s)\n", prog_name, path, strerror(-ret), KMOD_NAME);
		return ret;
	}
	f = fopen("/sys/module/" KMOD_NAME "/parameters/result", "r");
	if (!f || !fgets(res, len, f)) {
		ret = -errno ? -errno : -EIO;
		fprintf(stderr, "%s: kmod: cannot read the module's result: %s\n", prog_name,
			strerror(-ret));
	}
	if (f)
		fclose(f);
	if (syscall(SYS_delete_module, KMOD_NAME, O_NONBLOCK)) {
		fprintf(stderr, "%s: kmod: removing %s: %s\n", prog_name, KMOD_NAME, strerror(errno));
		if (!ret)
			ret = -errno;
	}
	return ret;
}

static unsigned min_u(unsigned a, unsigned b)
{
	return a < b ? a : b;
}

static unsigned online_cpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n > 0 ? n : 1;
}

static double ratio(unsigned long long a, unsigned long long b)
{
	return b ? (double)a / b : 0;
}

static void report(const struct kmod_opts *o, const struct kmod_node *nodes, unsigned nr,
		   unsigned nr_shapes, const struct kmod_result *r, const char *shape)
{
	double node_x = ratio(r->node_bpf_ns, r->node_c_ns);
	double key_x = ratio(r->key_bpf_ns, r->key_c_ns);
	double kp = r->keys_per_pass ? (double)r->keys_per_pass : 1;
	double lp = r->lookups_per_pass ? (double)r->lookups_per_pass : 1;
	double lookup_x = ratio(r->lookup_bpf_ns, r->lookup_c_ns);
	unsigned i;

	if (o->json) {
		printf("{\"nodes\":%u,\"shapes\":%u,\"loop\":\"%s\",\"threads\":%u,\"cpus\":\"0x%lx\","
		       "\"calls\":%llu,\"keys_compared\":%llu,\"mismatches\":%llu,"
		       "\"unpack_bpf_ns_per_key\":%.2f,\"unpack_c_ns_per_key\":%.2f,\"unpack_bpf_c\":%.3f,"
		       "\"call_bpf_ns\":%.2f,\"call_c_ns\":%.2f,\"call_bpf_c\":%.3f,"
		       "\"trees\":%u,\"lookups_compared\":%llu,\"lookup_bpf_ns\":%.1f,"
		       "\"lookup_c_ns\":%.1f,\"lookup_bpf_c\":%.3f}\n",
		       nr, nr_shapes, shape, r->threads, r->cpus, r->calls, r->keys_compared,
		       r->mismatches, r->node_bpf_ns / kp, r->node_c_ns / kp, node_x,
		       r->key_bpf_ns / kp, r->key_c_ns / kp, key_x, r->trees, r->lookups_compared,
		       r->lookup_bpf_ns / lp, r->lookup_c_ns / lp, lookup_x);
		return;
	}
	printf("kmod: %llu keys compared, %llu mismatches, unpack bpf/C %.2f, per-key call bpf/C %.2f",
	       r->keys_compared, r->mismatches, node_x, key_x);
	if (r->trees)
		printf(", %llu lookups compared, lookup bpf/C %.2f", r->lookups_compared, lookup_x);
	printf("\n");
	printf("  %u leaves of distinct formats, %u shape programs (%s), %llu keys in all:\n",
	       nr, nr_shapes, shape, r->keys_per_pass);
	for (i = 0; i < nr; i++) {
		char fmt[160];

		bkey_format_to_str(&nodes[i].n->f, fmt, sizeof(fmt));
		printf("    %-8s %5u keys  %s\n", nodes[i].btree, nodes[i].n->nr_keys, fmt);
	}
	printf("  %u kthreads on CPUs mask 0x%lx for %u ms: %llu calls, every key%s checked\n",
	       r->threads, r->cpus, o->stress_ms, r->calls, r->trees ? " and lookup" : "");
	printf("  unpack, a whole node per call: bpf %.2f ns/key, C %.2f ns/key\n",
	       r->node_bpf_ns / kp, r->node_c_ns / kp);
	printf("  one key per call: bpf %.2f ns/call, C (indirect call) %.2f ns/call\n",
	       r->key_bpf_ns / kp, r->key_c_ns / kp);
	if (r->trees)
		printf("  lookups through %u whole trees (%u queries a pass, batches as the loader "
		       "drives them): bpf %.1f ns/lookup, C %.1f ns/lookup\n", r->trees,
		       r->lookups_per_pass, r->lookup_bpf_ns / lp, r->lookup_c_ns / lp);
	if (r->mismatches)
		printf("  first mismatch: %s\n", r->first_mismatch);
}

static int parse_opts(int argc, char **argv, struct kmod_opts *o, const char *prog_name)
{
	static const struct option longopts[] = {
		{ "keys", required_argument, NULL, 'k' },
		{ "node-size", required_argument, NULL, 'n' },
		{ "nodes", required_argument, NULL, 'N' },
		{ "threads", required_argument, NULL, 't' },
		{ "stress-ms", required_argument, NULL, 's' },
		{ "rounds", required_argument, NULL, 'r' },
		{ "lookups", required_argument, NULL, 'l' },
		{ "seed", required_argument, NULL, 'S' },
		{ "pin", required_argument, NULL, 'P' },
		{ "flip-key", required_argument, NULL, 'F' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	int c;

	while ((c = getopt_long(argc, argv, "k:n:N:t:s:r:l:jh", longopts, NULL)) != -1) {
		char *end = NULL;
		unsigned long long v = 0;

		if (optarg && c != 'P') {
			errno = 0;
			v = strtoull(optarg, &end, 0);
			if (errno || *end || end == optarg) {
				fprintf(stderr, "%s: kmod: option -%c: \"%s\" is not a number\n",
					prog_name, c, optarg);
				return -EINVAL;
			}
		}
		switch (c) {
		case 'k': o->keys = v; break;
		case 'n': o->node_size = v; break;
		case 'N': o->nodes = v; break;
		case 't': o->threads = v; break;
		case 's': o->stress_ms = v; break;
		case 'r': o->rounds = v; break;
		case 'l': o->lookups = v; break;
		case 'S': o->seed = v; break;
		case 'P': o->pin_dir = optarg; break;
		case 'F': o->flip_key = v > 65535 ? 65535 : (int)v; break;
		case 'j': o->json = true; break;
		case 'h': kmod_usage(stdout, prog_name); exit(0);
		default: kmod_usage(stderr, prog_name); return -EINVAL;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "%s: kmod: give the module's path (MODULE.ko)\n", prog_name);
		return -EINVAL;
	}
	o->module = argv[optind];
	if (o->keys < 100 || o->keys > 10000000 || o->node_size < 512 || o->node_size > 65536 ||
	    !o->nodes || o->nodes > KMOD_MAX_NODES || !o->threads ||
	    o->threads > KMOD_MAX_THREADS || !o->rounds || o->rounds > 1000 || o->stress_ms > 60000 ||
	    o->lookups > BK_BATCH) {
		fprintf(stderr, "%s: kmod: out of range: --keys %zu (100..10000000), --node-size %u "
			"(512..65536), --nodes %u (1..%d), --threads %u (1..%d), --rounds %u (1..1000), "
			"--stress-ms %u (<= 60000), --lookups %u (0..%u)\n", prog_name, o->keys,
			o->node_size, o->nodes, KMOD_MAX_NODES, o->threads, KMOD_MAX_THREADS,
			o->rounds, o->stress_ms, o->lookups, BK_BATCH);
		return -EINVAL;
	}
	return 0;
}

/*
 * The three trees in one node cache (the loader's own lookups' contract:
 * shape programs, one search slot per tree and thread), their queries
 * written.  0; -ENOENT if a tree failed to load (the cache is open);
 * else -errno with nothing open.
 */
static int open_trees(struct bk_node_cache *nc, struct bk_tree_rt *tr, const struct bk_btree *bt,
		      const struct bk_keyset **ks, const struct kmod_opts *o, const char *prog_name)
{
	uint32_t slots = bt[0].nr_nodes + bt[1].nr_nodes + bt[2].nr_nodes;
	unsigned i;
	int ret;

	ret = bk_node_cache_open_runs(nc, o->node_size, slots, 3 * o->threads);
	if (ret) {
		fprintf(stderr, "%s: kmod: cannot open the node cache: %s\n", prog_name,
			ret == -EOPNOTSUPP ? BK_NODE_CACHE_NO_SHAPE : strerror(-ret));
		return ret;
	}
	for (i = 0; i < 3; i++) {
		ret = bk_tree_load(&tr[i], &bt[i], nc, stderr);
		if (ret) {
			fprintf(stderr, "%s: kmod: loading a tree: %s\n", prog_name, strerror(-ret));
			return -ENOENT;
		}
		write_queries(nc, ks[i], i, o->threads, o->lookups, o->seed + i);
	}
	return 0;
}

int kmod_main(int argc, char **argv, const char *prog_name)
{
	struct kmod_opts o = {
		.keys = 20000, .node_size = 16384, .nodes = 8, .threads = 2,
		.stress_ms = 2000, .rounds = 15, .seed = 1, .flip_key = -1, .lookups = BK_BATCH,
	};
	struct bk_node_cache nc = { .lr = { .ctl_fd = -1, .nodes_fd = -1, .progs_fd = -1 },
				    .srt = { .ctl_fd = -1, .in_fd = -1, .out_fd = -1 } };
	struct bk_tree_rt tr[3] = {};
	const struct bk_keyset *ks[3];
	unsigned long long ref_bad = 0;
	bool nc_open = false;
	static const char *const names[3] = { "inodes", "extents", "dirents" };
	struct bk_runtime rt = { .ctl_fd = -1, .in_fd = -1, .out_fd = -1 };
	struct bk_btree bt[3] = {};
	struct bk_workload w = {};
	struct kmod_node nodes[KMOD_MAX_NODES];
	struct kmod_result r = {};
	struct bk_features ft;
	int fds[KMOD_MAX_NODES];
	unsigned nr = 0, nr_fds = 0, nr_pinned = 0, i;
	char why[200], res[1024], *params = NULL;
	int ret, mod_fd;

	if (parse_opts(argc, argv, &o, prog_name))
		return EXIT_USAGE;
	if (!bk_caps_ok(why, sizeof(why))) {
		fprintf(stderr, "%s: kmod: %s\n", prog_name, why);
		return 1;
	}
	if (!bk_have_cap(CAP_SYS_MODULE)) {
		fprintf(stderr, "%s: kmod: missing capability CAP_SYS_MODULE (loading the module): "
			"run as root\n", prog_name);
		return 1;
	}
	/* the module first: a wrong path fails before anything is built */
	mod_fd = open(o.module, O_RDONLY | O_CLOEXEC);
	if (mod_fd < 0) {
		fprintf(stderr, "%s: kmod: %s: %s\n", prog_name, o.module, strerror(errno));
		return 1;
	}
	ret = bk_probe_features(&ft);
	if (ret) {
		fprintf(stderr, "%s: kmod: kernel feature probe failed: %s\n", prog_name,
			ret == -EOPNOTSUPP ? ft.why : strerror(-ret));
		close(mod_fd);
		return 1;
	}
	ret = bk_workload_build(&w, o.keys, o.seed);
	ks[0] = &w.inodes;
	ks[1] = &w.extents;
	ks[2] = &w.dirents;
	for (i = 0; i < 3 && !ret; i++) {
		struct bk_btree_opts bo = { .node_size = o.node_size };

		ret = bk_btree_build(&bt[i], ks[i], &bo, why, sizeof(why));
		if (ret)
			fprintf(stderr, "%s: kmod: building %s: %s\n", prog_name, names[i], why);
	}
	if (ret)
		goto cleanup;
	nr = pick_leaves(bt, names, 3, nodes, o.nodes);
	if (!nr) {
		fprintf(stderr, "%s: kmod: the workload has no leaf with keys\n", prog_name);
		ret = -EINVAL;
		goto cleanup;
	}
	ret = bk_runtime_open_slots(&rt, nr * o.threads);
	if (ret) {
		fprintf(stderr, "%s: kmod: cannot create the maps: %s\n", prog_name, strerror(-ret));
		goto cleanup;
	}
	ret = load_shape_progs(nodes, nr, &rt, &ft, fds, &nr_fds);
	if (ret) {
		fprintf(stderr, "%s: kmod: loading a program failed: %s\n", prog_name, strerror(-ret));
		goto cleanup;
	}
	fill_slots(nodes, nr, o.threads, &rt);
	if (o.pin_dir) {
		ret = pin_progs(nodes, nr, &o, &nr_pinned, prog_name);
		if (ret)
			goto cleanup;
	}
	if (o.lookups) {
		ret = open_trees(&nc, tr, bt, ks, &o, prog_name);
		nc_open = !ret || ret == -ENOENT;
		if (ret)
			goto cleanup;
	}
	ret = module_params(nodes, nr, &o, &nc, tr, &params);
	if (!ret)
		ret = run_module(mod_fd, o.module, params, res, sizeof(res), prog_name);
	if (ret)
		goto cleanup;
	ret = parse_result(res, &r);
	if (ret) {
		fprintf(stderr, "%s: kmod: the module's result is not understood: %s", prog_name, res);
		goto cleanup;
	}
	report(&o, nodes, nr, nr_fds, &r, bk_shape_name(ft.may_goto ? BK_SHAPE_MAY_GOTO :
								  BK_SHAPE_BPF_LOOP));
	if (o.lookups)
		ref_bad = check_last_lookups(&nc, ks, 3, o.threads, o.lookups);
	if (r.mismatches) {
		ret = -EIO;
	} else if (ref_bad) {
		fprintf(stderr, "%s: kmod: %llu of the module's last BPF lookups disagree with the "
			"keyset's answers\n", prog_name, ref_bad);
		ret = -EIO;
	} else if (o.lookups && !r.lookups_compared) {
		fprintf(stderr, "%s: kmod: the module's threads compared no lookup\n", prog_name);
		ret = -EIO;
	} else if (!r.keys_compared) {
		fprintf(stderr, "%s: kmod: the module's threads compared no key\n", prog_name);
		ret = -EIO;
	} else if ((unsigned)__builtin_popcountl(r.cpus) < min_u(o.threads, online_cpus())) {
		fprintf(stderr, "%s: kmod: %u threads ran on CPUs 0x%lx only\n", prog_name,
			o.threads, r.cpus);
		ret = -EIO;
	}
cleanup:
	for (i = 0; i < 3; i++)
		if (tr[i].bt)
			bk_tree_unload(&tr[i]);
	if (nc_open)
		bk_node_cache_close(&nc);
	unpin_progs(nr_pinned, &o);
	for (i = 0; i < nr_fds; i++)
		close(fds[i]);
	bk_runtime_close(&rt);
	for (i = 0; i < 3; i++)
		bk_btree_free(&bt[i]);
	bk_workload_free(&w);
	free(params);
	close(mod_fd);
	return ret ? 1 : 0;
}
