// SPDX-License-Identifier: GPL-2.0
/*
 * loader: bcachefs key unpacking through generated BPF programs.
 *
 *   loader unpack --format FMT [--in FILE] [--out FILE] [--engine bpf|ref]
 *   loader gen --format FMT [--shape S] [-j]
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <limits.h>
#include <string.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include <linux/magic.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bkey.h"
#include "gen.h"
#include "caps.h"
#include "demo.h"
#include "keytext.h"
#include "nodecache.h"
#include "pin.h"
#include "imagecmd.h"
#include "kmodcmd.h"
#include "run.h"
#include "util.h"

#define EXIT_USAGE	2	/* bad input: nothing was loaded */
#define EXIT_KERNEL	1	/* the kernel refused or a run failed */

static const char *prog_name = "loader";

static void usage(FILE *out)
{
	fprintf(out,
"Usage: %s [COMMAND] [OPTIONS]\n"
"\n"
"Unpack bcachefs btree keys with BPF programs generated per key format.\n"
"\n"
"Commands:\n"
"  run      (the default) the main job: a ~1M-key filesystem-like workload in\n"
"           three btrees, lookups and scans in the kernel, checked, reported\n"
"  demo     unpack built-in filesystem-like nodes in the kernel, check every\n"
"           key against the C reference, report\n"
"  unpack   unpack a bset-style stream of keys in the kernel\n"
"  lookup   build a btree from a key file, look positions up in the kernel\n"
"  scan     the keys from a position on, from the same btree, in the kernel\n"
"  image    a real bcachefs image: its btrees loaded into BPF with their own\n"
"           formats, every key unpacked in the kernel, lookups and scans\n"
"  gen      print the generated program for a format (no root needed)\n"
"  dump     a program's JIT'd machine code (bpftool on Debian cannot)\n"
"  kmod     call the programs from kernel C: kmod/'s module, several CPUs at\n"
"           once, every key checked against C, timed against it\n"
"  help     this text; 'COMMAND --help' describes a command\n"
"\n"
"A format is written 'key_u64s=K bits=b0,b1,b2,b3,b4,b5 offsets=o0,o1,o2,o3,o4,o5'\n"
"with fields in the order inode, offset, snapshot, size, version_hi,\n"
"version_lo. Numbers are decimal or 0x-hex.\n"
"\n"
"Exit status: 0 success, 1 kernel or I/O failure, 2 bad input (nothing loaded).\n",
		prog_name);
}

static void usage_unpack(FILE *out)
{
	fprintf(out,
"Usage: %s unpack --format FMT [--in FILE] [--out FILE] [--engine bpf|ref]\n"
"                  [--shape auto|may_goto|bpf_loop] [-j]\n"
"\n"
"Reads a bset-style stream of keys: each key starts with its u64s byte (key\n"
"plus value, in 8-byte words), then the format byte (0 packed in FMT, 1\n"
"stored unpacked; bit 7 is needs_whiteout) and the type byte; its value\n"
"words follow its key words. Writes each key unpacked (a 40-byte struct\n"
"bkey) followed by its value words.\n"
"\n"
"  --format FMT   the node's key format (required)\n"
"  --in FILE      input stream (default: standard input)\n"
"  --out FILE     output (default: standard output)\n"
"  --engine E     bpf: the generated program in the kernel (default, needs\n"
"                 CAP_BPF and CAP_PERFMON); ref: the C reference unpack\n"
"  --shape S      program shape (default auto: the best the kernel has)\n"
"  -j, --json     print a JSON summary on standard error\n"
"\n"
"A bad format or a malformed stream exits with status 2 and one message\n"
"naming the problem; nothing is loaded.\n", prog_name);
}

static void usage_gen(FILE *out)
{
	fprintf(out,
"Usage: %s gen --format FMT [--shape auto|may_goto|bpf_loop] [--walk u64s|table]\n"
"               [--chunk N] [--strict-align] [--load [--repeat N]] [-o FILE] [-j]\n"
"\n"
"Prints the program generated for FMT as an annotated listing: the source\n"
"lines that become BTF line_info, each instruction, and comments. Without\n"
"--load it needs no privileges and loads nothing. With -o it writes the\n"
"program as a BPF ELF object instead (README \"Offline objects\").\n"
"\n"
"  --format FMT      the key format (required)\n"
"  --shape S         program shape; auto (default) is may_goto without\n"
"                    --load, the kernel's best with it\n"
"  --walk W          how the program finds the next key: u64s (default; a\n"
"                    bset stream, as 'unpack' runs) or table (the key table\n"
"                    a loaded node carries), in either shape\n"
"  --chunk N         keys per loop pass (may_goto) or per bpf_loop callback,\n"
"                    1..8 (default 1)\n"
"  --strict-align    split unaligned 8-byte stores (strict-alignment arches)\n"
"  --load            also load it (root): report the prog id, xlated\n"
"                    instructions, JIT bytes, instructions the verifier\n"
"                    processed and prepare time (generate + verify + JIT);\n"
"                    everything is released before exit\n"
"  --repeat N        with --load: prepare N times, report the median\n"
"  -o, --output FILE write a relocatable BPF object, as clang would: the\n"
"                    program in section \"socket\", its maps (bk_ctl, bk_in,\n"
"                    bk_out) as BTF-defined maps, .BTF and .BTF.ext with the\n"
"                    listing's lines (a bpf_loop shape's callbacks are static\n"
"                    functions in .text); bpftool prog load, libbpf, bpftool\n"
"                    gen skeleton and llvm-objdump take it; exit status 1 if\n"
"                    it cannot be written (the message says why)\n"
"  -j, --json        JSON: names, shape, instruction count, lines, listing\n"
"                    (and the load figures with --load; with -o, the file)\n", prog_name);
}

struct load_report {
	struct bk_loaded	l;
	double			prepare_us;	/* median */
	double			prepare_p90_us;
	unsigned		repeat;
};

