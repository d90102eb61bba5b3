// SPDX-License-Identifier: GPL-2.0
/*
 * The straight-line plan (spec 5.3): every field's word, shift and width
 * are constants once the format is known.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "gen.h"

/* Where each field lands in struct bkey, and its slot width. */
static const uint8_t slot_off[BKEY_NR_FIELDS] = { 32, 24, 20, 16, 12, 4 };
static const uint8_t slot_size[BKEY_NR_FIELDS] = { 8, 8, 4, 4, 4, 8 };

int bk_plan_format(const struct bkey_format *f, struct bk_plan *plan,
		   struct bkey_format_err *err)
{
	unsigned i;
	int ret;

	ret = bkey_format_validate(f, err);
	if (ret)
		return ret;

	memset(plan, 0, sizeof(*plan));
	plan->f = *f;
	plan->key_u64s = f->key_u64s;
	/* u64s += 5 - key_u64s and format 0 -> 1, in one 32-bit add */
	plan->header_add = (BKEY_U64s - f->key_u64s) + (KEY_FORMAT_CURRENT << 8);

	for (i = 0; i < BKEY_NR_FIELDS; i++) {
		struct bk_field_plan *fp = &plan->fp[i];
		unsigned b = f->bits_per_field[i], s = bkey_field_shift(f, i);

		fp->field = i;
		fp->bits = b;
		fp->offset = f->field_offset[i];
		fp->slot_off = slot_off[i];
		fp->slot_size = slot_size[i];
		fp->kbit = s;
		fp->word = s / 64;
		fp->sh = s % 64;
		if (!b)
			fp->kind = BK_FIELD_CONST;
		else if (fp->sh + b > 64)
			fp->kind = BK_FIELD_STRADDLE;
		else
			fp->kind = BK_FIELD_WORD;
	}
	return 0;
}

void bk_field_line(const struct bk_field_plan *fp, char *buf, size_t len)
{
	const char *name = bkey_field_name[fp->field];
	const char *ty = fp->slot_size == 8 ? "u64" : "u32";
	unsigned hi = fp->kbit + fp->bits - 1;

	switch (fp->kind) {
	case BK_FIELD_CONST:
		snprintf(buf, len, "%s: 0 bits, constant offset %#" PRIx64 " -> bkey+%u (%s)",
			 name, fp->offset, fp->slot_off, ty);
		break;
	case BK_FIELD_WORD:
		snprintf(buf, len, "%s: K[%u..%u] = w%u[%u..%u] (%u bits) + offset %#" PRIx64
			 " -> bkey+%u (%s)", name, fp->kbit, hi, fp->word, fp->sh,
			 fp->sh + fp->bits - 1, fp->bits, fp->offset, fp->slot_off, ty);
		break;
	case BK_FIELD_STRADDLE:
		snprintf(buf, len, "%s: K[%u..%u] = w%u[%u..63] | w%u[0..%u] (%u bits) + offset %#"
			 PRIx64 " -> bkey+%u (%s)", name, fp->kbit, hi, fp->word, fp->sh,
			 fp->word + 1, fp->sh + fp->bits - 65, fp->bits, fp->offset,
			 fp->slot_off, ty);
		break;
	}
}

/* FNV-1a over the 56 format bytes: stable across runs and hosts. */
static uint64_t format_hash(const struct bkey_format *f)
{
	const uint8_t *p = (const uint8_t *)f;
	uint64_t h = 0xcbf29ce484222325ULL;
	size_t i;

	for (i = 0; i < sizeof(*f); i++) {
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

void bk_prog_names(const struct bkey_format *f, char name[16], char func_name[64])
{
	const uint8_t *b = f->bits_per_field;
	uint64_t h = format_hash(f) >> 20;	/* 44 bits: 11 hex digits */

	/* "bk<key_u64s>_<hash>": 15 characters, the kernel's limit */
	snprintf(name, 16, "bk%u_%011" PRIx64, f->key_u64s % 10, h);
	/* the BTF name, which bpftool shows in full: widths and the hash */
	snprintf(func_name, 64, "bk%u_b%u_%u_%u_%u_%u_%u_%011" PRIx64, f->key_u64s % 10,
		 b[0], b[1], b[2], b[3], b[4], b[5], h);
}

/* Shape programs' names: "bk<key_u64s>s<hash of the shape>". */
void bk_prog_names_shape(const struct bkey_format *f, char name[16], char func_name[64])
{
	struct bkey_format shape = { .key_u64s = f->key_u64s, .nr_fields = f->nr_fields };
	const uint8_t *b = f->bits_per_field;
	uint64_t h;

	memcpy(shape.bits_per_field, f->bits_per_field, sizeof(shape.bits_per_field));
	h = format_hash(&shape) >> 20;
	snprintf(name, 16, "bk%us%011" PRIx64, f->key_u64s % 10, h);
	snprintf(func_name, 64, "bk%us_b%u_%u_%u_%u_%u_%u_%011" PRIx64, f->key_u64s % 10,
		 b[0], b[1], b[2], b[3], b[4], b[5], h);
}

void bk_unpack_template(const struct bkey_format *f, void *tmpl)
{
	struct bkey t = {
		.version_lo = f->field_offset[BKEY_FIELD_VERSION_LO],
		.version_hi = (uint32_t)f->field_offset[BKEY_FIELD_VERSION_HI],
		.size = (uint32_t)f->field_offset[BKEY_FIELD_SIZE],
		.snapshot = (uint32_t)f->field_offset[BKEY_FIELD_SNAPSHOT],
		.offset = f->field_offset[BKEY_FIELD_OFFSET],
		.inode = f->field_offset[BKEY_FIELD_INODE],
	};

	/* the header's bytes: the constant the header transform adds */
	uint32_t header_add = (BKEY_U64s - f->key_u64s) + (KEY_FORMAT_CURRENT << 8);

	_Static_assert(sizeof(t) == BK_TMPL_SIZE, "a template is a struct bkey");
	memcpy(&t, &header_add, sizeof(header_add));
	memcpy(tmpl, &t, sizeof(t));
}
