// SPDX-License-Identifier: GPL-2.0
/*
 * Differential: a format and keys from the fuzzer's bytes; the generated
 * program's output in the kernel must equal the reference unpack.  Needs
 * root.  Input: 56 format bytes, a shape/walk byte, then per key 6 field
 * values (8 bytes each), a value length and a type.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/libbpf.h>

#include "gen.h"

static struct bk_runtime rt;
static struct bk_features ft;
static struct bk_prog prog;
static struct bk_loaded l = { .fd = -1 };
static struct bkey_format loaded_f;
static int loaded_mode = -1;
static unsigned long programs, runs, keys;	/* reported at exit */

static void report(void)
{
	fprintf(stderr, "fuzz_diff: %lu programs loaded, %lu kernel runs, %lu keys compared\n",
		programs, runs, keys);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	libbpf_set_print(NULL);
	if (bk_probe_features(&ft) || bk_runtime_open(&rt)) {
		fprintf(stderr, "fuzz_diff: needs root and bpf()\n");
		exit(1);
	}
	atexit(report);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint64_t words[4096];
	struct bkey_format f;
	uint32_t pos = 0, nr_keys = 0, got, stop, i, status;
	const uint8_t *p;
	int mode, ret;

	if (size < 57)
		return 0;
	memcpy(&f, data, sizeof(f));
	f.nr_fields = BKEY_NR_FIELDS;
	if (bkey_format_validate(&f, NULL))
		return 0;
	mode = data[56] % 3;			/* may_goto/u64s, may_goto/table, bpf_loop */
	if ((mode < 2 && !ft.may_goto) || (mode == 2 && !ft.bpf_loop))
		return 0;
	if (l.fd < 0 || mode != loaded_mode || memcmp(&f, &loaded_f, sizeof(f))) {
		struct bk_gen_opts o = {
			.shape = mode == 2 ? BK_SHAPE_BPF_LOOP : BK_SHAPE_MAY_GOTO,
			.walk = mode == 1 ? BK_WALK_TABLE : BK_WALK_U64S, .chunk = 1,
			.ctl_fd = rt.ctl_fd, .in_fd = rt.in_fd, .out_fd = rt.out_fd,
			.strict_align = bk_strict_align_default(),
		};

		bk_prog_unload(&l);
		if (bk_gen_unpack(&f, &o, &prog, NULL) || bk_prog_load(&prog, &l, NULL, 0))
			__builtin_trap();	/* every valid format loads */
		loaded_f = f;
		loaded_mode = mode;
		programs++;
	}
	for (p = data + 57; p + 50 <= data + size && pos + 5 + 7 < 4096; p += 50) {
		uint64_t v[BKEY_NR_FIELDS];
		struct bkey k = { .format_nw = KEY_FORMAT_CURRENT | (p[49] & 0x80), .type = p[49] };
		unsigned val = p[48] % 4, kw = f.key_u64s, j;

		memcpy(v, p, sizeof(v));
		/* mostly in range, so that most keys pack */
		if (!(p[48] & 0x80))
			for (j = 0; j < BKEY_NR_FIELDS; j++)
				v[j] = f.field_offset[j] + (v[j] & bkey_mask(f.bits_per_field[j]));
		bkey_set_fields(&k, v);
		k.u64s = BKEY_U64s + val;
		if (bkey_pack_key(&f, &k, words + pos, NULL)) {
			memcpy(words + pos, &k, sizeof(k));
			kw = BKEY_U64s;
		}
		for (j = 0; j < val; j++)
			words[pos + kw + j] = v[j];
		pos += kw + val;
		nr_keys++;
	}
	ret = bk_unpack_words(&l, &rt, words, pos, &status, &got, &stop);
	runs++;
	keys += got;
	if (ret || status != BK_OK || got != nr_keys || stop != pos)
		__builtin_trap();
	for (i = 0, pos = 0; i < got; i++) {
		struct bkey want;

		bkey_unpack_key(&f, words + pos, &want);
		if (memcmp(&want, &rt.out[i], sizeof(want)))
			__builtin_trap();	/* the kernel disagrees with the reference */
		pos += ((const uint8_t *)(words + pos))[0];
	}
	return 0;
}
