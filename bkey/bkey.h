/* SPDX-License-Identifier: GPL-2.0 */
/*
 * bkey: the bcachefs key-packing model shared by gen/, user/ and tests/.
 *
 * Everything here follows ../shared/spec/bkey-format.md (section numbers
 * in comments refer to it).  Little-endian hosts only.  This file knows
 * nothing of BPF.
 */
#ifndef BKEY_BKEY_H
#define BKEY_BKEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "bkey-bpf models the little-endian layout only"
#endif

/* Section 1 */
#define BKEY_U64s			5
#define BKEY_U64s_MAX			255
#define BKEY_VAL_U64s_MAX		250
#define KEY_PACKED_BITS_START		24
#define KEY_FORMAT_LOCAL_BTREE		0
#define KEY_FORMAT_CURRENT		1
#define BKEY_NR_FIELDS			6
#define KEY_TYPE_deleted		0
#define KEY_TYPE_whiteout		1
#define KEY_TYPE_btree_ptr_v2		18

enum bkey_field {
	BKEY_FIELD_INODE,
	BKEY_FIELD_OFFSET,
	BKEY_FIELD_SNAPSHOT,
	BKEY_FIELD_SIZE,
	BKEY_FIELD_VERSION_HI,
	BKEY_FIELD_VERSION_LO,
};

struct bpos {
	uint64_t inode;
	uint64_t offset;
	uint32_t snapshot;
};

/* Section 2: the unpacked key, 40 bytes.  Byte 1 holds format (bits 0-6)
 * and needs_whiteout (bit 7); we keep it as one byte to avoid bitfield
 * layout questions. */
struct bkey {
	uint8_t		u64s;
	uint8_t		format_nw;
	uint8_t		type;
	uint8_t		pad;
	uint64_t	version_lo;	/* offset 4: unaligned, hence packed */
	uint32_t	version_hi;
	uint32_t	size;
	uint32_t	snapshot;
	uint64_t	offset;
	uint64_t	inode;
} __attribute__((packed, aligned(8)));

_Static_assert(sizeof(struct bkey) == 40, "struct bkey is 40 bytes");
_Static_assert(offsetof(struct bkey, u64s) == 0, "u64s at 0");
_Static_assert(offsetof(struct bkey, format_nw) == 1, "format at 1");
_Static_assert(offsetof(struct bkey, type) == 2, "type at 2");
_Static_assert(offsetof(struct bkey, pad) == 3, "pad at 3");
_Static_assert(offsetof(struct bkey, version_lo) == 4, "version_lo at 4");
_Static_assert(offsetof(struct bkey, version_hi) == 12, "version_hi at 12");
_Static_assert(offsetof(struct bkey, size) == 16, "size at 16");
_Static_assert(offsetof(struct bkey, snapshot) == 20, "snapshot at 20");
_Static_assert(offsetof(struct bkey, offset) == 24, "offset at 24");
_Static_assert(offsetof(struct bkey, inode) == 32, "inode at 32");

/* Section 4: a packed key is key_u64s words; byte 0-2 are the header. */
struct bkey_packed {
	uint8_t		u64s;
	uint8_t		format_nw;
	uint8_t		type;
	uint8_t		key_start[5];
	uint64_t	words[];	/* the rest of the key words, then value */
} __attribute__((aligned(8)));

_Static_assert(offsetof(struct bkey_packed, format_nw) == 1, "format at 1");
_Static_assert(offsetof(struct bkey_packed, words) == 8, "word 1 at 8");

/* Section 3: the format descriptor, 56 bytes. */
struct bkey_format {
	uint8_t		key_u64s;
	uint8_t		nr_fields;
	uint8_t		bits_per_field[BKEY_NR_FIELDS];
	uint64_t	field_offset[BKEY_NR_FIELDS];
};

_Static_assert(sizeof(struct bkey_format) == 56, "struct bkey_format is 56 bytes");
_Static_assert(offsetof(struct bkey_format, bits_per_field) == 2, "bits at 2");
_Static_assert(offsetof(struct bkey_format, field_offset) == 8, "offsets at 8");

static inline struct bpos bkey_pos(const struct bkey *k)
{
	return (struct bpos){ k->inode, k->offset, k->snapshot };
}

/* The position before @p (not POS_MIN): snapshot, then offset, then inode borrow. */
static inline struct bpos bpos_predecessor(struct bpos p)
{
	if (p.snapshot--)
		return p;
	if (p.offset--)
		return p;
	--p.inode;
	return p;
}

/* The next position: snapshot, then offset, then inode carry. */
static inline struct bpos bpos_successor(struct bpos p)
{
	if (++p.snapshot)
		return p;
	if (++p.offset)
		return p;
	++p.inode;
	return p;
}

