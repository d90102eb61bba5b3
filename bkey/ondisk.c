// SPDX-License-Identifier: GPL-2.0
/*
 * Reading bcachefs's on-disk structures from a buffer.  Offsets are the
 * ones the data README (section 5) lists and were checked on three images
 * written by bcachefs-tools v0.27; everything is little-endian.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ondisk.h"

const char *const bch_btree_name[BCH_BTREE_ID_NR] = {
	"extents", "inodes", "dirents", "xattrs", "alloc", "quotas", "stripes",
	"reflink", "subvolumes", "snapshots", "lru", "freespace", "need_discard",
	"backpointers", "bucket_gens",
};

int bch_btree_id(const char *name)
{
	unsigned i;

	for (i = 0; i < BCH_BTREE_ID_NR; i++)
		if (!strcmp(name, bch_btree_name[i]))
			return i;
	return -1;
}

/* bcachefs's bkey types in metadata version 27, by number. */
static const char *const key_type_name[] = {
	"deleted", "whiteout", "error", "cookie", "hash_whiteout", "btree_ptr",
	"extent", "reservation", "inode", "inode_generation", "dirent", "xattr",
	"alloc", "quota", "stripe", "reflink_p", "reflink_v", "inline_data",
	"btree_ptr_v2", "indirect_inline_data", "alloc_v2", "subvolume", "snapshot",
	"inode_v2", "alloc_v3", "set", "lru", "alloc_v4", "backpointer", "inode_v3",
	"bucket_gens",
};

const char *bch_key_type_name(unsigned type)
{
	return type < sizeof(key_type_name) / sizeof(key_type_name[0]) ? key_type_name[type] : NULL;
}

/* ---- CRC-32C (Castagnoli, reflected), table-driven ---- */

static uint32_t crc32c_table[8][256];

static void crc32c_init(void)
{
	uint32_t i, j, c;

	for (i = 0; i < 256; i++) {
		for (c = i, j = 0; j < 8; j++)
			c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
		crc32c_table[0][i] = c;
	}
	for (i = 0; i < 256; i++)
		for (j = 1; j < 8; j++)
			crc32c_table[j][i] = (crc32c_table[j - 1][i] >> 8) ^
					     crc32c_table[0][crc32c_table[j - 1][i] & 0xff];
}

/* The raw update: no initial or final inversion (callers add them). */
uint32_t bch_crc32c(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	if (!crc32c_table[0][1])
		crc32c_init();
	while (len >= 8) {
		uint64_t w;

		memcpy(&w, p, 8);
		w ^= crc;
		crc = crc32c_table[7][w & 0xff] ^ crc32c_table[6][(w >> 8) & 0xff] ^
		      crc32c_table[5][(w >> 16) & 0xff] ^ crc32c_table[4][(w >> 24) & 0xff] ^
		      crc32c_table[3][(w >> 32) & 0xff] ^ crc32c_table[2][(w >> 40) & 0xff] ^
		      crc32c_table[1][(w >> 48) & 0xff] ^ crc32c_table[0][w >> 56];
		p += 8;
		len -= 8;
	}
	while (len--)
		crc = (crc >> 8) ^ crc32c_table[0][(crc ^ *p++) & 0xff];
	return crc;
}

/* bcachefs's crc32c_nonzero: the standard CRC-32C. */
static uint32_t csum_crc32c_nonzero(const void *buf, size_t len)
{
	return ~bch_crc32c(~0u, buf, len);
}