/*
 * Checks capabilities, probes the kernel, creates the shared maps; sets
 * o's shape (if auto) and map fds.  Prints one line on failure.
 */
static int open_kernel(struct bk_runtime *rt, struct bk_gen_opts *o)
{
	struct bk_features ft;
	char why[160];
	int ret;

	if (!bk_caps_ok(why, sizeof(why))) {
		fprintf(stderr, "%s: %s\n", prog_name, why);
		return -EPERM;
	}
	ret = bk_probe_features(&ft);
	if (ret) {
		fprintf(stderr, "%s: kernel feature probe failed: %s\n", prog_name,
			ret == -EOPNOTSUPP ? ft.why : strerror(-ret));
		return ret;
	}
	if (o->shape == BK_SHAPE_AUTO)
		o->shape = ft.best;
	ret = bk_runtime_open(rt);
	if (ret) {
		fprintf(stderr, "%s: cannot create maps: %s\n", prog_name, strerror(-ret));
		return ret;
	}
	o->ctl_fd = rt->ctl_fd;
	o->in_fd = rt->in_fd;
	o->out_fd = rt->out_fd;
	return 0;
}

/* Generates and loads; a verifier rejection prints its log and our listing. */
static int gen_load_or_report(const struct bkey_format *f, const struct bk_gen_opts *o,
			      const struct bk_runtime *rt, struct bk_prog *p,
			      struct bk_loaded *l)
{
	static char log[1 << 20];
	const struct bk_map_name names[] = {
		{ rt->ctl_fd, "ctl" }, { rt->in_fd, "in" }, { rt->out_fd, "out" },
	};
	int ret = bk_gen_unpack(f, o, p, NULL);

	if (ret) {
		fprintf(stderr, "%s: generating the program failed: %s\n", prog_name, strerror(-ret));
		return ret;
	}
	ret = bk_prog_load(p, l, log, sizeof(log));
	if (ret && !bk_report_reject(stderr, prog_name, p, ret, log, names, 3))
		fprintf(stderr, "%s: cannot load %s: %s\n", prog_name, p->name, strerror(-ret));
	return ret;
}

/*
 * Generates and loads @f @repeat times with real map fds; keeps the
 * figures of the last load, unloads everything.
 */
static int gen_and_load(const struct bkey_format *f, struct bk_gen_opts *o,
			struct bk_prog *p, unsigned repeat, struct load_report *r)
{
	struct bk_runtime rt = { .ctl_fd = -1, .in_fd = -1, .out_fd = -1 };
	double *t = calloc(repeat, sizeof(*t));
	unsigned i;
	int ret;

	if (!t) {
		ret = -ENOMEM;
		goto cleanup;
	}
	ret = open_kernel(&rt, o);
	if (ret)
		goto cleanup;
	for (i = 0; i < repeat; i++) {
		double t0 = bk_now_ns();

		bk_prog_unload(&r->l);
		ret = gen_load_or_report(f, o, &rt, p, &r->l);
		t[i] = (bk_now_ns() - t0) / 1e3;
		if (ret)
			goto cleanup;
	}
	r->prepare_us = bk_median(t, repeat);
	r->prepare_p90_us = t[repeat * 9 / 10];
	r->repeat = repeat;
cleanup:
	bk_prog_unload(&r->l);
	bk_runtime_close(&rt);
	free(t);
	return ret;
}

/* ---- shared helpers ---- */

static int parse_format_arg(const char *s, struct bkey_format *f)
{
	struct bkey_format_err ferr;
	char msg[256];

	if (!s) {
		fprintf(stderr, "%s: --format is required\n", prog_name);
		return -EINVAL;
	}
	if (bkey_format_parse(s, f, msg, sizeof(msg))) {
		fprintf(stderr, "%s: bad --format: %s\n", prog_name, msg);
		return -EINVAL;
	}
	if (bkey_format_validate(f, &ferr)) {
		bkey_format_err_str(&ferr, msg, sizeof(msg));
		fprintf(stderr, "%s: %s\n", prog_name, msg);
		return -EINVAL;
	}
	return 0;
}

static int parse_walk(const char *s, enum bk_walk *walk)
{
	if (!strcmp(s, "u64s"))
		*walk = BK_WALK_U64S;
	else if (!strcmp(s, "table"))
		*walk = BK_WALK_TABLE;
	else {
		fprintf(stderr, "%s: --walk: unknown walk \"%s\" (u64s, table)\n", prog_name, s);
		return -EINVAL;
	}
	return 0;
}

static int parse_shape(const char *s, enum bk_shape *shape)
{
	if (!strcmp(s, "auto"))
		*shape = BK_SHAPE_AUTO;
	else if (!strcmp(s, "may_goto"))
		*shape = BK_SHAPE_MAY_GOTO;
	else if (!strcmp(s, "bpf_loop"))
		*shape = BK_SHAPE_BPF_LOOP;
	else {
		fprintf(stderr, "%s: --shape: unknown shape \"%s\" (auto, may_goto, bpf_loop)\n",
			prog_name, s);
		return -EINVAL;
	}
	return 0;
}

/* Reads a whole file (or stdin for NULL/"-"). */
static int read_all(const char *path, uint8_t **buf, size_t *len)
{
	FILE *f = !path || !strcmp(path, "-") ? stdin : fopen(path, "rb");
	size_t cap = 1 << 16, n = 0;
	uint8_t *p;

	if (!f) {
		fprintf(stderr, "%s: cannot open %s: %s\n", prog_name, path, strerror(errno));
		return -errno;
	}
	p = malloc(cap);
	while (p) {
		size_t got = fread(p + n, 1, cap - n, f);

		n += got;
		if (n < cap)
			break;
		cap *= 2;
		p = realloc(p, cap);
	}
	if (f != stdin)
		fclose(f);
	if (!p)
		return -ENOMEM;
	*buf = p;
	*len = n;
	return 0;
}