static inline unsigned bkey_format_byte(const void *k)
{
	return ((const uint8_t *)k)[1] & 0x7f;
}

/* Words key @k takes before its value: key_u64s packed, 5 stored unpacked. */
static inline unsigned bkey_key_words(const struct bkey_format *f, const void *k)
{
	return bkey_format_byte(k) == KEY_FORMAT_LOCAL_BTREE ? f->key_u64s : BKEY_U64s;
}

static inline bool bkey_needs_whiteout(const void *k)
{
	return ((const uint8_t *)k)[1] & 0x80;
}

/* Unpacked width U of each field (section 1). */
extern const unsigned bkey_field_width[BKEY_NR_FIELDS];
extern const char *const bkey_field_name[BKEY_NR_FIELDS];
extern const struct bkey_format bkey_format_current;

static inline uint64_t bkey_mask(unsigned bits)
{
	return bits >= 64 ? ~0ULL : (1ULL << bits) - 1;
}

static inline unsigned bkey_fls64(uint64_t v)
{
	return v ? 64 - __builtin_clzll(v) : 0;
}

unsigned bkey_format_total_bits(const struct bkey_format *f);
unsigned bkey_format_nr_key_bits(const struct bkey_format *f);
/* Shift s_i of field i within the key integer K (section 4.2). */
unsigned bkey_field_shift(const struct bkey_format *f, unsigned field);

/* ---- Validation (section 9.1) ---- */

enum bkey_format_rule {
	BKEY_FMT_OK,
	BKEY_FMT_NR_FIELDS,		/* nr_fields != 6 */
	BKEY_FMT_FIELD_TOO_WIDE,	/* bits > unpacked width */
	BKEY_FMT_FULL_WIDTH_OFFSET,	/* bits == width and offset != 0 */
	BKEY_FMT_OFFSET_OVERFLOW,	/* offset + mask(bits) exceeds the slot */
	BKEY_FMT_KEY_U64S,		/* key_u64s != ceil((24 + sum)/64) */
};

struct bkey_format_err {
	enum bkey_format_rule	rule;
	int			field;		/* -1 when not field-specific */
	uint64_t		value;		/* the offending value */
	uint64_t		limit;		/* what the rule wanted */
};

/* Returns 0 if valid; otherwise -EINVAL and *err says why. */
int bkey_format_validate(const struct bkey_format *f, struct bkey_format_err *err);
/* Human-readable reason: "field snapshot: offset 0x... + mask(8) ...". */
void bkey_format_err_str(const struct bkey_format_err *err, char *buf, size_t len);
const char *bkey_format_rule_name(enum bkey_format_rule rule);

/* ---- Format computation (section 8) ---- */

enum bkey_format_era {
	BKEY_FORMAT_ERA_CURRENT,	/* since May 2026: no size reservation */
	BKEY_FORMAT_ERA_2023,		/* Aug 2023 - May 2026: size += min(4, 32 - bits) */
	BKEY_FORMAT_ERA_2017,		/* 2017 - Aug 2023: size += 4, may exceed 32 */
};

struct bkey_format_state {
	uint64_t field_min[BKEY_NR_FIELDS];
	uint64_t field_max[BKEY_NR_FIELDS];
};

void bkey_format_init(struct bkey_format_state *s);
void bkey_format_add_pos(struct bkey_format_state *s, struct bpos p);
void bkey_format_add_key(struct bkey_format_state *s, const struct bkey *k);
struct bkey_format bkey_format_done(const struct bkey_format_state *s,
				    enum bkey_format_era era);

/* ---- Pack and unpack (sections 5, 6) ---- */

enum bkey_pack_fail {
	BKEY_PACK_OK,
	BKEY_PACK_BELOW_OFFSET,		/* value < field offset */
	BKEY_PACK_TOO_WIDE,		/* fls(value - offset) > bits */
	BKEY_PACK_NOT_UNPACKED,		/* input's format byte is not 1 */
	BKEY_PACK_VAL_TOO_BIG,		/* value words would overflow u64s */
};

struct bkey_pack_err {
	enum bkey_pack_fail	why;
	int			field;
	uint64_t		value;
};

/* Field values of an unpacked key, in field-index order. */
void bkey_fields(const struct bkey *k, uint64_t out[BKEY_NR_FIELDS]);
/* The inverse: the 32-bit slots keep the low 32 bits (spec 5.1 step 3). */
void bkey_set_fields(struct bkey *k, const uint64_t v[BKEY_NR_FIELDS]);
const char *bkey_pack_fail_name(enum bkey_pack_fail why);

