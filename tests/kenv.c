// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "test_progs.h"
#include "kenv.h"
#include "util.h"

static struct kenv kenv;
static bool kenv_tried;

static void kenv_release(void)
{
	if (kenv.ok)
		bk_runtime_close(&kenv.rt);
}

struct kenv *kenv_get(void)
{
	if (!kenv_tried) {
		int ret;

		kenv_tried = true;
		libbpf_set_print(NULL);
		ret = bk_probe_features(&kenv.ft);
		if (ret == -EPERM || ret == -EACCES) {
			snprintf(kenv.why, sizeof(kenv.why),
				 "bpf() not permitted (%s): run as root for kernel tests",
				 strerror(-ret));
		} else if (ret) {
			snprintf(kenv.why, sizeof(kenv.why), "kernel probe failed: %s",
				 ret == -EOPNOTSUPP ? kenv.ft.why : strerror(-ret));
		} else if ((ret = bk_runtime_open(&kenv.rt))) {
			snprintf(kenv.why, sizeof(kenv.why), "cannot create maps: %s",
				 strerror(-ret));
		} else {
			kenv.ok = true;
			kenv.strict_align = bk_strict_align_default();
			atexit(kenv_release);
			printf("kernel: may_goto=%d bpf_loop=%d jit=%d, best shape %s: %s\n",
			       kenv.ft.may_goto, kenv.ft.bpf_loop, kenv.ft.jit,
			       bk_shape_name(kenv.ft.best), kenv.ft.why);
		}
	}
	if (!kenv.ok) {
		test__skip("%s", kenv.why);
		return NULL;
	}
	return &kenv;
}

bool kenv_has_shape(const struct kenv *k, enum bk_shape s)
{
	return s == BK_SHAPE_MAY_GOTO ? k->ft.may_goto :
	       s == BK_SHAPE_BPF_LOOP ? k->ft.bpf_loop : false;
}

void kenv_each_loops(struct kenv *k, void (*fn)(struct kenv *k))
{
	if (!k->ft.may_goto && !k->ft.bpf_loop) {
		test__skip("no shape can walk a node: neither may_goto (6.9+) nor bpf_loop with the JIT");
		return;
	}
	if (k->ft.may_goto) {
		unsetenv("BKEY_LOOPS");
		fn(k);
	}
	if (k->ft.bpf_loop) {
		setenv("BKEY_LOOPS", "bpf_loop", 1);
		fn(k);
		unsetenv("BKEY_LOOPS");
	}
}

/* ---- bit-by-bit reference ---- */

static unsigned kbit(const uint8_t *k, unsigned bit)
{
	return (k[bit / 8] >> (bit % 8)) & 1;
}

void bitref_unpack(const struct bkey_format *f, const void *in, struct bkey *out)
{
	const uint8_t *k = in;
	uint64_t v[BKEY_NR_FIELDS];
	unsigned i, j, top = 64 * f->key_u64s;

	if ((k[1] & 0x7f) != 0) {
		memcpy(out, in, sizeof(*out));
		return;
	}
	for (i = 0; i < BKEY_NR_FIELDS; i++) {
		unsigned b = f->bits_per_field[i];

		top -= b;	/* fields run downward from the top of K */
		v[i] = 0;
		for (j = 0; j < b; j++)
			v[i] |= (uint64_t)kbit(k, top + j) << j;
		v[i] += f->field_offset[i];
	}
	/* written out here, not through the model: this is the second,
	 * independent implementation */
	memset(out, 0, sizeof(*out));
	out->u64s = k[0] + 5 - f->key_u64s;
	out->format_nw = 1 | (k[1] & 0x80);
	out->type = k[2];
	out->inode = v[0];
	out->offset = v[1];
	out->snapshot = v[2];
	out->size = v[3];
	out->version_hi = v[4];
	out->version_lo = v[5];
}

/* ---- randomness ---- */

uint64_t rnd_next(uint64_t *s)
{
	return bk_rnd(s);
}

uint64_t rnd_below(uint64_t *s, uint64_t n)
{
	return rnd_next(s) % n;
}

uint64_t rnd_range(uint64_t *s, uint64_t lo, uint64_t hi)
{
	uint64_t span = hi - lo;

	switch (rnd_below(s, 8)) {
	case 0:	return lo;
	case 1:	return hi;
	case 2:	return lo + (span ? rnd_below(s, span < 16 ? span + 1 : 16) : 0);
	case 3:	return hi - (span ? rnd_below(s, span < 16 ? span + 1 : 16) : 0);
	}
	return span == UINT64_MAX ? rnd_next(s) : lo + rnd_below(s, span + 1);
}

