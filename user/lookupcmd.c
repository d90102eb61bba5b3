// SPDX-License-Identifier: GPL-2.0
/*
 * loader lookup and loader scan: a btree built from a key file (or pinned
 * by an earlier lookup --pin), positions looked up in the kernel, or the
 * keys from a position on.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statfs.h>

#include <linux/magic.h>

#include "btree.h"
#include "caps.h"
#include "cmd.h"
#include "keytext.h"
#include "nodecache.h"
#include "pin.h"

void lookup_usage(FILE *out, const char *prog)
{
	fprintf(out,
"Usage: %s lookup --keys FILE [--node-size B] [--no-verify]\n"
"       %s lookup --keys FILE [--node-size B] --pin DIR\n"
"       %s lookup --pinned DIR [--keys FILE]\n"
"\n"
"Bulk-loads a btree from the keys in FILE (one per line, in the key text\n"
"format below; any order, no two at one position), with each node's\n"
"format computed from its keys and bounds, and loads it into BPF maps with\n"
"one program per distinct format. Then reads queries inode:offset:snapshot\n"
"from standard input, one per line, and prints for each the first key at\n"
"or after it (bcachefs's peek), found by a root-to-leaf walk in the kernel,\n"
"or 'none'.\n"
"\n"
"Key text format:  inode:offset:snapshot size=N type=T ver=HI:LO val=HEX\n"
"(decimal numbers; size, type, ver and val optional; val is hex bytes, a\n"
"whole number of 8-byte words).\n"
"\n"
"  --keys FILE      the key set (required)\n"
"  --node-size B    bytes of keys per node, a multiple of 8 in %u..%u\n"
"                   (default 4096)\n"
"  --no-verify      skip checking each answer against a sorted array\n"
"  --pin DIR        build and load the tree, pin it under DIR (a directory on\n"
"                   bpffs: the nodes, the maps, the programs and a meta map;\n"
"                   README \"Pinned trees\") and exit, answering nothing\n"
"  --pinned DIR     query the tree pinned under DIR instead (--keys then only\n"
"                   checks the answers); everything it says is checked first,\n"
"                   since anyone who can write bpffs can change it\n"
"\n"
"Exit status: 0 success; 1 kernel failure or a mismatch; 2 a malformed key\n"
"file or query (the message gives the line), nothing loaded.\n",
		prog, prog, prog, BK_NODE_SIZE_MIN, BK_NODE_SIZE_MAX);
}

static int read_keyfile(const char *path, struct bk_keyset *ks)
{
	char err[300];
	FILE *f = fopen(path, "r");
	int ret;

	if (!f) {
		fprintf(stderr, "%s: cannot open %s: %s\n", prog_name, path, strerror(errno));
		return -errno;
	}
	ret = bk_keyset_read(f, ks, err, sizeof(err));
	fclose(f);
	if (ret)
		fprintf(stderr, "%s: %s: %s\n", prog_name, path, err);
	return ret;
}

/* All queries first: a bad line stops before anything is loaded. */
static int read_queries(FILE *in, struct bpos **pos, size_t *n)
{
	char *line = NULL, err[200];
	size_t cap = 0, nr = 0, room = 0;
	unsigned lineno = 0;
	int ret = 0;

	*pos = NULL;
	while (getline(&line, &cap, in) >= 0) {
		char *s = line + strspn(line, " \t");

		lineno++;
		if (!*s || *s == '\n' || *s == '#')
			continue;
		if (nr == room) {
			struct bpos *p = realloc(*pos, (room = room ? 2 * room : 1024) * sizeof(*p));

			if (!p) {
				ret = -ENOMEM;
				break;
			}
			*pos = p;
		}
		if (bk_pos_parse(s, &(*pos)[nr], err, sizeof(err))) {
			fprintf(stderr, "%s: query line %u: %s\n", prog_name, lineno, err);
			ret = -EINVAL;
			break;
		}
		nr++;
	}
	free(line);
	*n = nr;
	return ret;
}

/*
 * Builds the btree of @ks and loads it into BPF.  Returns 0, EXIT_USAGE
 * (the keys do not fit the nodes) or EXIT_KERNEL, with one message.
 */
