// SPDX-License-Identifier: GPL-2.0
/*
 * The bcachefs key-packing model: validation, format computation, pack,
 * reference unpack, position packing and packed comparison.  Section
 * numbers refer to ../shared/spec/bkey-format.md.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bkey.h"

const unsigned bkey_field_width[BKEY_NR_FIELDS] = { 64, 64, 32, 32, 32, 64 };

const char *const bkey_field_name[BKEY_NR_FIELDS] = {
	"inode", "offset", "snapshot", "size", "version_hi", "version_lo",
};

/* Section 11 */
const struct bkey_format bkey_format_current = {
	.key_u64s	= 5,
	.nr_fields	= BKEY_NR_FIELDS,
	.bits_per_field	= { 64, 64, 32, 32, 32, 64 },
};

unsigned bkey_format_total_bits(const struct bkey_format *f)
{
	unsigned i, sum = 0;

	for (i = 0; i < BKEY_NR_FIELDS; i++)
		sum += f->bits_per_field[i];
	return sum;
}

unsigned bkey_format_nr_key_bits(const struct bkey_format *f)
{
	return f->bits_per_field[BKEY_FIELD_INODE] +
	       f->bits_per_field[BKEY_FIELD_OFFSET] +
	       f->bits_per_field[BKEY_FIELD_SNAPSHOT];
}

unsigned bkey_field_shift(const struct bkey_format *f, unsigned field)
{
	unsigned i, s = 64 * f->key_u64s;

	for (i = 0; i <= field; i++)
		s -= f->bits_per_field[i];
	return s;
}

/* ORs @v into bits [lo, lo + len) of the key integer held in @w; len <= 64. */
static void kbits_set(uint64_t *w, unsigned lo, unsigned len, uint64_t v)
{
	unsigned i = lo / 64, sh = lo % 64;

	if (!len)
		return;
	v &= bkey_mask(len);
	w[i] |= v << sh;
	if (sh + len > 64)
		w[i + 1] |= v >> (64 - sh);
}

/* ---- Validation (9.1) ---- */

const char *bkey_format_rule_name(enum bkey_format_rule rule)
{
	switch (rule) {
	case BKEY_FMT_OK:		return "ok";
	case BKEY_FMT_NR_FIELDS:	return "nr_fields";
	case BKEY_FMT_FIELD_TOO_WIDE:	return "field_too_wide";
	case BKEY_FMT_FULL_WIDTH_OFFSET: return "full_width_offset";
	case BKEY_FMT_OFFSET_OVERFLOW:	return "offset_overflow";
	case BKEY_FMT_KEY_U64S:		return "key_u64s";
	}
	return "?";
}

static int format_err(struct bkey_format_err *err, enum bkey_format_rule rule,
		      int field, uint64_t value, uint64_t limit)
{
	if (err) {
		err->rule = rule;
		err->field = field;
		err->value = value;
		err->limit = limit;
	}
	return -EINVAL;
}

int bkey_format_validate(const struct bkey_format *f, struct bkey_format_err *err)
{
	unsigned i, sum = 0, want;

	if (f->nr_fields != BKEY_NR_FIELDS)
		return format_err(err, BKEY_FMT_NR_FIELDS, -1, f->nr_fields,
				  BKEY_NR_FIELDS);

	for (i = 0; i < BKEY_NR_FIELDS; i++) {
		unsigned b = f->bits_per_field[i], U = bkey_field_width[i];
		uint64_t o = f->field_offset[i];

		if (b > U)
			return format_err(err, BKEY_FMT_FIELD_TOO_WIDE, i, b, U);
		if (b == U && o)
			return format_err(err, BKEY_FMT_FULL_WIDTH_OFFSET, i, o, 0);
		/* Exactly "o + mask(b) > mask(U)" for b < U (wraps are caught too). */
		if (((o + bkey_mask(b)) & bkey_mask(U)) < o)
			return format_err(err, BKEY_FMT_OFFSET_OVERFLOW, i, o,
					  bkey_mask(U) - bkey_mask(b));
		sum += b;
	}

	want = (KEY_PACKED_BITS_START + sum + 63) / 64;
	if (f->key_u64s != want)
		return format_err(err, BKEY_FMT_KEY_U64S, -1, f->key_u64s, want);
	if (err)
		err->rule = BKEY_FMT_OK;
	return 0;
}