/* ---- unpack ---- */

struct stream {
	const uint64_t	*words;
	size_t		nr_words;
	size_t		nr_keys;
};

/* Checks every key up front: a malformed stream loads nothing. */
static int check_stream(const struct bkey_format *f, struct stream *st)
{
	size_t bad;
	enum bkey_stream_err err = bkey_stream_walk(f, st->words, st->nr_words, &st->nr_keys, &bad);

	if (err) {
		const uint8_t *h = (const uint8_t *)&st->words[bad];

		fprintf(stderr, "%s: malformed stream: key %zu at byte %zu (u64s=%u format=%u): %s\n",
			prog_name, st->nr_keys, bad * 8, h[0], h[1] & 0x7f, bkey_stream_err_str(err));
		return -EINVAL;
	}
	return 0;
}

static int write_key(FILE *out, const struct bkey *k, const uint64_t *key_words,
		     unsigned key_len)
{
	unsigned val = ((const uint8_t *)key_words)[0] - key_len;

	if (fwrite(k, sizeof(*k), 1, out) != 1)
		return -EIO;
	if (val && fwrite(key_words + key_len, 8, val, out) != val)
		return -EIO;
	return 0;
}

static unsigned key_len(const struct bkey_format *f, const uint64_t *k)
{
	return bkey_format_byte(k) == KEY_FORMAT_LOCAL_BTREE ? f->key_u64s : BKEY_U64s;
}

static int unpack_ref(const struct bkey_format *f, const struct stream *st, FILE *out)
{
	size_t pos = 0;

	while (pos < st->nr_words) {
		const uint64_t *k = &st->words[pos];
		struct bkey u;

		bkey_unpack_key(f, k, &u);
		if (write_key(out, &u, k, key_len(f, k)))
			return -EIO;
		pos += ((const uint8_t *)k)[0];
	}
	return 0;
}

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	interrupted = sig;
}

/* Splits the stream into runs that fit the in map, at key boundaries. */
static int unpack_bpf(const struct bkey_format *f, enum bk_shape shape,
		      const struct stream *st, FILE *out, bool json)
{
	struct bk_gen_opts o = {
		.shape = shape, .strict_align = bk_strict_align_default(), .chunk = 1, .annotate = true,
	};
	struct bk_runtime rt = { .ctl_fd = -1, .in_fd = -1, .out_fd = -1 };
	struct bk_loaded l = { .fd = -1 };
	struct bk_prog *p = NULL;
	size_t pos = 0, runs = 0;
	int ret;

	ret = open_kernel(&rt, &o);
	if (ret)
		goto cleanup;
	p = calloc(1, sizeof(*p));
	if (!p) {
		ret = -ENOMEM;
		goto cleanup;
	}
	ret = gen_load_or_report(f, &o, &rt, p, &l);
	if (ret)
		goto cleanup;

	while (pos < st->nr_words && !interrupted) {
		size_t end = pos, k;
		uint32_t nr_keys, stop;
		int status;

		while (end < st->nr_words) {
			unsigned u64s = ((const uint8_t *)&st->words[end])[0];

			if (end + u64s - pos > BK_IN_CAP_WORDS)
				break;
			end += u64s;
		}
		status = bk_unpack_words(&l, &rt, st->words + pos, end - pos, &nr_keys, &stop);
		if (status) {
			fprintf(stderr, "%s: run %zu failed: %s at word %zu\n", prog_name, runs,
				status < 0 ? strerror(-status) : "program reported an error",
				pos + stop);
			ret = status < 0 ? status : -EIO;
			goto cleanup;
		}
		for (k = 0; k < nr_keys; k++) {
			const uint64_t *kw = &st->words[pos];

			if (write_key(out, &rt.out[k], kw, key_len(f, kw))) {
				ret = -EIO;
				goto cleanup;
			}
			pos += ((const uint8_t *)kw)[0];
		}
		runs++;
	}
	ret = interrupted ? -EINTR : 0;
	if (json)
		fprintf(stderr, "{\"prog\":\"%s\",\"func\":\"%s\",\"shape\":\"%s\",\"keys\":%zu,"
			"\"runs\":%zu,\"xlated_insns\":%u,\"jited_bytes\":%u}\n",
			p->name, p->func_name, bk_shape_name(o.shape), st->nr_keys, runs,
			l.xlated_insns, l.jited_bytes);
cleanup:
	bk_prog_unload(&l);
	bk_runtime_close(&rt);
	free(p);
	return ret;
}