static int tree_up(const struct bk_keyset *ks, const struct bk_btree_opts *bo,
		   struct bk_btree *bt, struct bk_tree_rt *t, bool *loaded, uint32_t runs)
{
	char err[300], why[160];
	int ret;

	if (bk_btree_build(bt, ks, bo, err, sizeof(err))) {
		fprintf(stderr, "%s: cannot build the btree: %s\n", prog_name, err);
		return EXIT_USAGE;
	}
	if (!bk_caps_ok(why, sizeof(why))) {
		fprintf(stderr, "%s: %s\n", prog_name, why);
		return EXIT_KERNEL;
	}
	ret = bk_tree_load_runs(t, bt, runs, stderr);
	if (ret) {
		fprintf(stderr, "%s: cannot load the btree into BPF: %s\n", prog_name,
			ret == -EOPNOTSUPP ? BK_NODE_CACHE_NO_SHAPE : strerror(-ret));
		return EXIT_KERNEL;
	}
	*loaded = true;
	return 0;
}

/* Whether @dir is a directory on bpffs (else a usage error is printed). */
static bool on_bpffs(const char *dir)
{
	struct statfs sf;

	if (!statfs(dir, &sf) && sf.f_type == BPF_FS_MAGIC)
		return true;
	fprintf(stderr, "%s: %s is not a directory on bpffs (mount -t bpf bpf /sys/fs/bpf)\n",
		prog_name, dir);
	return false;
}

/* lookup --pin: the loaded tree pinned under @dir, or one error line. */
static int pin_tree_cmd(const struct bk_tree_rt *t, const char *dir, const char *keys)
{
	char err[PATH_MAX + 200];

	if (bk_tree_pin(t, dir, err, sizeof(err))) {
		fprintf(stderr, "%s: %s\n", prog_name, err);
		return EXIT_KERNEL;
	}
	printf("pinned the tree of %s under %s: %u nodes, depth %u, %u shapes\n", keys, dir,
	       t->bt->nr_nodes, t->bt->depth, t->nr_shapes);
	return 0;
}

/* lookup or scan --pinned: the tree pinned under @dir, opened and checked. */
static int pinned_up(struct bk_pinned *pt, const char *dir)
{
	char err[PATH_MAX + 200], why[160];

	if (!bk_caps_ok(why, sizeof(why))) {
		fprintf(stderr, "%s: %s\n", prog_name, why);
		return EXIT_KERNEL;
	}
	if (bk_pinned_open(pt, dir, err, sizeof(err))) {
		fprintf(stderr, "%s: the tree pinned under %s: %s\n", prog_name, dir, err);
		return EXIT_KERNEL;
	}
	return 0;
}

/* One answer in the key text format; its value is read from the node, which must still hold it. */
static int print_result(const struct bk_tree_rt *t, const struct bk_result *r)
{
	const struct bkey *k = (const struct bkey *)r->key;
	const uint64_t *val = bk_tree_result_val(t, r);

	if (k->u64s < BKEY_U64s) {
		fprintf(stderr, "%s: node %u changed under the lookup: key %u's u64s is %u\n",
			prog_name, r->node, r->idx, k->u64s);
		return -EIO;
	}
	if (!val && k->u64s > BKEY_U64s) {
		fprintf(stderr, "%s: node %u changed under the lookup: key %u's value is not "
			"inside it\n", prog_name, r->node, r->idx);
		return -EIO;
	}
	bk_key_print(stdout, k, val);
	return 0;
}

/*
 * Where lookup and scan take their tree from: the key file's, built and
 * loaded, or the one pinned under a directory (the key file then only
 * checks the answers).
 */
struct tree_src {
	const char		*keys, *pinned;
	struct bk_btree_opts	bo;
	struct bk_keyset	ks;
	struct bk_btree		bt;
	struct bk_tree_rt	t;
	struct bk_pinned	pt;
	bool			loaded;
	struct bk_tree_rt	*tree;	/* the one to query, once up */
};

/* The tree up, from @s->pinned or @s->ks: 0 or EXIT_*, with one message. */
static int tree_src_up(struct tree_src *s, uint32_t nr_run_slots)
{
	int ret = s->pinned ? pinned_up(&s->pt, s->pinned) :
		  tree_up(&s->ks, &s->bo, &s->bt, &s->t, &s->loaded, nr_run_slots);

	if (!ret)
		s->tree = s->pinned ? &s->pt.t : &s->t;
	return ret;
}

