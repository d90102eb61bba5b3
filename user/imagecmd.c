// SPDX-License-Identifier: GPL-2.0
/*
 * loader image FILE: a real bcachefs image's btrees loaded into BPF with
 * their own node formats, every on-disk key unpacked in the kernel, every
 * live key looked up and scanned through prog runs and checked against
 * the merged view, and unpack timing of generated BPF vs generic C.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "caps.h"
#include "image.h"
#include "imagecmd.h"
#include "util.h"

struct image_opts {
	const char	*file;
	int		btree;		/* -1: all */
	bool		list, json;
	unsigned	rounds, repeat;
	size_t		scans, scan_len;
	uint64_t	seed;
};

struct btree_report {
	unsigned	id;
	const char	*status;	/* NULL: loaded and run */
	uint32_t	nodes, bsets, formats, shapes, programs, depth, skipped;
	uint64_t	keys, live;
	double		bpf_ns, c_ns;	/* unpack ns per on-disk key, medians */
	size_t		lookups, scanned, mismatches;
	double		prep_us;
	long long	prog_kernel_bytes;	/* memcg growth over its program loads */
};

/* The image's node cache, over every btree loaded: what its programs cost. */
struct image_totals {
	uint32_t	nodes, shapes, programs;
	long long	kernel_bytes;
	const char	*mem_method;
	size_t		mismatches;
};

static struct image_totals cache_figures;	/* filled as the cache closes */

static void image_totals(const struct btree_report *r, unsigned n, struct image_totals *tot)
{
	unsigned i;

	*tot = cache_figures;
	for (i = 0; i < n; i++) {
		tot->nodes += r[i].nodes;
		tot->mismatches += r[i].mismatches;
	}
}

static volatile sig_atomic_t stop;
static double run_fixed_ns = -1;	/* an empty program's run, for the report */
/* the node cache's loop shapes, as the probe chose (bk_node_cache_shapes()) */
static const char *loops_str = "?";
static const char *loops_tag = "?";

static void on_signal(int sig)
{
	stop = sig;
}

void image_usage(FILE *out, const char *prog)
{
	fprintf(out,
"Usage: %s image [--list-ondisk] [--btree NAME] [-j] [--rounds N] FILE\n"
"\n"
"Reads a bcachefs image (plain, or zstd-compressed), metadata version 27\n"
"(bcachefs-tools v0.27), one device, cleanly unmounted. Finds each btree's\n"
"root in the superblock's clean section and walks it through btree_ptr_v2\n"
"pointers, checking every bset's CRC-32C, the pointer's seq (no stale node\n"
"is read), the node's btree, level and min..max, and each format (spec 9).\n"
"A node that fails is reported with its location and skipped with its\n"
"subtree; its btree is then not loaded.\n"
"\n"
"Each btree is loaded into BPF with one lookup and one unpack program per\n"
"distinct node format, and every on-disk key is unpacked in the kernel and\n"
"checked against the model. Then every live key (bsets merged, newest wins,\n"
"deleted keys and whiteouts dropped) is looked up, at its position and just\n"
"after the key before it, and the btree is scanned from the start and from\n"
"random positions; each answer is checked against the merged view.\n"
"\n"
"  --list-ondisk  print every node (btree, level, min..max, seq, written,\n"
"                 pointer dev:bucket:sector, format), its bsets (\"offset S\n"
"                 version V, journal seq J\") and every key in on-disk order\n"
"                 as bcachefs prints it without the value: \"u64s U type T\n"
"                 inode:offset:snapshot len N ver V\"; unpacked in the kernel\n"
"  --btree NAME   only this btree (extents, inodes, dirents, xattrs, alloc,\n"
"                 quotas, stripes, reflink, subvolumes, snapshots, lru,\n"
"                 freespace, need_discard, backpointers, bucket_gens)\n"
"  --rounds N     interleaved timing rounds of BPF vs generic C (default 5)\n"
"  --scans N      random scans of 64 keys per btree (default 200)\n"
"  -j, --json     the report as JSON\n"
"\n"
"Report, per btree: nodes, bsets, on-disk keys, live keys, distinct formats,\n"
"distinct shapes (key_u64s and widths), programs loaded (two per shape), the median ns per on-disk key of the unpack in the kernel\n"
"(generated BPF, one prog run per bset) and of generic C (the model's\n"
"streaming unpack, bcachefs's portable algorithm) over the same bsets in\n"
"the same run, lookups and scanned keys, and mismatches.\n"
"\n"
"Exit status: 0 every node read and every answer right; 1 a node skipped,\n"
"a mismatch, or a kernel failure; 2 bad usage or an unreadable image\n"
"(superblock: magic, version, checksum, truncation).\n",
		prog);
}