static int cmd_unpack(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "format", required_argument, NULL, 'f' },
		{ "in", required_argument, NULL, 'i' },
		{ "out", required_argument, NULL, 'o' },
		{ "engine", required_argument, NULL, 'e' },
		{ "shape", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	const char *fmt = NULL, *in = NULL, *outp = NULL, *engine = "bpf";
	enum bk_shape shape = BK_SHAPE_AUTO;
	struct bkey_format f;
	struct stream st;
	bool json = false;
	uint8_t *buf = NULL;
	size_t len = 0;
	FILE *out = stdout;
	int opt, ret;

	while ((opt = getopt_long(argc, argv, "f:i:o:e:s:jh", opts, NULL)) != -1) {
		switch (opt) {
		case 'f': fmt = optarg; break;
		case 'i': in = optarg; break;
		case 'o': outp = optarg; break;
		case 'e': engine = optarg; break;
		case 's':
			if (parse_shape(optarg, &shape))
				return EXIT_USAGE;
			break;
		case 'j': json = true; break;
		case 'h': usage_unpack(stdout); return 0;
		default: usage_unpack(stderr); return EXIT_USAGE;
		}
	}
	if (strcmp(engine, "bpf") && strcmp(engine, "ref")) {
		fprintf(stderr, "%s: --engine: unknown engine \"%s\" (bpf, ref)\n", prog_name, engine);
		return EXIT_USAGE;
	}
	if (parse_format_arg(fmt, &f))
		return EXIT_USAGE;
	if (read_all(in, &buf, &len))
		return EXIT_KERNEL;
	if (len % 8) {
		fprintf(stderr, "%s: malformed stream: %zu bytes is not a whole number of 8-byte words\n",
			prog_name, len);
		free(buf);
		return EXIT_USAGE;
	}
	st.words = (const uint64_t *)buf;
	st.nr_words = len / 8;
	if (check_stream(&f, &st)) {
		free(buf);
		return EXIT_USAGE;
	}
	if (outp && strcmp(outp, "-")) {
		out = fopen(outp, "wb");
		if (!out) {
			fprintf(stderr, "%s: cannot create %s: %s\n", prog_name, outp, strerror(errno));
			free(buf);
			return EXIT_KERNEL;
		}
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	if (!strcmp(engine, "ref"))
		ret = unpack_ref(&f, &st, out);
	else
		ret = unpack_bpf(&f, shape, &st, out, json);
	if (out != stdout && fclose(out))
		ret = ret ? ret : -EIO;
	else if (out == stdout && fflush(out))
		ret = ret ? ret : -EIO;
	free(buf);
	return ret ? EXIT_KERNEL : 0;
}

static void json_str(FILE *out, const char *s);

/* ---- demo ---- */

static void usage_demo(FILE *out)
{
	fprintf(out,
"Usage: %s demo [-j]\n"
"\n"
"Builds five nodes of 1024 keys (extents of one inode, extents across 200\n"
"inodes, dirents with 64-bit hashes, inodes, and keys in the widest\n"
"format), computes each node's format from its keys and min/max positions,\n"
"loads the format's generated program, unpacks the node in one program run,\n"
"checks every key against the C reference, and times both. Needs CAP_BPF\n"
"and CAP_PERFMON. Everything loaded is released before exit.\n"
"\n"
"  -j, --json   print the report as JSON\n"
"\n"
"Exit status: 0 if every key matched, 1 otherwise.\n", prog_name);
}

static int cmd_demo(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	struct demo_report rep;
	unsigned i, bad = 0;
	char why[160], *log;
	bool json = false;
	int opt, ret;

	while ((opt = getopt_long(argc, argv, "jh", opts, NULL)) != -1) {
		switch (opt) {
		case 'j': json = true; break;
		case 'h': usage_demo(stdout); return 0;
		default: usage_demo(stderr); return EXIT_USAGE;
		}
	}
	if (!bk_caps_ok(why, sizeof(why))) {
		fprintf(stderr, "%s: %s\n", prog_name, why);
		return EXIT_KERNEL;
	}
	log = malloc(1 << 20);
	if (!log)
		return EXIT_KERNEL;
	ret = demo_run(&rep, log, 1 << 20);
	if (ret) {
		fprintf(stderr, "%s: demo failed: %s\n%s", prog_name, strerror(-ret), log);
		free(log);
		return EXIT_KERNEL;
	}
	free(log);
	for (i = 0; i < rep.nr_rows; i++)
		bad += rep.rows[i].mismatches;
	if (json) {
		printf("{\"shape\":\"%s\",\"walk\":\"%s\",\"why\":", bk_shape_name(rep.ft.best),
		       bk_walk_name(rep.ft.best_walk));
		json_str(stdout, rep.ft.why);
		printf(",\"jit\":%s,\"nodes\":[", rep.ft.jit ? "true" : "false");
		for (i = 0; i < rep.nr_rows; i++) {
			const struct demo_row *r = &rep.rows[i];
			char fs[200];

			bkey_format_to_str(&r->f, fs, sizeof(fs));
			printf("%s{\"name\":\"%s\",\"format\":\"%s\",\"prog\":\"%s\",\"keys\":%u,"
			       "\"stored_unpacked\":%u,\"mismatches\":%u,\"xlated_insns\":%u,"
			       "\"jited_bytes\":%u,\"prepare_us\":%.1f,\"bpf_ns_per_key\":%.2f,"
			       "\"ref_ns_per_key\":%.2f}", i ? "," : "", r->name, fs, r->prog,
			       r->keys, r->unpacked, r->mismatches, r->xlated, r->jited,
			       r->prepare_us, r->bpf_ns, r->ref_ns);
		}
		printf("],\"mismatches\":%u}\n", bad);
		return bad ? EXIT_KERNEL : 0;
	}
	printf("program shape: %s, walk by %s (%s); JIT %s\n\n", bk_shape_name(rep.ft.best),
	       bk_walk_name(rep.ft.best_walk), rep.ft.why, rep.ft.jit ? "on" : "off (interpreter)");
	printf("%-15s %-15s %5s %8s %6s %6s %10s %9s %9s %6s\n", "node", "program", "keys",
	       "unpacked", "xlated", "JIT B", "prepare us", "bpf ns/k", "C ns/k", "C/bpf");
	for (i = 0; i < rep.nr_rows; i++) {
		const struct demo_row *r = &rep.rows[i];

		printf("%-15s %-15s %5u %8u %6u %6u %10.1f %9.2f %9.2f %6.2f\n", r->name, r->prog,
		       r->keys, r->unpacked, r->xlated, r->jited, r->prepare_us, r->bpf_ns,
		       r->ref_ns, r->bpf_ns > 0 ? r->ref_ns / r->bpf_ns : 0);
	}
	for (i = 0; i < rep.nr_rows; i++) {
		char fs[200];

		bkey_format_to_str(&rep.rows[i].f, fs, sizeof(fs));
		printf("  %-15s %s\n", rep.rows[i].name, fs);
	}
	printf("\nprepare = generate + verify + JIT, median of 21 loads; bpf ns/key is\n"
	       "kernel-measured over one program run per node (median of 15 rounds of 200\n"
	       "runs), the node's key table built once when it was loaded; C is the\n"
	       "reference streaming unpack (bcachefs's portable shape). make bench compares\n"
	       "every method side by side.\n");
	printf("mismatches against the reference: %u\n", bad);
	return bad ? EXIT_KERNEL : 0;
}

/* ---- lookup ---- */

static void usage_lookup(FILE *out)
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
		prog_name, prog_name, prog_name, BK_NODE_SIZE_MIN, BK_NODE_SIZE_MAX);
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