void bkey_format_err_str(const struct bkey_format_err *err, char *buf, size_t len)
{
	const char *name = err->field >= 0 ? bkey_field_name[err->field] : "";

	switch (err->rule) {
	case BKEY_FMT_OK:
		snprintf(buf, len, "format is valid");
		break;
	case BKEY_FMT_NR_FIELDS:
		snprintf(buf, len, "invalid format (rule nr_fields): nr_fields=%" PRIu64
			 ", must be %" PRIu64, err->value, err->limit);
		break;
	case BKEY_FMT_FIELD_TOO_WIDE:
		snprintf(buf, len, "invalid format (rule field_too_wide): field %s: "
			 "bits=%" PRIu64 " exceeds its unpacked width %" PRIu64,
			 name, err->value, err->limit);
		break;
	case BKEY_FMT_FULL_WIDTH_OFFSET:
		snprintf(buf, len, "invalid format (rule full_width_offset): field %s "
			 "is full width, so its offset must be 0, not 0x%" PRIx64,
			 name, err->value);
		break;
	case BKEY_FMT_OFFSET_OVERFLOW:
		snprintf(buf, len, "invalid format (rule offset_overflow): field %s: "
			 "offset 0x%" PRIx64 " + mask(bits) overflows the %u-bit slot "
			 "(offset must be <= 0x%" PRIx64 ")",
			 name, err->value, bkey_field_width[err->field], err->limit);
		break;
	case BKEY_FMT_KEY_U64S:
		snprintf(buf, len, "invalid format (rule key_u64s): key_u64s=%" PRIu64
			 ", but 24 + sum(bits) needs exactly %" PRIu64,
			 err->value, err->limit);
		break;
	}
}

/* ---- Format computation (8) ---- */

void bkey_format_init(struct bkey_format_state *s)
{
	unsigned i;

	for (i = 0; i < BKEY_NR_FIELDS; i++) {
		s->field_min[i] = UINT64_MAX;
		s->field_max[i] = 0;
	}
	/* a size of 0 must always be representable */
	s->field_min[BKEY_FIELD_SIZE] = 0;
}

static void format_add_field(struct bkey_format_state *s, unsigned i, uint64_t v)
{
	if (v < s->field_min[i])
		s->field_min[i] = v;
	if (v > s->field_max[i])
		s->field_max[i] = v;
}

void bkey_format_add_pos(struct bkey_format_state *s, struct bpos p)
{
	format_add_field(s, BKEY_FIELD_INODE, p.inode);
	format_add_field(s, BKEY_FIELD_OFFSET, p.offset);
	format_add_field(s, BKEY_FIELD_SNAPSHOT, p.snapshot);
}

void bkey_format_add_key(struct bkey_format_state *s, const struct bkey *k)
{
	uint64_t v[BKEY_NR_FIELDS];
	unsigned i;

	bkey_fields(k, v);
	for (i = 0; i < BKEY_NR_FIELDS; i++)
		format_add_field(s, i, v[i]);
}

/* set_field as of March 2021: clamp bits to the slot, lower the offset. */
static void format_set_field(struct bkey_format *f, unsigned i, unsigned bits,
			     uint64_t offset)
{
	unsigned U = bkey_field_width[i];

	if (bits > U)
		bits = U;
	if (bits == U)
		offset = 0;
	else if (offset > bkey_mask(U) - bkey_mask(bits))
		offset = bkey_mask(U) - bkey_mask(bits);
	f->bits_per_field[i] = bits;
	f->field_offset[i] = offset;
}

struct bkey_format bkey_format_done(const struct bkey_format_state *s,
				    enum bkey_format_era era)
{
	struct bkey_format f = { .nr_fields = BKEY_NR_FIELDS };
	unsigned i, total = KEY_PACKED_BITS_START, spare;
	uint8_t *size_bits = &f.bits_per_field[BKEY_FIELD_SIZE];