static int parse_opts(int argc, char **argv, const char *prog, struct image_opts *o)
{
	static const struct option opts[] = {
		{ "list-ondisk", no_argument, NULL, 'l' },
		{ "btree", required_argument, NULL, 'b' },
		{ "rounds", required_argument, NULL, 'r' },
		{ "scans", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	char *end;
	int c;

	*o = (struct image_opts){ .btree = -1, .rounds = 5, .repeat = 20, .scans = 200,
				  .scan_len = 64, .seed = 1 };
	optind = 1;
	while ((c = getopt_long(argc, argv, "jh", opts, NULL)) != -1) {
		switch (c) {
		case 'l':
			o->list = true;
			break;
		case 'b':
			o->btree = bch_btree_id(optarg);
			if (o->btree < 0) {
				fprintf(stderr, "%s image: --btree %s: no such btree\n", prog, optarg);
				return -EINVAL;
			}
			break;
		case 'r':
		case 's': {
			unsigned long v = strtoul(optarg, &end, 10);

			if (*end || !*optarg || v < (c == 'r') || v > 1000000) {
				fprintf(stderr, "%s image: --%s %s: not a number in %d..1000000\n",
					prog, c == 'r' ? "rounds" : "scans", optarg, c == 'r');
				return -EINVAL;
			}
			if (c == 'r')
				o->rounds = v;
			else
				o->scans = v;
			break;
		}
		case 'j':
			o->json = true;
			break;
		case 'h':
			image_usage(stdout, prog);
			return 1;
		default:
			image_usage(stderr, prog);
			return -EINVAL;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "%s image: expected one image FILE\n", prog);
		image_usage(stderr, prog);
		return -EINVAL;
	}
	o->file = argv[optind];
	return 0;
}

/* ---- Checks: every on-disk key, lookups, scans ---- */

static int unpack_all(struct bk_img_tree *it, char *err, size_t errlen)
{
	static struct bkey keys[BK_OUT_CAP_KEYS];
	uint32_t j;
	unsigned b;
	int ret;

	for (j = 0; j < it->ib->nr_nodes; j++)
		for (b = 0; b < it->ib->nodes[j].nr_bsets; b++) {
			ret = bk_img_unpack_bset(it, j, b, keys, err, errlen);
			if (ret)
				return ret;
		}
	return 0;
}

/* Every live key at its position and right after the one before, and past the end. */
static int check_lookups(struct bk_img_tree *it, struct btree_report *r)
{
	const struct bk_keyset *ks = &it->live;
	size_t n = 2 * ks->nr + 2, i, q = 0;
	struct bpos *pos = calloc(n, sizeof(*pos));
	struct bk_result *res = calloc(n, sizeof(*res));
	int ret = -ENOMEM;

	if (!pos || !res)
		goto out;
	pos[q++] = (struct bpos){ 0, 0, 0 };
	for (i = 0; i < ks->nr; i++) {
		pos[q++] = bkey_pos(&ks->keys[i].k);
		pos[q++] = bpos_successor(bkey_pos(&ks->keys[i].k));
	}
	ret = bk_tree_lookup(&it->t, pos, q, res);
	for (i = 0; !ret && i < q; i++)
		r->mismatches += !bk_keyset_answer_ok(ks, pos[i], res[i].found, res[i].key);
	r->lookups += ret ? 0 : q;
out:
	free(pos);
	free(res);
	return ret;
}

static bool scan_ok(const struct bk_keyset *ks, struct bpos from, const struct bk_result *out,
		    size_t got, size_t want)
{
	size_t first = bk_keyset_lower_bound(ks, from), i;

	if (got != (ks->nr - first < want ? ks->nr - first : want))
		return false;
	for (i = 0; i < got; i++)
		if (memcmp(out[i].key, &ks->keys[first + i].k, sizeof(struct bkey)))
			return false;
	return true;
}

static int check_scans(struct bk_img_tree *it, const struct image_opts *o, struct btree_report *r)
{
	const struct bk_keyset *ks = &it->live;
	size_t cap = ks->nr + 1, got, i;
	struct bk_result *out = calloc(cap, sizeof(*out));
	uint64_t seed = o->seed;
	struct bpos from = { 0, 0, 0 };
	int ret = -ENOMEM;

	if (!out)
		return ret;
	/* the whole btree, and one more than it has */
	ret = bk_tree_scan(&it->t, from, cap, out, &got);
	if (!ret) {
		r->mismatches += !scan_ok(ks, from, out, got, cap);
		r->scanned += got;
	}
	for (i = 0; !ret && i < o->scans && !stop && ks->nr; i++) {
		size_t k = bk_rnd(&seed) % ks->nr;

		from = bkey_pos(&ks->keys[k].k);
		if (bk_rnd(&seed) & 1)
			from = bpos_successor(from);
		ret = bk_tree_scan(&it->t, from, o->scan_len, out, &got);
		if (!ret) {
			r->mismatches += !scan_ok(ks, from, out, got, o->scan_len);
			r->scanned += got;
		}
	}
	free(out);
	return ret;
}

/* ---- Timing: the on-disk bsets unpacked by BPF and by generic C ---- */

/*
 * The fixed cost of one prog run (repeat 1) as the kernel times it: the
 * median of @runs test runs of an empty program, in ns.
 */
static int run_overhead_ns(unsigned runs, double *ns)
{
	const struct bpf_insn ret0[] = { BPF_MOV64_IMM(BPF_REG_0, 0), BPF_EXIT_INSN() };
	unsigned char pkt[64] = {};
	double *d = calloc(runs, sizeof(*d));
	unsigned i;
	int fd, ret = 0;

	if (!d)
		return -ENOMEM;
	fd = bpf_prog_load(BK_PROG_TYPE, "bk_empty", "GPL", ret0, 2, NULL);
	if (fd < 0) {
		free(d);
		return -errno;
	}
	for (i = 0; i < runs && !ret; i++) {
		LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = pkt, .data_size_in = sizeof(pkt),
			    .repeat = 1);

		ret = bpf_prog_test_run_opts(fd, &opts) ? -errno : 0;
		d[i] = opts.duration;
	}
	if (!ret)
		*ns = bk_median(d, runs);
	close(fd);
	free(d);
	return ret;
}

static struct bkey c_out[BK_OUT_CAP_KEYS];

static int time_unpack(struct bk_img_tree *it, const struct image_opts *o,
		       struct btree_report *r, char *err, size_t errlen)
{
	const struct bk_img_btree *ib = it->ib;
	double *bpf = calloc(o->rounds, sizeof(double)), *c = calloc(o->rounds, sizeof(double));
	unsigned round, rep, b;
	uint32_t j;
	int ret = 0;

	if (!bpf || !c) {
		ret = -ENOMEM;
		goto out;
	}
	for (round = 0; round < o->rounds && !ret && !stop; round++) {
		double t0, ns = 0;

		/*
		 * One run per bset and repetition, each timed by the kernel
		 * (its test run's duration), as the C side is timed per bset
		 */
		for (rep = 0; rep < o->repeat && !ret; rep++)
			for (j = 0; j < ib->nr_nodes && !ret; j++)
				for (b = 0; b < ib->nodes[j].nr_bsets && !ret; b++) {
					uint32_t d = 0;

					ret = bk_img_run_bset(it, j, b, &d, err, errlen);
					ns += d;
				}
		bpf[round] = ns / o->repeat / ib->nr_keys;
		t0 = bk_now_ns();
		for (rep = 0; rep < o->repeat; rep++)
			for (j = 0; j < ib->nr_nodes; j++)
				for (b = 0; b < ib->nodes[j].nr_bsets; b++)
					bkey_unpack_stream(&ib->nodes[j].f,
							   bch_bset_words(&ib->nodes[j],
									  &ib->nodes[j].bsets[b]),
							   ib->nodes[j].bsets[b].u64s, c_out);
		c[round] = (bk_now_ns() - t0) / o->repeat / ib->nr_keys;
	}
	if (!ret && round && ib->nr_keys) {
		r->bpf_ns = bk_median(bpf, round);
		r->c_ns = bk_median(c, round);
	}
out:
	free(bpf);
	free(c);
	return ret;
}

/*
 * Btree @id loaded into the image's node cache @nc as @it, which stays
 * loaded (so that later btrees share its shapes' programs) until the
 * caller unloads it; then checked and timed.
 */
static int run_btree(const struct bk_image *im, unsigned id, const struct image_opts *o,
		     struct bk_node_cache *nc, struct bk_img_tree *itp, struct btree_report *r)
{
	const struct bk_img_btree *ib = &im->bt[id];
	char err[512];
	int ret;

	memset(r, 0, sizeof(*r));
	r->id = id;
	r->nodes = ib->nr_nodes;
	r->bsets = ib->nr_bsets;
	r->keys = ib->nr_keys;
	r->depth = ib->present ? ib->depth : 0;
	r->skipped = ib->nr_skipped;
	ret = bk_img_tree_load(itp, im, id, nc, stderr, err, sizeof(err));
	if (ret == -ENOENT) {
		r->status = "empty";
		return 0;
	}
	if (ret == -EUCLEAN) {
		r->status = "nodes skipped: not loaded";
		return 0;
	}
	if (ret) {
		fprintf(stderr, "%s\n", err);
		return ret;
	}
	r->live = itp->live.nr;
	r->formats = itp->t.nr_formats;
	r->shapes = itp->t.nr_shapes;
	r->programs = 2 * itp->t.new_shapes;
	r->prog_kernel_bytes = itp->t.prog_kernel_bytes;
	r->prep_us = itp->t.prepare_us_sum;
	if (o->list) {
		ret = bk_img_list_ondisk(itp, &im->sb, stdout, err, sizeof(err));
		goto out;
	}
	ret = unpack_all(itp, err, sizeof(err));
	if (!ret)
		ret = check_lookups(itp, r);
	if (!ret)
		ret = check_scans(itp, o, r);
	if (!ret)
		ret = time_unpack(itp, o, r, err, sizeof(err));
out:
	if (ret > 0 || ret == -EIO) {
		char why[512];

		if (ret == -EIO && *err)
			snprintf(why, sizeof(why), "%s", err);
		else
			bk_tree_bad_reason(&itp->t, why, sizeof(why));
		fprintf(stderr, "%s: %s\n", bch_btree_name[id], why);
		ret = -EIO;
	} else if (ret) {
		fprintf(stderr, "%s: %s\n", bch_btree_name[id], strerror(-ret));
	}
	return ret;
}

static void print_report(const struct bk_image *im, const struct btree_report *r, unsigned n,
			 const struct image_opts *o, double secs)
{
	struct image_totals tot;
	unsigned i;

	printf("%s: \"%s\", metadata version %u, block %u B, btree node %u B, %u btrees "
	       "with a root\n\n", o->file, im->sb.label, im->sb.version, im->sb.block_bytes,
	       im->sb.node_bytes, im->sb.nr_roots);
	printf("%-13s %5s %5s %6s %6s %5s %6s %5s %9s %9s %7s %8s %8s %6s\n", "btree", "nodes",
	       "bsets", "keys", "live", "fmts", "shapes", "progs", "bpf ns/k", "C ns/k", "bpf/C",
	       "lookups", "scanned", "wrong");
	for (i = 0; i < n; i++) {
		const struct btree_report *b = &r[i];

		if (b->status) {
			printf("%-13s %5u %5u %6llu %6s  %s\n", bch_btree_name[b->id], b->nodes,
			       b->bsets, (unsigned long long)b->keys, "-", b->status);
			continue;
		}
		printf("%-13s %5u %5u %6llu %6llu %5u %6u %5u ", bch_btree_name[b->id], b->nodes,
		       b->bsets, (unsigned long long)b->keys, (unsigned long long)b->live,
		       b->formats, b->shapes, b->programs);
		if (b->keys)
			printf("%9.2f %9.2f %7.2f", b->bpf_ns, b->c_ns, b->bpf_ns / b->c_ns);
		else
			printf("%9s %9s %7s", "-", "-", "-");
		printf(" %8zu %8zu %6zu\n", b->lookups, b->scanned, b->mismatches);
	}
	printf("\nbpf ns/k: one prog run per on-disk bset (the kernel's time, median of %u "
	       "rounds); C ns/k: the model's\nstreaming unpack over the same bsets, interleaved. "
	       "A prog run costs %.0f ns before its first key\n(an empty program's run), which "
	       "dominates bsets of a few keys.\n%u node errors; %.1f s.\n", o->rounds,
	       run_fixed_ns, im->nr_node_errors, secs);
	image_totals(r, n, &tot);
	printf("programs: %u for %u nodes (%u shapes), %.1f KiB of kernel memory, %.0f B per node "
	       "(%s,\ngrown over the program loads)\n", tot.programs, tot.nodes, tot.shapes,
	       tot.kernel_bytes / 1024.0,
	       tot.nodes ? (double)tot.kernel_bytes / tot.nodes : 0,
	       tot.mem_method ? tot.mem_method : "?");
	printf("loops: %s.\n", loops_str);
}

static void json_report(const struct bk_image *im, const struct btree_report *r, unsigned n,
			const struct image_opts *o)
{
	struct image_totals tot;
	unsigned i;

	image_totals(r, n, &tot);
	printf("{\"file\":\"%s\",\"label\":\"%s\",\"version\":%u,\"block_bytes\":%u,"
	       "\"node_bytes\":%u,\"node_errors\":%u,\"run_fixed_ns\":%.1f,\"nodes\":%u,"
	       "\"shapes\":%u,\"programs\":%u,\"program_kernel_bytes\":%lld,"
	       "\"program_kernel_bytes_per_node\":%.1f,\"memory_counter\":\"%s\","
	       "\"loops\":\"%s\",\"mismatches\":%zu,\"btrees\":[",
	       o->file, im->sb.label, im->sb.version, im->sb.block_bytes, im->sb.node_bytes,
	       im->nr_node_errors, run_fixed_ns, tot.nodes, tot.shapes, tot.programs,
	       tot.kernel_bytes, tot.nodes ? (double)tot.kernel_bytes / tot.nodes : 0,
	       tot.mem_method ? tot.mem_method : "?",
	       loops_tag, tot.mismatches);
	for (i = 0; i < n; i++) {
		const struct btree_report *b = &r[i];

		printf("%s{\"name\":\"%s\",\"nodes\":%u,\"bsets\":%u,\"keys\":%llu,"
		       "\"skipped\":%u,\"status\":\"%s\"", i ? "," : "", bch_btree_name[b->id],
		       b->nodes, b->bsets, (unsigned long long)b->keys, b->skipped,
		       b->status ? b->status : "ok");
		if (!b->status)
			printf(",\"depth\":%u,\"live\":%llu,\"formats\":%u,\"shapes\":%u,\"programs\":%u,"
			       "\"program_kernel_bytes\":%lld,\"prepare_us\":%.1f,\"bpf_ns_per_key\":%.3f,\"c_ns_per_key\":%.3f,"
			       "\"lookups\":%zu,\"scanned\":%zu,\"mismatches\":%zu", b->depth,
			       (unsigned long long)b->live, b->formats, b->shapes, b->programs,
			       b->prog_kernel_bytes, b->prep_us,
			       b->bpf_ns, b->c_ns, b->lookups, b->scanned, b->mismatches);
		printf("}");
	}
	printf("]}\n");
}

int image_main(int argc, char **argv, const char *prog)
{
	struct btree_report rep[BCH_BTREE_ID_NR];
	static struct bk_img_tree its[BCH_BTREE_ID_NR];
	struct bk_node_cache nc;
	uint32_t slots = 0;
	struct image_opts o;
	struct bk_image im;
	struct bk_features ft;
	uint8_t *buf;
	size_t size;
	char err[512];
	unsigned id, n = 0;
	size_t bad = 0;
	double t0 = bk_now_ns();
	int ret = parse_opts(argc, argv, prog, &o);

	if (ret)
		return ret > 0 ? 0 : 2;
	if (!bk_caps_ok(err, sizeof(err))) {
		fprintf(stderr, "%s: %s\n", prog, err);
		return 1;
	}
	ret = bk_probe_features(&ft);
	if (ret || (!ft.may_goto && !ft.bpf_loop)) {
		fprintf(stderr, "%s image: %s\n", prog, ret ? strerror(-ret) : BK_NODE_CACHE_NO_SHAPE);
		return 1;
	}
	ret = bk_image_read_file(o.file, &buf, &size, err, sizeof(err));
	if (!ret)
		ret = bk_image_open(&im, buf, size, stderr, err, sizeof(err));
	if (ret) {
		fprintf(stderr, "%s image: %s\n", prog, err);
		return ret == -ENOMEM ? 1 : 2;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	if (!o.list && run_overhead_ns(1000, &run_fixed_ns))
		run_fixed_ns = -1;
	/* one node cache for every btree, as bcachefs has: shapes are shared */
	for (id = 0; id < BCH_BTREE_ID_NR; id++)
		if (o.btree < 0 || (unsigned)o.btree == id)
			slots += bk_img_tree_slots(&im, id);
	ret = bk_node_cache_open(&nc, im.sb.node_bytes, slots ? slots : 1);
	if (ret) {
		fprintf(stderr, "%s image: cannot make the node cache's maps: %s\n", prog,
			ret == -EOPNOTSUPP ? BK_NODE_CACHE_NO_SHAPE : strerror(-ret));
		bk_image_close(&im);
		return 1;
	}
	loops_str = bk_node_cache_shapes(&nc);
	loops_tag = bk_node_cache_loops_tag(&nc);
	/* once, before the program loads are measured: the overhead probe's
	 * program has been freed (the btrees stay loaded until the end) */
	bk_kernel_mem_settle(&nc.mem_method);
	for (id = 0; id < BCH_BTREE_ID_NR && !stop; id++) {
		if (o.btree >= 0 && (unsigned)o.btree != id)
			continue;
		ret = run_btree(&im, id, &o, &nc, &its[id], &rep[n]);
		if (ret)
			break;
		bad += rep[n].mismatches;
		n++;
	}
	cache_figures = (struct image_totals){ .shapes = nc.cache.nr,
					       .programs = nc.programs_loaded,
					       .kernel_bytes = nc.prog_kernel_bytes,
					       .mem_method = nc.mem_method };
	for (id = 0; id < BCH_BTREE_ID_NR; id++)
		bk_img_tree_unload(&its[id]);
	if (nc.release_err && !ret) {
		fprintf(stderr, "%s image: releasing the programs: %s\n", prog,
			strerror(-nc.release_err));
		ret = nc.release_err;
	}
	bk_node_cache_close(&nc);
	if (stop) {
		fprintf(stderr, "%s: interrupted; everything was released\n", prog);
		bk_image_close(&im);
		return 130;
	}
	if (!ret && !o.list) {
		if (o.json)
			json_report(&im, rep, n, &o);
		else
			print_report(&im, rep, n, &o, (bk_now_ns() - t0) / 1e9);
	}
	if (im.nr_node_errors)
		fprintf(stderr, "%s image: %u nodes could not be read (see above)\n", prog,
			im.nr_node_errors);
	ret = ret || bad || im.nr_node_errors;
	bk_image_close(&im);
	return ret ? 1 : 0;
}