/* Unloads the tree, if loaded: a failure to release is the run's error if it had none. */
static int tree_down(struct bk_tree_rt *t, bool loaded, int ret)
{
	int err = loaded ? bk_tree_unload(t) : 0;

	if (err && !ret) {
		fprintf(stderr, "%s: releasing the programs: %s\n", prog_name, strerror(-err));
		return EXIT_KERNEL;
	}
	return ret;
}

static int parse_node_size(const char *s, unsigned *out)
{
	char *end;
	unsigned long v = strtoul(s, &end, 0);

	if (*end || v < BK_NODE_SIZE_MIN || v > BK_NODE_SIZE_MAX || v % 8) {
		fprintf(stderr, "%s: --node-size: \"%s\" is not a multiple of 8 in %u..%u\n",
			prog_name, s, BK_NODE_SIZE_MIN, BK_NODE_SIZE_MAX);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

static int cmd_lookup(int argc, char **argv)
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
	const char *pin = NULL, *pinned = NULL;
	struct bk_pinned pt;
	struct bk_tree_rt *tree = NULL;
	struct bk_btree_opts bo = { .node_size = 4096 };
	struct bk_keyset ks = {};
	struct bk_btree bt = {};
	struct bk_tree_rt t = {};
	struct bk_result *res = NULL;
	struct bpos *pos = NULL;
	const char *keys = NULL;
	bool verify = true, loaded = false;
	size_t n = 0, i, mismatches = 0;
	char err[300];

	int opt, ret = EXIT_USAGE;

	while ((opt = getopt_long(argc, argv, "k:n:Vh", opts, NULL)) != -1) {
		switch (opt) {
		case 'k': keys = optarg; break;
		case 'n':
			if (parse_node_size(optarg, &bo.node_size))
				return EXIT_USAGE;
			break;
		case 'V': verify = false; break;
		case 'P': pin = optarg; break;
		case 'Q': pinned = optarg; break;
		case 'h': usage_lookup(stdout); return 0;
		default: usage_lookup(stderr); return EXIT_USAGE;
		}
	}
	if ((!keys && !pinned) || (pin && pinned)) {
		fprintf(stderr, "%s: lookup: --keys FILE (and --pin DIR), or --pinned DIR\n",
			prog_name);
		return EXIT_USAGE;
	}
	if (pin && !on_bpffs(pin))
		return EXIT_USAGE;
	if (keys && read_keyfile(keys, &ks))
		goto out;
	verify &= keys != NULL;
	if (pin) {
		/* run slots for the processes that will query it at once */
		ret = tree_up(&ks, &bo, &bt, &t, &loaded, BK_PIN_RUN_SLOTS);
		if (!ret)
			ret = pin_tree_cmd(&t, pin, keys);
		goto out;
	}
	if (read_queries(stdin, &pos, &n))
		goto out;
	res = calloc(n ? n : 1, sizeof(*res));
	ret = !res ? EXIT_KERNEL : pinned ? pinned_up(&pt, pinned) : tree_up(&ks, &bo, &bt, &t, &loaded, 1);
	if (ret)
		goto out;
	tree = pinned ? &pt.t : &t;
	ret = EXIT_KERNEL;
	if (bk_tree_lookup(tree, pos, n, res)) {
		bk_tree_bad_reason(tree, err, sizeof(err));
		fprintf(stderr, "%s: a lookup failed: %s\n", prog_name, err);
		goto out;
	}
	for (i = 0; i < n; i++) {
		const struct bk_result *r = &res[i];

		if (verify)
			mismatches += !bk_keyset_answer_ok(&ks, pos[i], r->found, r->key);
		if (!r->found)
			printf("none\n");
		else if (print_result(tree, r))
			goto out;
	}
	if (mismatches)
		fprintf(stderr, "%s: %zu of %zu answers differ from the reference\n", prog_name,
			mismatches, n);
	ret = mismatches ? EXIT_KERNEL : 0;
out:
	ret = tree_down(&t, loaded, ret);
	if (tree == &pt.t)
		bk_pinned_close(&pt);
	bk_btree_free(&bt);
	bk_keyset_free(&ks);
	free(pos);
	free(res);
	return ret;
}

/* ---- scan ---- */

static void usage_scan(FILE *out)
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
"Exit status as for lookup.\n", prog_name, prog_name);
}