	for (i = 0; i < BKEY_NR_FIELDS; i++) {
		uint64_t min = s->field_min[i], max = s->field_max[i];

		if (min > max)
			min = max;
		format_set_field(&f, i, bkey_fls64(max - min), min);
		total += f.bits_per_field[i];
	}

	/* Size bits reserved for extent merging; bypasses set_field. */
	if (*size_bits) {
		unsigned r = 0;

		if (era == BKEY_FORMAT_ERA_2017)
			r = 4;
		else if (era == BKEY_FORMAT_ERA_2023)
			r = 32 - *size_bits < 4 ? 32 - *size_bits : 4;
		*size_bits += r;
		total += r;
	}

	f.key_u64s = (total + 63) / 64;
	spare = 64 * f.key_u64s - total;

	/* Greedy byte rounding in field order; never changes key_u64s. */
	for (i = 0; i < BKEY_NR_FIELDS; i++) {
		unsigned bits = f.bits_per_field[i];
		unsigned r = ((bits + 7) & ~7u) - bits;

		if (r <= spare) {
			format_set_field(&f, i, bits + r, f.field_offset[i]);
			spare -= r;
		}
	}
	return f;
}

/* ---- Pack and unpack (5, 6) ---- */

void bkey_fields(const struct bkey *k, uint64_t out[BKEY_NR_FIELDS])
{
	out[BKEY_FIELD_INODE]		= k->inode;
	out[BKEY_FIELD_OFFSET]		= k->offset;
	out[BKEY_FIELD_SNAPSHOT]	= k->snapshot;
	out[BKEY_FIELD_SIZE]		= k->size;
	out[BKEY_FIELD_VERSION_HI]	= k->version_hi;
	out[BKEY_FIELD_VERSION_LO]	= k->version_lo;
}

void bkey_set_fields(struct bkey *k, const uint64_t v[BKEY_NR_FIELDS])
{
	k->inode	= v[BKEY_FIELD_INODE];
	k->offset	= v[BKEY_FIELD_OFFSET];
	k->snapshot	= (uint32_t)v[BKEY_FIELD_SNAPSHOT];
	k->size		= (uint32_t)v[BKEY_FIELD_SIZE];
	k->version_hi	= (uint32_t)v[BKEY_FIELD_VERSION_HI];
	k->version_lo	= v[BKEY_FIELD_VERSION_LO];
}

const char *bkey_pack_fail_name(enum bkey_pack_fail why)
{
	switch (why) {
	case BKEY_PACK_OK:		return "ok";
	case BKEY_PACK_BELOW_OFFSET:	return "value below the field offset";
	case BKEY_PACK_TOO_WIDE:	return "value wider than the field";
	case BKEY_PACK_NOT_UNPACKED:	return "input key is not unpacked (format byte != 1)";
	case BKEY_PACK_VAL_TOO_BIG:	return "u64s out of range (value over 250 words or key under 5)";
	}
	return "?";
}

static int pack_fail(struct bkey_pack_err *err, enum bkey_pack_fail why,
		     int field, uint64_t value)
{
	if (err) {
		err->why = why;
		err->field = field;
		err->value = value;
	}
	return -1;
}

/* Places field @i with value @x; fails as bch2_bkey_pack_key does. */
static int pack_field(const struct bkey_format *f, uint64_t *w, unsigned i,
		      uint64_t x, struct bkey_pack_err *err)
{
	unsigned b = f->bits_per_field[i];
	uint64_t d;

	if (x < f->field_offset[i])
		return pack_fail(err, BKEY_PACK_BELOW_OFFSET, i, x);
	d = x - f->field_offset[i];
	if (bkey_fls64(d) > b)
		return pack_fail(err, BKEY_PACK_TOO_WIDE, i, x);
	kbits_set(w, bkey_field_shift(f, i), b, d);
	return 0;
}