void rnd_offsets(uint64_t *s, struct bkey_format *f)
{
	unsigned i;

	for (i = 0; i < BKEY_NR_FIELDS; i++) {
		unsigned b = f->bits_per_field[i], U = bkey_field_width[i];

		f->field_offset[i] = b == U ? 0 :
			rnd_range(s, 0, bkey_mask(U) - bkey_mask(b));
	}
	f->nr_fields = BKEY_NR_FIELDS;
	f->key_u64s = (KEY_PACKED_BITS_START + bkey_format_total_bits(f) + 63) / 64;
}

unsigned rnd_width_any(uint64_t *s, unsigned U)
{
	switch (rnd_below(s, 6)) {
	case 0:	return 0;
	case 1:	return U;
	case 2:	return 8 * rnd_below(s, U / 8 + 1);	/* byte multiples */
	}
	return rnd_below(s, U + 1);
}

struct bkey_format rnd_format(uint64_t *s, int fixed_field, unsigned fixed_bits)
{
	struct bkey_format f = {};
	unsigned i;

	for (i = 0; i < BKEY_NR_FIELDS; i++)
		f.bits_per_field[i] = (int)i == fixed_field ? fixed_bits :
				      rnd_width_any(s, bkey_field_width[i]);
	rnd_offsets(s, &f);
	return f;
}

/* A field value: inside the format's range unless @outside. */
static uint64_t rnd_field(uint64_t *s, const struct bkey_format *f, unsigned i, bool outside)
{
	unsigned b = f->bits_per_field[i], U = bkey_field_width[i];
	uint64_t lo = f->field_offset[i], hi = lo + bkey_mask(b);

	if (outside) {
		if (lo > 0 && rnd_below(s, 2))
			return rnd_range(s, 0, lo - 1);
		if (hi < bkey_mask(U))
			return rnd_range(s, hi + 1, bkey_mask(U));
	}
	return rnd_range(s, lo, hi);
}

uint32_t rnd_stream(uint64_t *s, const struct bkey_format *f, unsigned nr,
		    uint64_t *words, uint32_t cap, unsigned *nr_keys)
{
	uint32_t pos = 0;
	unsigned n;

	for (n = 0; n < nr; n++) {
		unsigned val = rnd_below(s, 4) ? rnd_below(s, 4) : rnd_below(s, 251);
		bool outside = rnd_below(s, 8) == 0;
		uint64_t v[BKEY_NR_FIELDS];
		struct bkey k = {
			.u64s = BKEY_U64s + val,
			.format_nw = KEY_FORMAT_CURRENT | (rnd_below(s, 4) ? 0 : 0x80),
			.type = rnd_below(s, 256),
		};
		unsigned i, kw;

		for (i = 0; i < BKEY_NR_FIELDS; i++)
			v[i] = rnd_field(s, f, i, outside && rnd_below(s, 2));
		bkey_set_fields(&k, v);

		if (pos + BKEY_U64s + val > cap)
			break;
		if (!bkey_pack_key(f, &k, words + pos, NULL)) {
			kw = f->key_u64s;
		} else {
			/* does not pack: stored unpacked, as bcachefs does */
			memcpy(words + pos, &k, sizeof(k));
			kw = BKEY_U64s;
		}
		for (i = 0; i < val; i++)
			words[pos + kw + i] = rnd_next(s);
		pos += kw + val;
	}
	*nr_keys = n;
	return pos;
}

/* ---- generate, load, run, compare ---- */

bool kcheck_stream(struct kenv *k, const struct bkey_format *f, enum bk_shape shape,
		   enum bk_walk walk, unsigned chunk, const uint64_t *words, uint32_t nr_words,
		   struct kcheck_stats *st)
{
	struct bk_prog prog = {};
	struct bk_gen_opts o = {
		.shape = shape, .walk = walk, .chunk = chunk,
		.ctl_fd = k->rt.ctl_fd, .in_fd = k->rt.in_fd, .out_fd = k->rt.out_fd,
		.strict_align = k->strict_align, .by_shape = k->by_shape,
	};
	/* a shape program must not see f's offsets: another format of the
	 * shape (offsets 0) makes it, f's template runs it */
	struct bkey_format gen_f = *f;
	struct bk_loaded l;
	uint32_t nr_keys = 0, stop = 0, pos = 0, n, status = ~0u;
	char fs[200], who[300];
	double t0;
	bool ok = true;
	int ret;