/*
 * Pack key @in (format byte 1) into @out (key_u64s words, zeroed first).
 * The header gets u64s = key_u64s + in->u64s - 5.  The value is not
 * copied.  Returns 0, or -1 with *err set (err may be NULL).
 */
int bkey_pack_key(const struct bkey_format *f, const struct bkey *in,
		  uint64_t *out, struct bkey_pack_err *err);

/*
 * Reference unpack of a key in format @f (spec 5.2 streaming algorithm).
 * Packed keys (format byte 0) are decoded; others are copied (40 bytes).
 */
void bkey_unpack_key(const struct bkey_format *f, const void *in, struct bkey *out);
/* Only the position of a packed key. */
struct bpos bkey_unpack_pos(const struct bkey_format *f, const void *in);

/* ---- Position packing (section 7) ---- */

enum bkey_pack_pos_ret {
	BKEY_PACK_POS_EXACT,
	BKEY_PACK_POS_SMALLER,
	BKEY_PACK_POS_FAIL,
};

/* Exact: returns 0 and fills @out (key_u64s words), or -1. */
int bkey_pack_pos(const struct bkey_format *f, struct bpos p, uint64_t *out);
enum bkey_pack_pos_ret bkey_pack_pos_lossy(const struct bkey_format *f,
					   struct bpos p, uint64_t *out);

/* ---- Packed comparison (section 10) ---- */

int bkey_cmp_packed(const struct bkey_format *f, const void *l, const void *r);
unsigned bkey_greatest_differing_bit(const struct bkey_format *f,
				     const void *l, const void *r);
/* Adds 1 to the key bits; returns false if they were all ones or none. */
bool bkey_packed_successor(const struct bkey_format *f, uint64_t *k);
int bpos_cmp(struct bpos l, struct bpos r);

/*
 * Upstream's byte-aligned fast path (section 5.4): for each nonzero field
 * an unaligned 8-byte load at byte_offset (may be negative, down to -7)
 * shifted right by shift.  Returns false if the format does not qualify.
 * Zero-width fields get byte_offset = BKEY_BA_SENTINEL.
 */
#define BKEY_BA_SENTINEL	INT8_MIN
struct bkey_byte_aligned {
	int8_t	byte_offset[BKEY_NR_FIELDS];
	uint8_t	shift[BKEY_NR_FIELDS];
};
bool bkey_format_byte_aligned(const struct bkey_format *f, struct bkey_byte_aligned *ba);

/* ---- Text form of a format: "key_u64s=K bits=.. offsets=.." ---- */

/* Parses @s into @f (nr_fields set to 6). Returns 0 or -EINVAL with a
 * message in @err naming the token. Does not validate. */
int bkey_format_parse(const char *s, struct bkey_format *f, char *err, size_t errlen);
void bkey_format_to_str(const struct bkey_format *f, char *buf, size_t len);

/* ---- Key streams (bset-style, walked by u64s) ---- */

enum bkey_stream_err {
	BKEY_STREAM_OK,
	BKEY_STREAM_U64S_ZERO,
	BKEY_STREAM_PAST_END,		/* the key runs past the end */
	BKEY_STREAM_SHORT_KEY,		/* u64s smaller than the key */
	BKEY_STREAM_BAD_FORMAT,		/* format byte neither 0 nor 1 */
	BKEY_STREAM_VAL_TOO_BIG,	/* value over 250 words */
};

const char *bkey_stream_err_str(enum bkey_stream_err e);
/*
 * Checks the key at word @pos of a stream of @nr_words words.  On success
 * returns BKEY_STREAM_OK and sets *key_words (key_u64s or 5).
 */
enum bkey_stream_err bkey_stream_check(const struct bkey_format *f,
				       const uint64_t *words, size_t nr_words,
				       size_t pos, unsigned *key_words);
/*
 * Generic C over a whole stream, in the shape of bcachefs's portable
 * unpack of a bset: walked by u64s, each key by bkey_unpack_key() into
 * out[].  The stream must have passed bkey_stream_walk().  Returns how
 * many keys.
 */
size_t bkey_unpack_stream(const struct bkey_format *f, const uint64_t *words, size_t nr_words,
			  struct bkey *out);
/*
 * Checks a whole stream.  Returns BKEY_STREAM_OK with *nr_keys, or the
 * first bad key's reason with *nr_keys keys before it at word *bad_pos.
 */
enum bkey_stream_err bkey_stream_walk(const struct bkey_format *f, const uint64_t *words,
				      size_t nr_words, size_t *nr_keys, size_t *bad_pos);

#endif /* BKEY_BKEY_H */