int bkey_pack_key(const struct bkey_format *f, const struct bkey *in,
		  uint64_t *out, struct bkey_pack_err *err)
{
	uint64_t v[BKEY_NR_FIELDS];
	unsigned i;

	if (bkey_format_byte(in) != KEY_FORMAT_CURRENT)
		return pack_fail(err, BKEY_PACK_NOT_UNPACKED, -1, bkey_format_byte(in));
	if (in->u64s < BKEY_U64s || in->u64s - BKEY_U64s > BKEY_VAL_U64s_MAX)
		return pack_fail(err, BKEY_PACK_VAL_TOO_BIG, -1, in->u64s);

	memset(out, 0, 8 * f->key_u64s);
	bkey_fields(in, v);
	for (i = 0; i < BKEY_NR_FIELDS; i++)
		if (pack_field(f, out, i, v[i], err))
			return -1;

	out[0] |= (uint64_t)(uint8_t)(f->key_u64s + in->u64s - BKEY_U64s) |
		  (uint64_t)(in->format_nw & 0x80) << 8 |
		  (uint64_t)in->type << 16;
	if (err)
		err->why = BKEY_PACK_OK;
	return 0;
}

/*
 * Spec 5.2: the streaming unpacker.  @w is left-aligned (unread bits at
 * the top), @avail counts unread bits, @p indexes the current word.
 */
struct unpack_stream {
	const uint64_t	*words;
	int		p;
	uint64_t	w;
	unsigned	avail;
};

static uint64_t stream_next(struct unpack_stream *st, unsigned b)
{
	uint64_t v = 0;

	if (b >= st->avail) {
		v = st->w >> (64 - b);
		b -= st->avail;
		st->p--;
		/* a valid format never leaves the key: word 0 holds the header */
		st->w = st->p >= 0 ? st->words[st->p] : 0;
		st->avail = 64;
	}
	v |= (st->w >> 1) >> (63 - b);
	st->w <<= b;
	st->avail -= b;
	return v;
}

static void unpack_values(const struct bkey_format *f, const void *in,
			  uint64_t v[BKEY_NR_FIELDS], unsigned nr_fields)
{
	struct unpack_stream st = {
		.words	= in,
		.p	= f->key_u64s - 1,
		.avail	= 64,
	};
	unsigned i;

	st.w = st.words[st.p];
	for (i = 0; i < nr_fields; i++)
		v[i] = stream_next(&st, f->bits_per_field[i]) + f->field_offset[i];
}

void bkey_unpack_key(const struct bkey_format *f, const void *in, struct bkey *out)
{
	const uint8_t *h = in;
	uint64_t v[BKEY_NR_FIELDS];

	if (bkey_format_byte(in) != KEY_FORMAT_LOCAL_BTREE) {
		memcpy(out, in, sizeof(*out));
		return;
	}
	unpack_values(f, in, v, BKEY_NR_FIELDS);
	out->u64s	= (uint8_t)(BKEY_U64s + h[0] - f->key_u64s);
	out->format_nw	= KEY_FORMAT_CURRENT | (h[1] & 0x80);
	out->type	= h[2];
	out->pad	= 0;
	bkey_set_fields(out, v);
}

struct bpos bkey_unpack_pos(const struct bkey_format *f, const void *in)
{
	uint64_t v[BKEY_NR_FIELDS];

	if (bkey_format_byte(in) != KEY_FORMAT_LOCAL_BTREE) {
		const struct bkey *k = in;

		return (struct bpos){ k->inode, k->offset, k->snapshot };
	}
	unpack_values(f, in, v, 3);
	return (struct bpos){ v[0], v[1], (uint32_t)v[2] };
}

/* ---- Position packing (7) ---- */

static void pos_header(const struct bkey_format *f, uint64_t *out)
{
	out[0] |= f->key_u64s;	/* format 0, type 0 (deleted) */
}

