/* SPDX-License-Identifier: GPL-2.0 */
/* Kernel-side helpers for tests: probe, maps, generate-load-run-compare. */
#ifndef TESTS_KENV_H
#define TESTS_KENV_H

#include "bkey.h"
#include "gen.h"

struct kenv {
	bool			ok;
	char			why[256];	/* why kernel tests skip */
	struct bk_features	ft;
	struct bk_runtime	rt;
	/* kcheck_stream()'s programs: the architecture's default, or forced on
	 * to check strict-alignment code (riscv64's) on this host */
	bool			strict_align;
	/* kcheck_stream()'s table walks as shape programs: generated from
	 * the format's shape with every offset 0, run with its template */
	bool			by_shape;
};

/* Lazily probes the kernel; returns NULL (and SKIPs the test) if bpf() is
 * not usable, printing why. */
struct kenv *kenv_get(void);
bool kenv_has_shape(const struct kenv *k, enum bk_shape s);
/* The unpack shapes this kernel loads (may_goto, then bpf_loop): how many, into @out. */
int kenv_shapes(const struct kenv *k, enum bk_shape out[2]);
/* Whether @cmd runs and succeeds (a tool's --version, say); SKIPs naming @what if not. */
bool kenv_have_tool(const char *cmd, const char *what);

/*
 * Runs @fn once for each of the node cache's loop shapes this kernel has
 * (user/nodecache.h): may_goto, then the unrolled search with bpf_loop
 * scans (BKEY_LOOPS=bpf_loop), as kernels before 6.9 take.  SKIPs, naming
 * why, if it has neither.
 */
void kenv_each_loops(struct kenv *k, void (*fn)(struct kenv *k));

/* ---- test-only helpers ---- */

/* Unpacks bit by bit from K: an implementation independent of the model. */
void bitref_unpack(const struct bkey_format *f, const void *in, struct bkey *out);

/* Small deterministic PRNG (xorshift64*). */
uint64_t rnd_next(uint64_t *s);
uint64_t rnd_below(uint64_t *s, uint64_t n);	/* 0..n-1, n > 0 */
/* A random value in [lo, hi], biased toward the ends. */
uint64_t rnd_range(uint64_t *s, uint64_t lo, uint64_t hi);

/* A random width 0..U, biased toward 0, U and byte multiples. */
unsigned rnd_width_any(uint64_t *s, unsigned U);
/* A random valid format; @fixed_field >= 0 forces its width to @fixed_bits. */
struct bkey_format rnd_format(uint64_t *s, int fixed_field, unsigned fixed_bits);
/* Sets random valid offsets for the widths already in @f, and key_u64s. */
void rnd_offsets(uint64_t *s, struct bkey_format *f);

/*
 * Builds a stream of @nr keys for @f into @words (cap words): most packed
 * with random field values in range, some stored unpacked (values out of
 * range), random value words.  Returns the number of words used.
 */
uint32_t rnd_stream(uint64_t *s, const struct bkey_format *f, unsigned nr,
		    uint64_t *words, uint32_t cap, unsigned *nr_keys);

struct kcheck_stats {
	unsigned long	formats;
	unsigned long	accepted;	/* verifier accepted */
	unsigned long	keys;		/* keys compared three ways */
	unsigned long	xlated, jited;	/* of the last program */
	double		prepare_us;	/* of the last program */
};

/*
 * Generates and loads the program for @f in @shape, runs it over @words,
 * and compares each output key with the model and the bit-by-bit
 * reference.  Records failures with ASSERTs; returns true if all matched.
 */
bool kcheck_stream(struct kenv *k, const struct bkey_format *f, enum bk_shape shape,
		   enum bk_walk walk, unsigned chunk, const uint64_t *words, uint32_t nr_words,
		   struct kcheck_stats *st);

/* A command's standard output, or NULL if it could not run or failed; free() it. */
char *run_cmd(const char *cmd);
/* A private bpffs at @mnt (a mkdtemp template); false (and SKIP) if there is none. */
bool mount_bpffs(char *mnt);

#endif /* TESTS_KENV_H */