	st->formats++;
	bkey_format_to_str(f, fs, sizeof(fs));
	snprintf(who, sizeof(who), "%s, %s, walk by %s", fs, bk_shape_name(shape), bk_walk_name(walk));
	t0 = bk_now_ns();
	if (k->by_shape)
		memset(gen_f.field_offset, 0, sizeof(gen_f.field_offset));
	ret = bk_gen_unpack(&gen_f, &o, &prog, NULL);
	if (ASSERT_OK(ret, "generate")) {
		ret = bk_prog_load_report(&prog, &l, stderr, who, NULL, 0);
		st->prepare_us = (bk_now_ns() - t0) / 1e3;
		ASSERT_OK(ret, "verifier accepts");
	}
	bk_prog_release(&prog);
	if (ret)
		return false;
	st->accepted++;
	st->xlated = l.xlated_insns;
	st->jited = l.jited_bytes;

	if (k->by_shape)
		bk_runtime_set_format(&k->rt, f);
	/* stale output (the last program's) must not look right: every key
	 * the run can write (a key takes a word at least) */
	memset(k->rt.out, 0xa5, sizeof(*k->rt.out) *
	       (nr_words < BK_OUT_CAP_KEYS ? nr_words : BK_OUT_CAP_KEYS));
	ret = bk_unpack_words(&l, &k->rt, words, nr_words, &status, &nr_keys, &stop);
	bk_prog_unload(&l);
	if (!ASSERT_OK(ret, "run") || !ASSERT_EQ(status, BK_OK, "run status") || !ASSERT_EQ(stop, nr_words, "in_pos"))
		return false;

	for (n = 0; n < nr_keys && pos < nr_words; n++) {
		struct bkey ref, bits;

		bkey_unpack_key(f, words + pos, &ref);
		bitref_unpack(f, words + pos, &bits);
		ok &= ASSERT_MEMEQ(&ref, &bits, 40, "model == bit-by-bit");
		ok &= ASSERT_MEMEQ(&k->rt.out[n], &ref, 40, "kernel == model");
		if (!ok) {
			fprintf(stderr, "  %s, key %u at word %u%s\n", who, n, pos,
				k->by_shape ? ", shape program" : "");
			return false;
		}
		pos += ((const uint8_t *)(words + pos))[0];
		st->keys++;
	}
	ok &= ASSERT_EQ(pos, nr_words, "keys walked");
	return ok;
}

char *run_cmd(const char *cmd)
{
	FILE *f = popen(cmd, "r");
	size_t cap = 1 << 16, n = 0;
	char *buf;

	if (!f)
		return NULL;
	buf = malloc(cap);
	while (buf && (n += fread(buf + n, 1, cap - 1 - n, f)) == cap - 1) {
		char *more = realloc(buf, cap * 2);

		if (!more) {
			free(buf);
			buf = NULL;
			break;
		}
		buf = more;
		cap *= 2;
	}
	if (pclose(f) != 0 || !buf) {
		free(buf);
		return NULL;
	}
	buf[n] = 0;
	return buf;
}

bool mount_bpffs(char *mnt)
{
	char cmd[200];

	if (!mkdtemp(mnt)) {
		test__skip("no temporary directory for a bpffs");
		return false;
	}
	snprintf(cmd, sizeof(cmd), "mount -t bpf bpf %s 2>/dev/null", mnt);
	if (system(cmd)) {
		rmdir(mnt);
		test__skip("cannot mount a bpffs (mount -t bpf): not root, or no bpffs");
		return false;
	}
	return true;
}

int kenv_shapes(const struct kenv *k, enum bk_shape out[2])
{
	int n = 0;

	if (k->ft.may_goto)
		out[n++] = BK_SHAPE_MAY_GOTO;
	if (k->ft.bpf_loop)
		out[n++] = BK_SHAPE_BPF_LOOP;
	return n;
}

bool kenv_have_tool(const char *cmd, const char *what)
{
	char *out = run_cmd(cmd);

	if (!out)
		test__skip("%s not available", what);
	free(out);
	return out != NULL;
}