int bkey_pack_pos(const struct bkey_format *f, struct bpos p, uint64_t *out)
{
	memset(out, 0, 8 * f->key_u64s);
	if (pack_field(f, out, BKEY_FIELD_INODE, p.inode, NULL) ||
	    pack_field(f, out, BKEY_FIELD_OFFSET, p.offset, NULL) ||
	    pack_field(f, out, BKEY_FIELD_SNAPSHOT, p.snapshot, NULL))
		return -1;
	pos_header(f, out);
	return 0;
}

/* Packs @x into field @i, or saturates it; returns true if it saturated. */
static bool pack_field_clamped(const struct bkey_format *f, uint64_t *w,
			       unsigned i, uint64_t x)
{
	unsigned b = f->bits_per_field[i];
	uint64_t d = x - f->field_offset[i];	/* caller ensured x >= offset */
	bool over = bkey_fls64(d) > b;

	kbits_set(w, bkey_field_shift(f, i), b, over ? bkey_mask(b) : d);
	return over;
}

enum bkey_pack_pos_ret bkey_pack_pos_lossy(const struct bkey_format *f,
					   struct bpos p, uint64_t *out)
{
	uint64_t I = p.inode, O = p.offset, S = p.snapshot;
	bool exact = true;

	memset(out, 0, 8 * f->key_u64s);

	if (S < f->field_offset[BKEY_FIELD_SNAPSHOT]) {
		if (!O) {
			if (!I)
				return BKEY_PACK_POS_FAIL;
			I--;
		}
		O--;
		S = UINT32_MAX;
		exact = false;
	}
	if (O < f->field_offset[BKEY_FIELD_OFFSET]) {
		if (!I)
			return BKEY_PACK_POS_FAIL;
		I--;
		O = UINT64_MAX;
		S = UINT32_MAX;
		exact = false;
	}
	if (I < f->field_offset[BKEY_FIELD_INODE])
		return BKEY_PACK_POS_FAIL;

	if (pack_field_clamped(f, out, BKEY_FIELD_INODE, I)) {
		O = UINT64_MAX;
		S = UINT32_MAX;
		exact = false;
	}
	if (pack_field_clamped(f, out, BKEY_FIELD_OFFSET, O)) {
		S = UINT32_MAX;
		exact = false;
	}
	if (pack_field_clamped(f, out, BKEY_FIELD_SNAPSHOT, S))
		exact = false;

	pos_header(f, out);
	return exact ? BKEY_PACK_POS_EXACT : BKEY_PACK_POS_SMALLER;
}

/* ---- Packed comparison (10) ---- */

int bkey_cmp_packed(const struct bkey_format *f, const void *l, const void *r)
{
	const uint64_t *lw = l, *rw = r;
	unsigned nr = bkey_format_nr_key_bits(f);
	int i = f->key_u64s - 1;

	for (; nr >= 64; nr -= 64, i--)
		if (lw[i] != rw[i])
			return lw[i] < rw[i] ? -1 : 1;
	if (nr) {
		uint64_t a = lw[i] >> (64 - nr), b = rw[i] >> (64 - nr);

		if (a != b)
			return a < b ? -1 : 1;
	}
	return 0;
}

unsigned bkey_greatest_differing_bit(const struct bkey_format *f,
				     const void *l, const void *r)
{
	unsigned nr = bkey_format_nr_key_bits(f);
	unsigned lo = 64 * f->key_u64s - nr, bit;
	const uint64_t *lw = l, *rw = r;

	for (bit = 64 * f->key_u64s; bit-- > lo;) {
		uint64_t m = 1ULL << (bit % 64);

		if ((lw[bit / 64] ^ rw[bit / 64]) & m)
			return bit - lo;
	}
	return 0;
}

bool bkey_packed_successor(const struct bkey_format *f, uint64_t *k)
{
	unsigned nr = bkey_format_nr_key_bits(f);
	unsigned lo = 64 * f->key_u64s - nr, bit;

	for (bit = lo; bit < lo + nr; bit++) {
		uint64_t m = 1ULL << (bit % 64);

		k[bit / 64] ^= m;	/* add with carry: flip until a 0 became 1 */
		if (k[bit / 64] & m)
			return true;
	}
	/* all ones (or no key bits): undo the flips */
	for (bit = lo; bit < lo + nr; bit++)
		k[bit / 64] ^= 1ULL << (bit % 64);
	return false;
}