static int cmd_scan(int argc, char **argv)
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
	struct bk_btree_opts bo = { .node_size = 4096 };
	struct bk_keyset ks = {};
	struct bk_btree bt = {};
	struct bk_tree_rt t = {}, *tree = NULL;
	struct bk_pinned pt;
	struct bk_result *res = NULL;
	const char *keys = NULL, *from_s = NULL, *pinned = NULL;
	struct bpos from;
	unsigned long count = 0;
	size_t got = 0, i, first, mismatches = 0;
	bool verify = true, loaded = false;
	char err[300], *end;
	int opt, ret = EXIT_USAGE;

	while ((opt = getopt_long(argc, argv, "k:f:c:n:Vh", opts, NULL)) != -1) {
		switch (opt) {
		case 'k': keys = optarg; break;
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
			if (parse_node_size(optarg, &bo.node_size))
				return EXIT_USAGE;
			break;
		case 'V': verify = false; break;
		case 'Q': pinned = optarg; break;
		case 'h': usage_scan(stdout); return 0;
		default: usage_scan(stderr); return EXIT_USAGE;
		}
	}
	if ((!keys && !pinned) || !from_s) {
		fprintf(stderr, "%s: scan: --keys FILE or --pinned DIR, --from POS and --count N "
			"are required\n", prog_name);
		return EXIT_USAGE;
	}
	verify &= keys != NULL;
	if (bk_pos_parse(from_s, &from, err, sizeof(err))) {
		fprintf(stderr, "%s: --from: %s\n", prog_name, err);
		return EXIT_USAGE;
	}
	if (keys && read_keyfile(keys, &ks))
		goto out;
	res = calloc(count ? count : 1, sizeof(*res));
	ret = !res ? EXIT_KERNEL : pinned ? pinned_up(&pt, pinned) : tree_up(&ks, &bo, &bt, &t, &loaded, 1);
	if (ret)
		goto out;
	tree = pinned ? &pt.t : &t;
	ret = EXIT_KERNEL;
	if (bk_tree_scan(tree, from, count, res, &got)) {
		bk_tree_bad_reason(tree, err, sizeof(err));
		fprintf(stderr, "%s: a scan failed: %s\n", prog_name, err);
		goto out;
	}
	first = bk_keyset_lower_bound(&ks, from);
	if (verify && got != (ks.nr - first < count ? ks.nr - first : count))
		mismatches++;
	for (i = 0; i < got; i++) {
		if (verify && (first + i >= ks.nr ||
			       memcmp(res[i].key, &ks.keys[first + i].k, sizeof(struct bkey))))
			mismatches++;
		if (print_result(tree, &res[i]))
			goto out;
	}
	if (mismatches)
		fprintf(stderr, "%s: the scan differs from the reference\n", prog_name);
	ret = mismatches ? EXIT_KERNEL : 0;
out:
	ret = tree_down(&t, loaded, ret);
	if (tree == &pt.t)
		bk_pinned_close(&pt);
	bk_btree_free(&bt);
	bk_keyset_free(&ks);
	free(res);
	return ret;
}

/* ---- dump ---- */

static void usage_dump(FILE *out)
{
	fprintf(out,
"Usage: %s dump (--format FMT [--kind unpack|lookup] [--walk u64s|table] | --id ID |\n"
"               --pinned PATH)\n"
"\n"
"Prints a program's JIT'd machine code, disassembled by objdump (binutils)\n"
"for this machine's architecture, or as hex bytes without it. With --format\n"
"it generates and loads the format's program (an unpack program, or a\n"
"lookup program for --kind lookup; --walk as for 'gen'), dumps it and\n"
"releases it; --id and --pinned dump a program already loaded, such as one\n"
"pinned by 'run --pin'.\n"
"Debian's bpftool cannot do this: it is built without libbfd.\n", prog_name);
}

static const char *objdump_arch(void)
{
#if defined(__x86_64__)
	return "i386:x86-64";
#elif defined(__aarch64__)
	return "aarch64";
#elif defined(__riscv)
	return "riscv:rv64";
#else
	return NULL;
#endif
}

/* The JIT image of @fd, disassembled (or in hex) on stdout. */
static int dump_jited(int fd)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info), size;
	unsigned char *buf;
	char path[] = "/tmp/bkey-jit.XXXXXX", cmd[256], name[BPF_OBJ_NAME_LEN];
	const char *arch = objdump_arch();
	int tmp, ret = 0;
	__u32 i, id;

	/* once for the size, once for the bytes */
	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return -errno;
	size = info.jited_prog_len;
	id = info.id;
	memcpy(name, info.name, sizeof(name));
	if (!size) {
		fprintf(stderr, "%s: program %u has no JIT image (is the JIT off?)\n", prog_name, id);
		return -ENOENT;
	}
	buf = malloc(size);
	if (!buf)
		return -ENOMEM;
	memset(&info, 0, sizeof(info));
	info.jited_prog_len = size;
	info.jited_prog_insns = (unsigned long)buf;
	len = sizeof(info);
	if (bpf_obj_get_info_by_fd(fd, &info, &len)) {
		free(buf);
		return -errno;
	}
	printf("# prog id %u \"%s\": %u bytes of JIT'd code\n", id, name, size);
	fflush(stdout);
	tmp = mkstemp(path);
	if (tmp >= 0 && arch && !system("command -v objdump >/dev/null 2>&1") &&
	    write(tmp, buf, size) == (ssize_t)size) {
		snprintf(cmd, sizeof(cmd), "objdump -D -b binary -m%s %s | tail -n +8", arch, path);
		ret = system(cmd) ? -EIO : 0;
	} else {
		for (i = 0; i < size; i++)
			printf("%02x%s", buf[i], i % 16 == 15 ? "\n" : " ");
		printf("\n");
	}
	if (tmp >= 0) {
		close(tmp);
		unlink(path);
	}
	free(buf);
	return ret;
}

