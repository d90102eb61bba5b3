// SPDX-License-Identifier: GPL-2.0
/*
 * loader unpack: a bset-style stream of keys unpacked in the kernel (or by
 * the C reference), one key per line out.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"

void unpack_usage(FILE *out, const char *prog)
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
"naming the problem; nothing is loaded.\n", prog);
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
		uint32_t nr_keys, stop, status;

		while (end < st->nr_words) {
			unsigned u64s = ((const uint8_t *)&st->words[end])[0];

			if (end + u64s - pos > BK_IN_CAP_WORDS)
				break;
			end += u64s;
		}
		ret = bk_unpack_words(&l, &rt, st->words + pos, end - pos, &status, &nr_keys, &stop);
		if (ret) {
			fprintf(stderr, "%s: run %zu failed: %s\n", prog_name, runs, strerror(-ret));
			goto cleanup;
		}
		if (status != BK_OK) {
			fprintf(stderr, "%s: run %zu failed: program reported an error at word %zu\n",
				prog_name, runs, pos + stop);
			ret = -EIO;
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
	bk_prog_release(p);
	free(p);
	return ret;
}

int unpack_main(int argc, char **argv, const char *prog)
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
		case 'h': unpack_usage(stdout, prog_name); return 0;
		default: unpack_usage(stderr, prog_name); return EXIT_USAGE;
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