int bpos_cmp(struct bpos l, struct bpos r)
{
	if (l.inode != r.inode)
		return l.inode < r.inode ? -1 : 1;
	if (l.offset != r.offset)
		return l.offset < r.offset ? -1 : 1;
	if (l.snapshot != r.snapshot)
		return l.snapshot < r.snapshot ? -1 : 1;
	return 0;
}

bool bkey_format_byte_aligned(const struct bkey_format *f, struct bkey_byte_aligned *ba)
{
	unsigned i;

	for (i = 0; i < BKEY_NR_FIELDS; i++) {
		unsigned b = f->bits_per_field[i];
		unsigned msb = bkey_field_shift(f, i) + b - 1;

		if (!b) {
			ba->byte_offset[i] = BKEY_BA_SENTINEL;
			ba->shift[i] = 0;
			continue;
		}
		if (msb % 8 != 7)
			return false;
		ba->byte_offset[i] = (int)(msb + 1) / 8 - 8;
		ba->shift[i] = 64 - b;
	}
	return true;
}

/* ---- Text form ---- */

/* Parses "a,b,c,..." of exactly @n numbers (decimal or 0x-hex). */
static int parse_list(const char *tok, const char *name, uint64_t *v, unsigned n,
		      uint64_t max, char *err, size_t errlen)
{
	const char *s = tok;
	unsigned i;

	for (i = 0; i < n; i++) {
		char *end;

		if (*s == '-' || *s == '+' || *s == ' ' || !*s || *s == ',') {
			snprintf(err, errlen, "%s: expected %u numbers, got \"%s\"", name, n, tok);
			return -EINVAL;
		}
		errno = 0;
		v[i] = strtoull(s, &end, 0);
		if (end == s || errno == ERANGE || v[i] > max) {
			snprintf(err, errlen, "%s[%u]: \"%.*s\" is not a number in 0..%" PRIu64,
				 name, i, (int)strcspn(s, ", "), s, max);
			return -EINVAL;
		}
		s = end;
		if (i + 1 < n) {
			if (*s != ',') {
				snprintf(err, errlen, "%s: expected %u comma-separated numbers, got \"%s\"",
					 name, n, tok);
				return -EINVAL;
			}
			s++;
		}
	}
	if (*s && *s != ' ' && *s != '\t' && *s != '\n') {
		snprintf(err, errlen, "%s: trailing \"%s\" after %u numbers", name, s, n);
		return -EINVAL;
	}
	return 0;
}

int bkey_format_parse(const char *s, struct bkey_format *f, char *err, size_t errlen)
{
	bool have_ku = false, have_bits = false, have_offs = false;
	uint64_t v[BKEY_NR_FIELDS];
	unsigned i;

	memset(f, 0, sizeof(*f));
	f->nr_fields = BKEY_NR_FIELDS;
	while (*s) {
		size_t n;
		int ret;

		s += strspn(s, " \t\n");
		if (!*s)
			break;
		n = strcspn(s, " \t\n");
		if (!strncmp(s, "key_u64s=", 9)) {
			ret = parse_list(s + 9, "key_u64s", v, 1, 255, err, errlen);
			f->key_u64s = v[0];
			have_ku = true;
		} else if (!strncmp(s, "nr_fields=", 10)) {
			ret = parse_list(s + 10, "nr_fields", v, 1, 255, err, errlen);
			f->nr_fields = v[0];
		} else if (!strncmp(s, "bits=", 5)) {
			ret = parse_list(s + 5, "bits", v, BKEY_NR_FIELDS, 255, err, errlen);
			for (i = 0; i < BKEY_NR_FIELDS; i++)
				f->bits_per_field[i] = v[i];
			have_bits = true;
		} else if (!strncmp(s, "offsets=", 8)) {
			ret = parse_list(s + 8, "offsets", f->field_offset, BKEY_NR_FIELDS,
					 UINT64_MAX, err, errlen);
			have_offs = true;
		} else {
			snprintf(err, errlen, "unknown format token \"%.*s\" (want key_u64s=, bits=, offsets=)",
				 (int)n, s);
			return -EINVAL;
		}
		if (ret)
			return ret;
		s += n;
	}
	if (!have_ku || !have_bits || !have_offs) {
		snprintf(err, errlen, "format needs key_u64s=, bits= and offsets= (missing %s)",
			 !have_ku ? "key_u64s" : !have_bits ? "bits" : "offsets");
		return -EINVAL;
	}
	return 0;
}