static uint16_t le16_at(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static uint32_t le32_at(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t le64_at(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

/* struct bpos on disk: snapshot u32, offset u64, inode u64 (20 bytes). */
static struct bpos bpos_at(const uint8_t *p)
{
	return (struct bpos){ .snapshot = le32_at(p), .offset = le64_at(p + 4),
			      .inode = le64_at(p + 12) };
}

void bch_pos_str(struct bpos p, char *buf, size_t len)
{
	char ino[24], off[24], snap[16];

	if (!p.inode && !p.offset && !p.snapshot) {
		snprintf(buf, len, "POS_MIN");
		return;
	}
	if (p.inode == UINT64_MAX && p.offset == UINT64_MAX) {
		if (p.snapshot == UINT32_MAX) {
			snprintf(buf, len, "SPOS_MAX");
			return;
		}
		if (!p.snapshot) {
			snprintf(buf, len, "POS_MAX");
			return;
		}
	}
	if (p.inode == UINT64_MAX)
		snprintf(ino, sizeof(ino), "U64_MAX");
	else
		snprintf(ino, sizeof(ino), "%llu", (unsigned long long)p.inode);
	if (p.offset == UINT64_MAX)
		snprintf(off, sizeof(off), "U64_MAX");
	else
		snprintf(off, sizeof(off), "%llu", (unsigned long long)p.offset);
	if (p.snapshot == UINT32_MAX)
		snprintf(snap, sizeof(snap), "U32_MAX");
	else
		snprintf(snap, sizeof(snap), "%u", p.snapshot);
	snprintf(buf, len, "%s:%s:%s", ino, off, snap);
}

/* ---- btree_ptr_v2 ---- */

/*
 * The value: mem_ptr u64, seq u64, sectors_written u16, flags u16,
 * min_key bpos (20 bytes), then extent entries.  A pointer entry is one
 * u64 whose lowest set bit is bit 0 (entry type ptr): cached bit 1,
 * sector offset bits 4-47, dev bits 48-55, gen bits 56-63.
 */
int bch_ptr_parse(const struct bkey *k, const uint64_t *val, struct bch_btree_ptr *p,
		  char *err, size_t errlen)
{
	const uint8_t *v = (const uint8_t *)val;
	unsigned val_bytes = 8 * (k->u64s - BKEY_U64s), nr_ptrs = 0, off;
	uint64_t e;

	if (k->type != KEY_TYPE_btree_ptr_v2) {
		snprintf(err, errlen, "key type %u: not a btree_ptr_v2 (%u)", k->type,
			 KEY_TYPE_btree_ptr_v2);
		return -EINVAL;
	}
	if (k->u64s < BKEY_U64s || val_bytes < BCH_PTR_V2_HDR_BYTES + 8) {
		snprintf(err, errlen, "btree_ptr_v2 value of %u bytes: less than one pointer",
			 val_bytes);
		return -EINVAL;
	}
	memset(p, 0, sizeof(*p));
	p->max_key = (struct bpos){ k->inode, k->offset, k->snapshot };
	p->seq = le64_at(v + 8);
	p->sectors_written = le16_at(v + 16);
	p->min_key = bpos_at(v + 20);
	for (off = BCH_PTR_V2_HDR_BYTES; off + 8 <= val_bytes; off += 8) {
		e = le64_at(v + off);
		if (!(e & 1)) {
			snprintf(err, errlen, "btree_ptr_v2 entry 0x%016llx: not a pointer",
				 (unsigned long long)e);
			return -EINVAL;
		}
		if (!nr_ptrs++) {
			p->sector = (e >> 4) & ((1ULL << 44) - 1);
			p->dev = (e >> 48) & 0xff;
			p->gen = e >> 56;
		}
	}
	if (nr_ptrs != 1) {
		snprintf(err, errlen, "btree_ptr_v2 with %u pointers: only one (one device) "
			 "is supported", nr_ptrs);
		return -EPROTONOSUPPORT;
	}
	if (p->dev) {
		snprintf(err, errlen, "btree_ptr_v2 on device %u: only device 0 is supported",
			 p->dev);
		return -EPROTONOSUPPORT;
	}
	if (!p->sectors_written) {
		snprintf(err, errlen, "btree_ptr_v2 with sectors_written 0");
		return -EINVAL;
	}
	return 0;
}

void bch_ptr_str(const struct bch_btree_ptr *p, unsigned bucket_sectors, char *buf, size_t len)
{
	unsigned bs = bucket_sectors ? bucket_sectors : 1;

	snprintf(buf, len, "%u:%llu:%llu", p->dev, (unsigned long long)(p->sector / bs),
		 (unsigned long long)(p->sector % bs));
}

/* ---- Superblock ---- */

#define SB_FIELD_MEMBERS	1
#define SB_FIELD_CLEAN		6
#define JSET_ENTRY_BTREE_ROOT	1

static const uint8_t bchfs_magic[16] = {
	0xc6, 0x85, 0x73, 0xf6, 0x66, 0xce, 0x90, 0xa9,
	0xd9, 0x6a, 0x60, 0xcf, 0x80, 0x3d, 0xf7, 0xef,
};
static const uint8_t bcache_magic[16] = {	/* older bcachefs superblocks */
	0xc6, 0x85, 0x73, 0xf6, 0x4e, 0x1a, 0x45, 0xca,
	0x82, 0x65, 0xf5, 0x7f, 0x48, 0xba, 0x6d, 0x81,
};

#define BSET_MAGIC		0x90135c78b99e07f5ULL

/* One jset_entry of the clean section: a btree root, or skipped. */
static int sb_clean_entry(struct bch_sb_info *sb, const uint8_t *e, size_t bytes,
			  char *err, size_t errlen)
{
	unsigned btree_id = e[2], level = e[3], type = e[4];
	struct bkey k;
	int ret;

	if (type != JSET_ENTRY_BTREE_ROOT)
		return 0;
	if (btree_id >= BCH_BTREE_ID_NR) {
		snprintf(err, errlen, "superblock clean section: btree root of unknown btree %u",
			 btree_id);
		return -EPROTONOSUPPORT;
	}
	if (level >= BCH_BTREE_MAX_DEPTH) {
		snprintf(err, errlen, "superblock clean section: %s root at level %u (max %u)",
			 bch_btree_name[btree_id], level, BCH_BTREE_MAX_DEPTH - 1);
		return -EINVAL;
	}
	if (bytes < 8 + sizeof(k)) {
		snprintf(err, errlen, "superblock clean section: %s root entry too short",
			 bch_btree_name[btree_id]);
		return -EINVAL;
	}
	memcpy(&k, e + 8, sizeof(k));
	if (bkey_format_byte(&k) != KEY_FORMAT_CURRENT || k.u64s < BKEY_U64s ||
	    8 + 8 * (size_t)k.u64s > bytes) {
		snprintf(err, errlen, "superblock clean section: %s root key u64s %u format %u "
			 "does not fit its entry", bch_btree_name[btree_id], k.u64s,
			 bkey_format_byte(&k));
		return -EINVAL;
	}
	{
		uint64_t val[BKEY_U64s_MAX];
		char why[160];

		memcpy(val, e + 8 + sizeof(k), 8 * (k.u64s - BKEY_U64s));
		ret = bch_ptr_parse(&k, val, &sb->roots[btree_id].ptr, why, sizeof(why));
		if (ret) {
			snprintf(err, errlen, "superblock clean section: %s root: %s",
				 bch_btree_name[btree_id], why);
			return ret;
		}
	}
	if (!sb->roots[btree_id].present)
		sb->nr_roots++;
	sb->roots[btree_id].present = true;
	sb->roots[btree_id].level = level;
	return 0;
}

static int sb_clean(struct bch_sb_info *sb, const uint8_t *f, size_t bytes, char *err, size_t errlen)
{
	size_t off = 24;		/* field header, flags, clocks, journal_seq */
	int ret;

	if (bytes < off) {
		snprintf(err, errlen, "superblock clean section of %zu bytes: too short", bytes);
		return -EINVAL;
	}
	sb->clean_journal_seq = le64_at(f + 16);
	while (off + 8 <= bytes) {
		size_t entry = 8 + 8 * (size_t)le16_at(f + off);

		if (off + entry > bytes) {
			snprintf(err, errlen, "superblock clean section: entry at byte %zu runs "
				 "past the section (%zu bytes)", off, bytes);
			return -EINVAL;
		}
		ret = sb_clean_entry(sb, f + off, entry, err, errlen);
		if (ret)
			return ret;
		off += entry;
	}
	return 0;
}

int bch_sb_read(const uint8_t *img, size_t size, struct bch_sb_info *sb, char *err, size_t errlen)
{
	const size_t at = BCH_SB_SECTOR * BCH_SECTOR_SIZE;
	const uint8_t *s = img + at;
	uint64_t flags0, uuid_lo;
	size_t bytes, off;
	bool clean_seen = false;
	int ret;

	memset(sb, 0, sizeof(*sb));
	if (size < at + BCH_SB_HDR_BYTES) {
		snprintf(err, errlen, "image of %zu bytes: too short for a superblock at byte %zu",
			 size, at);
		return -ERANGE;
	}
	if (memcmp(s + 24, bchfs_magic, 16) && memcmp(s + 24, bcache_magic, 16)) {
		snprintf(err, errlen, "no bcachefs superblock at byte %zu: wrong magic "
			 "%02x%02x%02x%02x-...", at, s[24], s[25], s[26], s[27]);
		return -EINVAL;
	}
	sb->version = le16_at(s + 16);
	sb->version_min = le16_at(s + 18);
	if (sb->version < BCH_VERSION_MIN_SUPPORTED || sb->version > BCH_VERSION_MAX_SUPPORTED ||
	    sb->version_min < BCH_VERSION_MIN_SUPPORTED) {
		snprintf(err, errlen, "metadata version %u (oldest on disk %u): unsupported; "
			 "this reader knows version %u..%u (fragmentation_lru, bcachefs-tools v0.27)",
			 sb->version, sb->version_min, BCH_VERSION_MIN_SUPPORTED,
			 BCH_VERSION_MAX_SUPPORTED);
		return -EPROTONOSUPPORT;
	}
	bytes = BCH_SB_HDR_BYTES + 8 * (size_t)le32_at(s + 124);
	if (bytes > BCH_SB_MAX_BYTES || at + bytes > size) {
		snprintf(err, errlen, "superblock of %zu bytes (u64s %u) runs past the image "
			 "(%zu bytes)", bytes, le32_at(s + 124), size);
		return -ERANGE;
	}
	flags0 = le64_at(s + 144);
	if (((flags0 >> 2) & 0x3f) != BCH_CSUM_CRC32C_NONZERO) {
		snprintf(err, errlen, "superblock checksum type %u: only crc32c (%u) is supported",
			 (unsigned)((flags0 >> 2) & 0x3f), BCH_CSUM_CRC32C_NONZERO);
		return -EPROTONOSUPPORT;
	}
	sb->csum_stored = le32_at(s);
	sb->csum_computed = csum_crc32c_nonzero(s + 16, bytes - 16);
	if (sb->csum_stored != sb->csum_computed || le32_at(s + 4) || le64_at(s + 8)) {
		snprintf(err, errlen, "superblock at byte %zu: checksum 0x%08x, computed 0x%08x",
			 at, sb->csum_stored, sb->csum_computed);
		return -EBADMSG;
	}
	memcpy(sb->uuid, s + 40, 16);
	memcpy(sb->user_uuid, s + 56, 16);
	memcpy(sb->label, s + 72, 32);
	sb->seq = le64_at(s + 112);
	sb->block_bytes = le16_at(s + 120) * BCH_SECTOR_SIZE;
	sb->nr_devices = s[123];
	sb->clean = (flags0 >> 1) & 1;
	sb->node_bytes = ((flags0 >> 12) & 0xffff) * BCH_SECTOR_SIZE;
	memcpy(&uuid_lo, sb->uuid, 8);
	sb->node_magic = uuid_lo ^ BSET_MAGIC;
	if (!sb->block_bytes || sb->block_bytes > 65536 || !sb->node_bytes ||
	    sb->node_bytes > BCH_NODE_BYTES_MAX || sb->node_bytes % sb->block_bytes) {
		snprintf(err, errlen, "superblock: block size %u, btree node size %u bytes: "
			 "invalid", sb->block_bytes, sb->node_bytes);
		return -EINVAL;
	}
	if (sb->nr_devices != 1) {
		snprintf(err, errlen, "%u devices: only single-device filesystems are supported",
			 sb->nr_devices);
		return -EPROTONOSUPPORT;
	}
	for (off = BCH_SB_HDR_BYTES; off + 8 <= bytes;) {
		size_t fbytes = 8 * (size_t)le32_at(s + off);
		unsigned type = le32_at(s + off + 4);

		if (!fbytes || off + fbytes > bytes) {
			snprintf(err, errlen, "superblock field %u at byte %zu: %zu bytes, past the "
				 "superblock's %zu", type, off, fbytes, bytes);
			return -EINVAL;
		}
		if (type == SB_FIELD_MEMBERS && fbytes >= 8 + 28)
			sb->bucket_sectors = le16_at(s + off + 8 + 26);
		if (type == SB_FIELD_CLEAN && sb->clean) {
			ret = sb_clean(sb, s + off, fbytes, err, errlen);
			if (ret)
				return ret;
			clean_seen = true;
		}
		off += fbytes;
	}
	if (!sb->clean || !clean_seen) {
		snprintf(err, errlen, "the filesystem was not shut down cleanly (clean %u, clean "
			 "section %s): its btree roots are in the journal, which this reader does "
			 "not replay", sb->clean, clean_seen ? "present" : "absent");
		return -EPROTONOSUPPORT;
	}
	return 0;
}

/* ---- Btree nodes ---- */

void bch_node_where(const struct bch_sb_info *sb, unsigned btree_id,
		    const struct bch_btree_ptr *ptr, char *buf, size_t len)
{
	char p[48];

	bch_ptr_str(ptr, sb->bucket_sectors, p, sizeof(p));
	snprintf(buf, len, "%s node %s (sector %llu, byte %llu)",
		 btree_id < BCH_BTREE_ID_NR ? bch_btree_name[btree_id] : "?", p,
		 (unsigned long long)ptr->sector,
		 (unsigned long long)ptr->sector * BCH_SECTOR_SIZE);
}

#define node_err(...) do {							\
		char __m[384];							\
		snprintf(__m, sizeof(__m), __VA_ARGS__);			\
		snprintf(err, errlen, "%s: %s", where, __m);			\
	} while (0)

static int node_bsets_add(struct bch_node *n, const struct bch_bset *b)
{
	struct bch_bset *p;

	if (!(n->nr_bsets & (n->nr_bsets - 1)) || !n->nr_bsets) {
		p = realloc(n->bsets, (n->nr_bsets ? 2 * n->nr_bsets : 4) * sizeof(*p));
		if (!p)
			return -ENOMEM;
		n->bsets = p;
	}
	n->bsets[n->nr_bsets++] = *b;
	return 0;
}

/* The bset header fields (seq .. u64s, 24 bytes) at @h. */
static void bset_hdr(struct bch_bset *b, const uint8_t *h)
{
	b->seq = le64_at(h);
	b->journal_seq = le64_at(h + 8);
	b->flags = le32_at(h + 16);
	b->version = le16_at(h + 20);
	b->u64s = le16_at(h + 22);
	b->sector = b->flags >> 16;
}

static int node_format(struct bch_node *n, const char *where, char *err, size_t errlen)
{
	struct bkey_format_err fe;
	char why[160];

	memcpy(&n->f, n->data + 80, sizeof(n->f));
	if (bkey_format_validate(&n->f, &fe)) {
		bkey_format_err_str(&fe, why, sizeof(why));
		node_err("invalid format (%s)", why);
		return -EINVAL;
	}
	return 0;
}

/* One bset's framing, version, flags and checksum. */
static int node_bset_csum(const struct bch_sb_info *sb, struct bch_node *n, struct bch_bset *b,
			  unsigned idx, size_t written_bytes, const char *where,
			  char *err, size_t errlen)
{
	size_t end = b->keys_off + 8 * (size_t)b->u64s;

	if (end > written_bytes) {
		node_err("bset %u at sector %u: %u u64s of keys run past written (%zu bytes)",
			 idx, b->byte_off / BCH_SECTOR_SIZE, b->u64s, written_bytes);
		return -EINVAL;
	}
	b->csum_stored = le32_at(n->data + b->byte_off);
	b->csum_computed = csum_crc32c_nonzero(n->data + b->byte_off + 16,
					       end - b->byte_off - 16);
	if (b->csum_stored != b->csum_computed || le32_at(n->data + b->byte_off + 4) ||
	    le64_at(n->data + b->byte_off + 8)) {
		node_err("bset %u at sector %u: checksum 0x%08x, computed 0x%08x", idx,
			 b->byte_off / BCH_SECTOR_SIZE, b->csum_stored, b->csum_computed);
		return -EBADMSG;
	}
	if (b->sector * BCH_SECTOR_SIZE != b->byte_off) {
		node_err("bset %u at sector %u: its header says sector %u", idx,
			 b->byte_off / BCH_SECTOR_SIZE, b->sector);
		return -EINVAL;
	}
	if ((b->flags & 0xf) != BCH_CSUM_CRC32C_NONZERO || (b->flags & 0x30)) {
		node_err("bset %u at sector %u: flags 0x%x: only crc32c, little-endian, no "
			 "separate whiteouts are supported", idx, b->sector, b->flags);
		return -EPROTONOSUPPORT;
	}
	if (b->version < BCH_VERSION_MIN_SUPPORTED || b->version > sb->version) {
		node_err("bset %u at sector %u: version %u unsupported (superblock %u)", idx,
			 b->sector, b->version, sb->version);
		return -EPROTONOSUPPORT;
	}
	return 0;
}

/* Every key of a bset framed by u64s within it, in the node's format. */
static int node_bset_keys(struct bch_node *n, struct bch_bset *b, unsigned idx,
			  const char *where, char *err, size_t errlen)
{
	size_t nr_keys, bad;
	enum bkey_stream_err se;

	se = bkey_stream_walk(&n->f, bch_bset_words(n, b), b->u64s, &nr_keys, &bad);
	if (se) {
		node_err("bset %u at sector %u: key %zu (byte %zu): %s", idx, b->sector,
			 nr_keys, b->keys_off + 8 * bad, bkey_stream_err_str(se));
		return -EINVAL;
	}
	b->nr_keys = nr_keys;
	n->nr_keys += nr_keys;
	return 0;
}

static size_t round_up_sz(size_t v, size_t a)
{
	return (v + a - 1) / a * a;
}

int bch_node_read(const struct bch_sb_info *sb, const uint8_t *img, size_t size,
		  const struct bch_btree_ptr *ptr, unsigned btree_id, unsigned level,
		  struct bch_node *n, char *err, size_t errlen)
{
	size_t written = (size_t)ptr->sectors_written * BCH_SECTOR_SIZE, off;
	char where[128];
	struct bch_bset b;
	int ret;

	memset(n, 0, sizeof(*n));
	n->ptr = *ptr;
	n->btree_id = btree_id;
	n->byte_off = ptr->sector * BCH_SECTOR_SIZE;
	bch_node_where(sb, btree_id, ptr, where, sizeof(where));
	if (written > sb->node_bytes || written < BCH_NODE_HDR_BYTES) {
		node_err("sectors_written %u: outside 1..%u sectors of a node",
			 ptr->sectors_written, sb->node_bytes / BCH_SECTOR_SIZE);
		return -EINVAL;
	}
	if (ptr->sector > size / BCH_SECTOR_SIZE || n->byte_off + written > size) {
		node_err("ends at byte %llu, past the end of the image (%zu bytes): truncated?",
			 (unsigned long long)(n->byte_off + written), size);
		return -ERANGE;
	}
	n->data = img + n->byte_off;
	if (le64_at(n->data + 16) != sb->node_magic) {
		node_err("magic 0x%016llx, expected 0x%016llx",
			 (unsigned long long)le64_at(n->data + 16),
			 (unsigned long long)sb->node_magic);
		return -EINVAL;
	}
	n->flags = le64_at(n->data + 24);
	n->level = BCH_NODE_LEVEL(n->flags);
	n->min_key = bpos_at(n->data + 32);
	n->max_key = bpos_at(n->data + 52);
	/* the first bset: its header right after the format */
	memset(&b, 0, sizeof(b));
	bset_hdr(&b, n->data + 136);
	b.keys_off = BCH_NODE_HDR_BYTES;
	ret = node_bset_csum(sb, n, &b, 0, written, where, err, errlen);
	if (ret)
		goto fail;
	/* checksummed: now the header's fields can be trusted and checked */
	if (BCH_NODE_ID(n->flags) != btree_id || n->level != level) {
		node_err("header says btree %u level %u, its pointer btree %u level %u",
			 (unsigned)BCH_NODE_ID(n->flags), n->level, btree_id, level);
		ret = -EINVAL;
		goto fail;
	}
	if (b.seq != ptr->seq) {
		node_err("bset seq %016llx, its pointer wants %016llx: a stale node",
			 (unsigned long long)b.seq, (unsigned long long)ptr->seq);
		ret = -EINVAL;
		goto fail;
	}
	if (bpos_cmp(n->min_key, ptr->min_key) || bpos_cmp(n->max_key, ptr->max_key)) {
		char a[64], z[64], pa[64], pz[64];

		bch_pos_str(n->min_key, a, sizeof(a));
		bch_pos_str(n->max_key, z, sizeof(z));
		bch_pos_str(ptr->min_key, pa, sizeof(pa));
		bch_pos_str(ptr->max_key, pz, sizeof(pz));
		node_err("covers %s..%s, its pointer %s..%s", a, z, pa, pz);
		ret = -EINVAL;
		goto fail;
	}
	if (!BCH_NODE_NEW_EXTENT_OVERWRITE(n->flags) && btree_id == 0) {
		node_err("extents node without NEW_EXTENT_OVERWRITE: overlapping extents "
			 "are not supported");
		ret = -EPROTONOSUPPORT;
		goto fail;
	}
	ret = node_format(n, where, err, errlen);
	if (ret)
		goto fail;
	ret = node_bset_keys(n, &b, 0, where, err, errlen);
	if (!ret)
		ret = node_bsets_add(n, &b);
	if (ret)
		goto fail;
	/* later bsets start at block boundaries; a different seq is stale data */
	off = round_up_sz(BCH_NODE_HDR_BYTES + 8 * (size_t)b.u64s, sb->block_bytes);
	while (off + BCH_NODE_ENTRY_HDR_BYTES <= written) {
		struct bch_bset e = { .byte_off = off, .keys_off = off + BCH_NODE_ENTRY_HDR_BYTES };

		bset_hdr(&e, n->data + off + 16);
		if (e.seq != n->bsets[0].seq)
			break;
		ret = node_bset_csum(sb, n, &e, n->nr_bsets, written, where, err, errlen);
		if (!ret)
			ret = node_bset_keys(n, &e, n->nr_bsets, where, err, errlen);
		if (!ret)
			ret = node_bsets_add(n, &e);
		if (ret)
			goto fail;
		off = round_up_sz(e.keys_off + 8 * (size_t)e.u64s, sb->block_bytes);
	}
	return 0;
fail:
	bch_node_free(n);
	return ret;
}

void bch_node_free(struct bch_node *n)
{
	free(n->bsets);
	n->bsets = NULL;
	n->nr_bsets = 0;
}