/*
 * Everything of @s released: a failure to release the programs is the
 * command's error (EXIT_KERNEL) if @ret was none.
 */
static int tree_src_down(struct tree_src *s, int ret)
{
	int err = s->loaded ? bk_tree_unload(&s->t) : 0;

	if (err && !ret) {
		fprintf(stderr, "%s: releasing the programs: %s\n", prog_name, strerror(-err));
		ret = EXIT_KERNEL;
	}
	if (s->tree == &s->pt.t)
		bk_pinned_close(&s->pt);
	bk_btree_free(&s->bt);
	bk_keyset_free(&s->ks);
	return ret;
}

int lookup_main(int argc, char **argv, const char *prog)
{
	static const struct option opts[] = {
		{ "keys", required_argument, NULL, 'k' },
		{ "node-size", required_argument, NULL, 'n' },
		{ "no-verify", no_argument, NULL, 'V' },
		{ "pin", required_argument, NULL, 'P' },
		{ "pinned", required_argument, NULL, 'Q' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	struct tree_src s = { .bo = { .node_size = 4096 } };
	const char *pin = NULL;
	struct bk_result *res = NULL;
	struct bpos *pos = NULL;
	bool verify = true;
	size_t n = 0, i, mismatches = 0;
	char err[300];
	int opt, ret = EXIT_USAGE;

	while ((opt = getopt_long(argc, argv, "k:n:Vh", opts, NULL)) != -1) {
		switch (opt) {
		case 'k': s.keys = optarg; break;
		case 'n':
			if (parse_node_size(optarg, &s.bo.node_size))
				return EXIT_USAGE;
			break;
		case 'V': verify = false; break;
		case 'P': pin = optarg; break;
		case 'Q': s.pinned = optarg; break;
		case 'h': lookup_usage(stdout, prog_name); return 0;
		default: lookup_usage(stderr, prog_name); return EXIT_USAGE;
		}
	}
	if ((!s.keys && !s.pinned) || (pin && s.pinned)) {
		fprintf(stderr, "%s: lookup: --keys FILE (and --pin DIR), or --pinned DIR\n",
			prog_name);
		return EXIT_USAGE;
	}
	if (pin && !on_bpffs(pin))
		return EXIT_USAGE;
	if (s.keys && read_keyfile(s.keys, &s.ks))
		goto out;
	verify &= s.keys != NULL;
	if (pin) {
		/* run slots for the processes that will query it at once */
		ret = tree_src_up(&s, BK_PIN_RUN_SLOTS);
		if (!ret)
			ret = pin_tree_cmd(s.tree, pin, s.keys);
		goto out;
	}
	if (read_queries(stdin, &pos, &n))
		goto out;
	res = calloc(n ? n : 1, sizeof(*res));
	ret = res ? tree_src_up(&s, 1) : EXIT_KERNEL;
	if (ret)
		goto out;
	ret = EXIT_KERNEL;
	if (bk_tree_lookup(s.tree, pos, n, res)) {
		bk_tree_bad_reason(s.tree, err, sizeof(err));
		fprintf(stderr, "%s: a lookup failed: %s\n", prog_name, err);
		goto out;
	}
	for (i = 0; i < n; i++) {
		const struct bk_result *r = &res[i];

		if (verify)
			mismatches += !bk_keyset_answer_ok(&s.ks, pos[i], r->found, r->key);
		if (!r->found)
			printf("none\n");
		else if (print_result(s.tree, r))
			goto out;
	}
	if (mismatches)
		fprintf(stderr, "%s: %zu of %zu answers differ from the reference\n", prog_name,
			mismatches, n);
	ret = mismatches ? EXIT_KERNEL : 0;
out:
	ret = tree_src_down(&s, ret);
	free(pos);
	free(res);
	return ret;
}

void scan_usage(FILE *out, const char *prog)
{
	fprintf(out,
"Usage: %s scan --keys FILE --from inode:offset:snapshot --count N\n"
"               [--node-size B] [--no-verify]\n"
"       %s scan --pinned DIR --from inode:offset:snapshot --count N [--keys FILE]\n"
"\n"
"Builds and loads the btree of FILE as 'lookup' does, then prints the N keys\n"
"from the first one at or after the position on, crossing leaves, in the\n"
"key text format: a lookup in the kernel finds the first, and each leaf's\n"
"run of keys is unpacked in one run of its format's program.\n"
"\n"
"  --keys FILE      the key set (required; format in 'lookup --help')\n"
"  --from POS       where to start (required)\n"
"  --count N        how many keys at most (required)\n"
"  --node-size B    bytes of keys per node (default 4096)\n"
"  --no-verify      skip checking the keys against a sorted array\n"
"  --pinned DIR     scan the tree 'lookup --pin' pinned under DIR instead\n"
"                   (--keys then only checks the keys)\n"
"\n"
"Exit status as for lookup.\n", prog, prog);
}

int scan_main(int argc, char **argv, const char *prog)
{
	static const struct option opts[] = {
		{ "keys", required_argument, NULL, 'k' },
		{ "from", required_argument, NULL, 'f' },
		{ "count", required_argument, NULL, 'c' },
		{ "node-size", required_argument, NULL, 'n' },
		{ "no-verify", no_argument, NULL, 'V' },
		{ "pinned", required_argument, NULL, 'Q' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	struct tree_src s = { .bo = { .node_size = 4096 } };
	struct bk_result *res = NULL;
	const char *from_s = NULL;
	struct bpos from;
	unsigned long count = 0;
	size_t got = 0, i, first, mismatches = 0;
	bool verify = true;
	char err[300], *end;
	int opt, ret = EXIT_USAGE;

	while ((opt = getopt_long(argc, argv, "k:f:c:n:Vh", opts, NULL)) != -1) {
		switch (opt) {
		case 'k': s.keys = optarg; break;
		case 'f': from_s = optarg; break;
		case 'c':
			count = strtoul(optarg, &end, 10);
			if (*end || !*optarg || count > 100000000) {
				fprintf(stderr, "%s: --count: \"%s\" is not a number in 0..100000000\n",
					prog_name, optarg);
				return EXIT_USAGE;
			}
			break;
		case 'n':
			if (parse_node_size(optarg, &s.bo.node_size))
				return EXIT_USAGE;
			break;
		case 'V': verify = false; break;
		case 'Q': s.pinned = optarg; break;
		case 'h': scan_usage(stdout, prog_name); return 0;
		default: scan_usage(stderr, prog_name); return EXIT_USAGE;
		}
	}
	if ((!s.keys && !s.pinned) || !from_s) {
		fprintf(stderr, "%s: scan: --keys FILE or --pinned DIR, --from POS and --count N "
			"are required\n", prog_name);
		return EXIT_USAGE;
	}
	verify &= s.keys != NULL;
	if (bk_pos_parse(from_s, &from, err, sizeof(err))) {
		fprintf(stderr, "%s: --from: %s\n", prog_name, err);
		return EXIT_USAGE;
	}
	if (s.keys && read_keyfile(s.keys, &s.ks))
		goto out;
	res = calloc(count ? count : 1, sizeof(*res));
	ret = res ? tree_src_up(&s, 1) : EXIT_KERNEL;
	if (ret)
		goto out;
	ret = EXIT_KERNEL;
	if (bk_tree_scan(s.tree, from, count, res, &got)) {
		bk_tree_bad_reason(s.tree, err, sizeof(err));
		fprintf(stderr, "%s: a scan failed: %s\n", prog_name, err);
		goto out;
	}
	first = bk_keyset_lower_bound(&s.ks, from);
	if (verify && got != (s.ks.nr - first < count ? s.ks.nr - first : count))
		mismatches++;
	for (i = 0; i < got; i++) {
		if (verify && (first + i >= s.ks.nr ||
			       memcmp(res[i].key, &s.ks.keys[first + i].k, sizeof(struct bkey))))
			mismatches++;
		if (print_result(s.tree, &res[i]))
			goto out;
	}
	if (mismatches)
		fprintf(stderr, "%s: the scan differs from the reference\n", prog_name);
	ret = mismatches ? EXIT_KERNEL : 0;
out:
	ret = tree_src_down(&s, ret);
	free(res);
	return ret;
}