void bkey_format_to_str(const struct bkey_format *f, char *buf, size_t len)
{
	const uint8_t *b = f->bits_per_field;
	const uint64_t *o = f->field_offset;

	snprintf(buf, len, "key_u64s=%u bits=%u,%u,%u,%u,%u,%u offsets="
		 "%#" PRIx64 ",%#" PRIx64 ",%#" PRIx64 ",%#" PRIx64 ",%#" PRIx64 ",%#" PRIx64,
		 f->key_u64s, b[0], b[1], b[2], b[3], b[4], b[5],
		 o[0], o[1], o[2], o[3], o[4], o[5]);
}

/* ---- Key streams ---- */

const char *bkey_stream_err_str(enum bkey_stream_err e)
{
	switch (e) {
	case BKEY_STREAM_OK:		return "ok";
	case BKEY_STREAM_U64S_ZERO:	return "key has u64s = 0";
	case BKEY_STREAM_PAST_END:	return "key runs past the end";
	case BKEY_STREAM_SHORT_KEY:	return "u64s smaller than the key";
	case BKEY_STREAM_BAD_FORMAT:	return "format byte is neither 0 (packed) nor 1 (unpacked)";
	case BKEY_STREAM_VAL_TOO_BIG:	return "value longer than 250 words";
	}
	return "?";
}

/*
 * The order of these checks is the order the generated programs use, so
 * the reference and the kernel report the same reason for the same key.
 */
enum bkey_stream_err bkey_stream_check(const struct bkey_format *f,
				       const uint64_t *words, size_t nr_words,
				       size_t pos, unsigned *key_words)
{
	const uint8_t *h = (const uint8_t *)&words[pos];
	unsigned fmt = h[1] & 0x7f, u64s = h[0], kw;

	if (fmt == KEY_FORMAT_LOCAL_BTREE)
		kw = f->key_u64s;
	else if (fmt == KEY_FORMAT_CURRENT)
		kw = BKEY_U64s;
	else
		return BKEY_STREAM_BAD_FORMAT;
	if (!u64s)
		return BKEY_STREAM_U64S_ZERO;
	if (u64s < kw)
		return BKEY_STREAM_SHORT_KEY;
	if (u64s - kw > BKEY_VAL_U64s_MAX)
		return BKEY_STREAM_VAL_TOO_BIG;
	if (u64s > nr_words - pos)
		return BKEY_STREAM_PAST_END;
	*key_words = kw;
	return BKEY_STREAM_OK;
}

size_t bkey_unpack_stream(const struct bkey_format *f, const uint64_t *words, size_t nr_words,
			  struct bkey *out)
{
	size_t pos, n = 0;

	for (pos = 0; pos < nr_words; pos += ((const uint8_t *)&words[pos])[0])
		bkey_unpack_key(f, &words[pos], &out[n++]);
	return n;
}

enum bkey_stream_err bkey_stream_walk(const struct bkey_format *f, const uint64_t *words,
				      size_t nr_words, size_t *nr_keys, size_t *bad_pos)
{
	size_t pos = 0, n = 0;
	unsigned kw;

	while (pos < nr_words) {
		enum bkey_stream_err err = bkey_stream_check(f, words, nr_words, pos, &kw);

		if (err) {
			*nr_keys = n;
			*bad_pos = pos;
			return err;
		}
		pos += ((const uint8_t *)&words[pos])[0];
		n++;
	}
	*nr_keys = n;
	*bad_pos = pos;
	return BKEY_STREAM_OK;
}