static int cmd_dump(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "format", required_argument, NULL, 'f' },
		{ "kind", required_argument, NULL, 'k' },
		{ "walk", required_argument, NULL, 'w' },
		{ "id", required_argument, NULL, 'i' },
		{ "pinned", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	const char *fmt = NULL, *kind = "unpack", *pinned = NULL;
	struct bk_runtime rt = { .ctl_fd = -1, .in_fd = -1, .out_fd = -1 };
	struct bk_loaded l = { .fd = -1 };
	struct bk_lookup_rt lr;
	enum bk_walk walk = BK_WALK_U64S;
	bool have_lr = false, walk_set = false;
	long id = -1;
	char why[160];
	int opt, ret, fd = -1;

	while ((opt = getopt_long(argc, argv, "f:k:w:i:p:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'f': fmt = optarg; break;
		case 'k': kind = optarg; break;
		case 'w':
			if (parse_walk(optarg, &walk))
				return EXIT_USAGE;
			walk_set = true;
			break;
		case 'i': id = atol(optarg); break;
		case 'p': pinned = optarg; break;
		case 'h': usage_dump(stdout); return 0;
		default: usage_dump(stderr); return EXIT_USAGE;
		}
	}
	if (!!fmt + (id >= 0) + !!pinned != 1 || (strcmp(kind, "unpack") && strcmp(kind, "lookup"))) {
		usage_dump(stderr);
		return EXIT_USAGE;
	}
	if (walk_set && (!fmt || strcmp(kind, "unpack"))) {
		fprintf(stderr, "%s: --walk chooses an unpack program to generate: it needs "
			"--format and --kind unpack\n", prog_name);
		return EXIT_USAGE;
	}
	if (!bk_caps_ok(why, sizeof(why))) {
		fprintf(stderr, "%s: %s\n", prog_name, why);
		return EXIT_KERNEL;
	}
	if (id >= 0) {
		fd = bpf_prog_get_fd_by_id(id);
		if (fd < 0) {
			fprintf(stderr, "%s: no program with id %ld: %s\n", prog_name, id, strerror(errno));
			return EXIT_KERNEL;
		}
	} else if (pinned) {
		fd = bpf_obj_get(pinned);
		if (fd < 0) {
			fprintf(stderr, "%s: cannot open %s: %s\n", prog_name, pinned, strerror(errno));
			return EXIT_KERNEL;
		}
	} else {
		struct bk_gen_opts o = { .shape = BK_SHAPE_AUTO, .chunk = 1, .annotate = true,
					 .strict_align = bk_strict_align_default(), .walk = walk };
		struct bkey_format f;
		struct bk_prog *p = calloc(1, sizeof(*p));

		if (!p || parse_format_arg(fmt, &f)) {
			free(p);
			return EXIT_USAGE;
		}
		if (!strcmp(kind, "lookup")) {
			struct bk_search_opts so = { .node_size = 4096, .lookup = true,
						     .strict_align = o.strict_align };

			ret = bk_lookup_rt_open(&lr, 4096, 1, 1);
			have_lr = !ret;
			so.ctl_fd = lr.ctl_fd;
			so.nodes_fd = lr.nodes_fd;
			so.progs_fd = lr.progs_fd;
			if (!ret)
				ret = bk_gen_search(&f, &so, p, NULL);
			if (!ret)
				ret = bk_prog_load(p, &l, NULL, 0);
		} else {
			ret = open_kernel(&rt, &o);
			if (!ret)
				ret = gen_load_or_report(&f, &o, &rt, p, &l);
		}
		free(p);
		if (ret) {
			fprintf(stderr, "%s: cannot load the program: %s\n", prog_name, strerror(-ret));
			goto out;
		}
		fd = l.fd;
	}
	ret = dump_jited(fd);
	if (ret)
		fprintf(stderr, "%s: dump failed: %s\n", prog_name, strerror(-ret));
out:
	if (fd >= 0 && fd != l.fd)
		close(fd);
	bk_prog_unload(&l);
	bk_runtime_close(&rt);
	if (have_lr)
		bk_lookup_rt_close(&lr);
	return ret ? EXIT_KERNEL : 0;
}

/* ---- gen ---- */

static void json_str(FILE *out, const char *s)
{
	fputc('"', out);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(out, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fprintf(out, "\\u%04x", *s);
		else
			fputc(*s, out);
	}
	fputc('"', out);
}

/* gen -o: @p as an object file; the placeholder fds name the runtime's maps. */
static int write_object(const struct bk_prog *p, const char *path, bool json)
{
	struct bk_obj_map maps[3];
	char err[512];
	int ret;

	bk_runtime_obj_maps(maps, 1, 2, 3);
	ret = bk_prog_write_obj(p, maps, 3, path, err, sizeof(err));
	if (ret) {
		fprintf(stderr, "%s: %s\n", prog_name, err);
		return ret == -EOPNOTSUPP ? EXIT_USAGE : EXIT_KERNEL;
	}
	if (json) {
		printf("{\"name\":\"%s\",\"func\":\"%s\",\"shape\":\"%s\",\"walk\":\"%s\","
		       "\"insns\":%d,\"object\":", p->name, p->func_name, bk_shape_name(p->shape),
		       bk_walk_name(p->walk), p->e.cnt);
		json_str(stdout, path);
		printf("}\n");
	} else {
		printf("wrote %s: prog %s (BTF func %s), %s shape, walk by %s, %d instructions, "
		       "%d lines\n", path, p->name, p->func_name, bk_shape_name(p->shape),
		       bk_walk_name(p->walk), p->e.cnt, p->e.nr_lines);
	}
	return 0;
}

static int cmd_gen(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "format", required_argument, NULL, 'f' },
		{ "shape", required_argument, NULL, 's' },
		{ "walk", required_argument, NULL, 'w' },
		{ "chunk", required_argument, NULL, 'c' },
		{ "strict-align", no_argument, NULL, 'a' },
		{ "load", no_argument, NULL, 'L' },
		{ "repeat", required_argument, NULL, 'r' },
		{ "json", no_argument, NULL, 'j' },
		{ "output", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	/* placeholders: a listing names the maps instead of their fds */
	static const struct bk_map_name names[] = { { 1, "ctl" }, { 2, "in" }, { 3, "out" } };
	struct bk_gen_opts o = {
		.shape = BK_SHAPE_AUTO, .annotate = true, .chunk = 1,
		.strict_align = bk_strict_align_default(),
		.ctl_fd = 1, .in_fd = 2, .out_fd = 3,
	};
	struct load_report r = { .l.fd = -1 };
	const char *fmt = NULL, *obj_path = NULL;
	struct bkey_format f;
	struct bk_prog *p;
	bool json = false, load = false;
	unsigned repeat = 1;
	int opt, ret, i;

	while ((opt = getopt_long(argc, argv, "f:s:w:c:aLr:jo:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'f': fmt = optarg; break;
		case 'w':
			if (parse_walk(optarg, &o.walk))
				return EXIT_USAGE;
			break;
		case 's':
			if (parse_shape(optarg, &o.shape))
				return EXIT_USAGE;
			break;
		case 'L': load = true; break;
		case 'r':
			repeat = atoi(optarg);
			if (repeat < 1 || repeat > 1000000) {
				fprintf(stderr, "%s: --repeat: \"%s\" is not in 1..1000000\n",
					prog_name, optarg);
				return EXIT_USAGE;
			}
			break;
		case 'c':
			o.chunk = atoi(optarg);
			if (o.chunk < 1 || o.chunk > BK_CHUNK_MAX) {
				fprintf(stderr, "%s: --chunk: \"%s\" is not in 1..%d\n", prog_name,
					optarg, BK_CHUNK_MAX);
				return EXIT_USAGE;
			}
			break;
		case 'a': o.strict_align = true; break;
		case 'j': json = true; break;
		case 'o': obj_path = optarg; break;
		case 'h': usage_gen(stdout); return 0;
		default: usage_gen(stderr); return EXIT_USAGE;
		}
	}
	if (parse_format_arg(fmt, &f))
		return EXIT_USAGE;
	if (obj_path && load) {
		fprintf(stderr, "%s: -o writes the object without loading it: drop --load (bpftool "
			"prog load FILE loads it)\n", prog_name);
		return EXIT_USAGE;
	}
	p = calloc(1, sizeof(*p));
	if (!p)
		return EXIT_KERNEL;
	if (load) {
		ret = gen_and_load(&f, &o, p, repeat, &r);
		if (ret) {
			free(p);
			return EXIT_KERNEL;
		}
		/* listing with the placeholder fds again */
		o.ctl_fd = 1, o.in_fd = 2, o.out_fd = 3;
	} else if (o.shape == BK_SHAPE_AUTO) {
		o.shape = BK_SHAPE_MAY_GOTO;
	}
	ret = bk_gen_unpack(&f, &o, p, NULL);
	if (ret) {
		fprintf(stderr, "%s: generating the program failed: %s\n", prog_name, strerror(-ret));
		free(p);
		return EXIT_KERNEL;
	}
	if (obj_path) {
		ret = write_object(p, obj_path, json);
		free(p);
		return ret;
	}
	if (!json) {
		printf("# prog %s (BTF func %s), %s shape, walk by %s, %d instructions\n",
		       p->name, p->func_name, bk_shape_name(p->shape), bk_walk_name(p->walk),
		       p->e.cnt);
		if (load)
			printf("# loaded as id %u: %u xlated insns, %u JIT bytes, %u insns processed "
			       "by the verifier; prepare (generate + verify + JIT) %.1f us median "
			       "of %u (p90 %.1f us)\n", r.l.id, r.l.xlated_insns, r.l.jited_bytes,
			       r.l.verified_insns, r.prepare_us, r.repeat, r.prepare_p90_us);
		bk_listing(&p->e, stdout, names, 3);
	} else {
		printf("{\"name\":\"%s\",\"func\":\"%s\",\"shape\":\"%s\",\"walk\":\"%s\","
		       "\"insns\":%d,\"lines\":[", p->name, p->func_name, bk_shape_name(p->shape),
		       bk_walk_name(p->walk), p->e.cnt);
		for (i = 0; i < p->e.nr_lines; i++) {
			printf("%s{\"insn\":%d,\"text\":", i ? "," : "", p->e.line[i].insn);
			json_str(stdout, bk_text(&p->e, p->e.line[i].text));
			printf("}");
		}
		printf("],\"listing\":[");
		for (i = 0; i < p->e.cnt;) {
			char buf[128];
			int n = bk_insn_str_named(&p->e.insn[i], i, buf, sizeof(buf), names, 3);

			printf("%s", i ? "," : "");
			json_str(stdout, buf);
			i += n;
		}
		printf("]");
		if (load)
			printf(",\"load\":{\"xlated_insns\":%u,\"jited_bytes\":%u,\"verified_insns\":%u,"
			       "\"prepare_us_median\":%.2f,\"prepare_us_p90\":%.2f,\"repeat\":%u}",
			       r.l.xlated_insns, r.l.jited_bytes, r.l.verified_insns, r.prepare_us,
			       r.prepare_p90_us, r.repeat);
		printf("}\n");
	}
	free(p);
	return 0;
}

int main(int argc, char **argv)
{
	const char *cmd;

	libbpf_set_print(NULL);
	bk_raise_nofile();
	if (argc < 2 || argv[1][0] == '-') {
		if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
			usage(stdout);
			return 0;
		}
		return run_main(argc, argv, prog_name);
	}
	cmd = argv[1];
	if (!strcmp(cmd, "run"))
		return run_main(argc - 1, argv + 1, prog_name);
	if (!strcmp(cmd, "demo"))
		return cmd_demo(argc - 1, argv + 1);
	if (!strcmp(cmd, "unpack"))
		return cmd_unpack(argc - 1, argv + 1);
	if (!strcmp(cmd, "lookup"))
		return cmd_lookup(argc - 1, argv + 1);
	if (!strcmp(cmd, "scan"))
		return cmd_scan(argc - 1, argv + 1);
	if (!strcmp(cmd, "dump"))
		return cmd_dump(argc - 1, argv + 1);
	if (!strcmp(cmd, "image"))
		return image_main(argc - 1, argv + 1, prog_name);
	if (!strcmp(cmd, "gen"))
		return cmd_gen(argc - 1, argv + 1);
	if (!strcmp(cmd, "kmod"))
		return kmod_main(argc - 1, argv + 1, prog_name);
	if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
		usage(stdout);
		return 0;
	}
	fprintf(stderr, "%s: unknown command \"%s\"\n", prog_name, cmd);
	usage(stderr);
	return EXIT_USAGE;
}
