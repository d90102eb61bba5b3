/* SPDX-License-Identifier: GPL-2.0 */
/*
 * bcachefs's on-disk layout, as far as reading btrees needs it: the
 * superblock (its clean section's btree roots), btree_ptr_v2 pointers,
 * btree nodes and their bsets, and CRC-32C.  Layouts as written by
 * bcachefs-tools v0.27 (metadata version 27), and as observed in
 * ../shared/data/bcachefs/README.md section 5.  Pure parsing over a
 * buffer: no I/O, no BPF.  Every error message names where it happened.
 */
#ifndef BKEY_ONDISK_H
#define BKEY_ONDISK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bkey.h"

#define BCH_SECTOR_SIZE			512u
#define BCH_SB_SECTOR			8u		/* the first superblock */
#define BCH_SB_HDR_BYTES		752u		/* fields start here */
#define BCH_SB_MAX_BYTES		(1u << 20)
/* The versions whose layouts this reader was checked against. */
#define BCH_VERSION_MIN_SUPPORTED	27u
#define BCH_VERSION_MAX_SUPPORTED	27u
#define BCH_BTREE_ID_NR			15u
#define BCH_BTREE_MAX_DEPTH		4u
#define BCH_NODE_BYTES_MAX		(256u * 1024)

#define BCH_NODE_HDR_BYTES		160u		/* csum, header, format, bset */
#define BCH_NODE_ENTRY_HDR_BYTES	40u		/* csum + bset of later bsets */
#define BCH_PTR_V2_HDR_BYTES		40u
#define BCH_CSUM_CRC32C_NONZERO		1u

extern const char *const bch_btree_name[BCH_BTREE_ID_NR];
/* The btree id of @name, or -1. */
int bch_btree_id(const char *name);
/* The bkey type's name in bcachefs's text form, or NULL if unknown. */
const char *bch_key_type_name(unsigned type);

uint32_t bch_crc32c(uint32_t crc, const void *buf, size_t len);

/* A parsed btree_ptr_v2: where a node is and what it must hold. */
struct bch_btree_ptr {
	struct bpos	min_key, max_key;	/* max_key is the key's position */
	uint64_t	seq;			/* the node's first bset seq */
	unsigned	sectors_written;
	unsigned	dev, gen;
	uint64_t	sector;			/* on the device */
};

/*
 * Parses key @k with value @val (k->u64s - 5 words) as a btree_ptr_v2 with
 * one pointer on device 0.  -EINVAL with a message otherwise.
 */
int bch_ptr_parse(const struct bkey *k, const uint64_t *val, struct bch_btree_ptr *p,
		  char *err, size_t errlen);
/* "0:410:168" as bcachefs prints a pointer: dev:bucket:sector-in-bucket */
void bch_ptr_str(const struct bch_btree_ptr *p, unsigned bucket_sectors, char *buf, size_t len);

struct bch_root {
	bool			present;
	unsigned		level;
	struct bch_btree_ptr	ptr;
};

struct bch_sb_info {
	uint16_t	version, version_min;
	uint8_t		uuid[16];		/* internal */
	uint8_t		user_uuid[16];
	char		label[33];
	uint64_t	seq;
	unsigned	block_bytes;
	unsigned	node_bytes;		/* btree_node_size */
	unsigned	bucket_sectors;		/* device 0's, for printing pointers */
	unsigned	nr_devices;
	uint32_t	csum_stored, csum_computed;
	bool		clean;
	uint64_t	clean_journal_seq;
	uint64_t	node_magic;		/* btree nodes' magic */
	struct bch_root	roots[BCH_BTREE_ID_NR];
	unsigned	nr_roots;
};

/*
 * Reads the superblock at sector 8 of an image of @size bytes: magic,
 * version, checksum, options, and the btree roots from the clean section.
 * -EINVAL (bad magic, checksum, layout), -EPROTONOSUPPORT (version,
 * unclean filesystem, several devices) or -ERANGE (image too short), each
 * with a message in @err.
 */
int bch_sb_read(const uint8_t *img, size_t size, struct bch_sb_info *sb, char *err, size_t errlen);

struct bch_bset {
	uint32_t	byte_off;		/* where it starts in the node */
	uint32_t	keys_off;		/* where its keys start */
	uint32_t	sector;			/* its sector offset, from its flags */
	uint64_t	seq, journal_seq;
	uint32_t	flags;
	uint16_t	version, u64s;
	uint32_t	csum_stored, csum_computed;
	uint32_t	nr_keys;
};

struct bch_node {
	unsigned		btree_id, level;
	uint64_t		flags;
	struct bpos		min_key, max_key;
	struct bkey_format	f;
	struct bch_btree_ptr	ptr;		/* the pointer it was read through */
	uint64_t		byte_off;	/* in the image */
	const uint8_t		*data;		/* ptr.sectors_written sectors */
	struct bch_bset		*bsets;
	unsigned		nr_bsets;
	uint32_t		nr_keys;	/* in all bsets, deleted ones too */
};

#define BCH_NODE_ID(f)		((f) & 0xf)
#define BCH_NODE_LEVEL(f)	(((f) >> 4) & 0xf)
#define BCH_NODE_NEW_EXTENT_OVERWRITE(f) (((f) >> 8) & 1)

/* The keys of bset @b: u64s words, 8-byte aligned if the image is. */
static inline const uint64_t *bch_bset_words(const struct bch_node *n, const struct bch_bset *b)
{
	return (const uint64_t *)(n->data + b->keys_off);
}

/*
 * Reads the node @ptr points to, expected in btree @btree_id at @level:
 * every bset up to sectors_written (or to the first with another seq, a
 * stale one), each checksum, the format (spec 9.1) and every key's
 * framing.  Errors name the node's location: -EBADMSG for a checksum,
 * -ERANGE for a node past the end of the image, -EINVAL for the rest.
 * On success n->bsets is allocated: bch_node_free().
 */
int bch_node_read(const struct bch_sb_info *sb, const uint8_t *img, size_t size,
		  const struct bch_btree_ptr *ptr, unsigned btree_id, unsigned level,
		  struct bch_node *n, char *err, size_t errlen);
void bch_node_free(struct bch_node *n);

/* "extents node 0:52:8 (sector 13320, byte 6819840)" */
void bch_node_where(const struct bch_sb_info *sb, unsigned btree_id,
		    const struct bch_btree_ptr *ptr, char *buf, size_t len);

/* A position as bcachefs prints it: POS_MIN, SPOS_MAX, U64_MAX, U32_MAX. */
void bch_pos_str(struct bpos p, char *buf, size_t len);

#endif /* BKEY_ONDISK_H */
