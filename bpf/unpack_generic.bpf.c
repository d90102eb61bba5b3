// SPDX-License-Identifier: GPL-2.0
/*
 * Generic unpack, compiled by clang: one program for every format, which
 * it reads at run time from .bss.  The benchmark's bpf_generic method; it
 * follows the same contract as generated programs (gen/abi.h) and shares
 * their maps.  A verifier-walked loop over 1024 keys with full key checks
 * exceeds the verifier's 1M-instruction budget (measured), so it walks
 * with bpf_loop(), paying a call per key.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "abi.h"
#include "unpack_generic.h"


struct generic_format fmt;

struct bk_in_value {
	__u8	b[BK_IN_VALUE_SIZE];
};

struct bk_out_value {
	__u8	b[BK_OUT_VALUE_SIZE];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct bk_ctl);
} bk_ctl SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct bk_in_value);
} bk_in SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct bk_out_value);
} bk_out SEC(".maps");

/* Field @i of the key at @k: two word loads, variable shifts, mask, offset. */
static __always_inline __u64 field(const __u8 *k, int i)
{
	const struct generic_field *g = &fmt.f[i];
	/* word <= 4; the mask only bounds it for the verifier (the in map
	 * has slack past its last key for the second load) */
	__u32 sh = g->sh & 63, wo = (g->word & 7) * 8;
	__u64 lo = *(const __u64 *)(k + wo);
	__u64 hi = *(const __u64 *)(k + wo + 8);

	/* (hi << (64 - sh)) without a shift by 64 when sh = 0 */
	return (((lo >> sh) | ((hi << (63 - sh)) << 1)) & g->mask) + g->offset;
}

/*
 * One key per bpf_loop() callback.  The walk state lives in ctl (not on
 * the stack), so the verifier checks the callback once instead of walking
 * a bounded loop key by key.
 */
static long one_key(__u64 index, void *unused)
{
	__u32 zero = 0, hdr, u64s, fmtb, kw;
	struct bk_ctl *c = bpf_map_lookup_elem(&bk_ctl, &zero);
	struct bk_in_value *in = bpf_map_lookup_elem(&bk_in, &zero);
	struct bk_out_value *out = bpf_map_lookup_elem(&bk_out, &zero);
	const __u8 *k;
	__u64 off, end, o;
	__u8 *ob;

	if (!c || !in || !out)
		return 1;
	off = c->cur_in;
	end = c->arg_end;
	o = c->cur_out;
	if (off >= end) {
		c->status = BK_OK;
		return 1;
	}
	if (off > BK_IN_CAP_WORDS * 8 - 8) {
		c->status = BK_ERR_ARGS;
		return 1;
	}
	if (o > BK_OUT_VALUE_SIZE - 40) {
		c->status = BK_ERR_OUT_FULL;
		return 1;
	}
	k = in->b + off;
	ob = out->b + o;
	hdr = *(const __u32 *)k;
	u64s = hdr & 0xff;
	fmtb = (hdr >> 8) & 0x7f;
	kw = fmtb ? 5 : fmt.key_u64s;
	if (fmtb > 1 || u64s < kw || u64s > kw + 250 || off + 8 * u64s > end) {
		c->status = BK_ERR_BAD_KEY;
		return 1;
	}
	if (fmtb) {
		/* keys are 8-byte aligned: five word copies */
		((__u64 *)ob)[0] = ((const __u64 *)k)[0];
		((__u64 *)ob)[1] = ((const __u64 *)k)[1];
		((__u64 *)ob)[2] = ((const __u64 *)k)[2];
		((__u64 *)ob)[3] = ((const __u64 *)k)[3];
		((__u64 *)ob)[4] = ((const __u64 *)k)[4];
	} else {
		*(__u32 *)ob = (hdr & 0xffffff) + fmt.header_add;
		*(__u64 *)(ob + 32) = field(k, 0);
		*(__u64 *)(ob + 24) = field(k, 1);
		*(__u32 *)(ob + 20) = field(k, 2);
		*(__u32 *)(ob + 16) = field(k, 3);
		*(__u32 *)(ob + 12) = field(k, 4);
		*(__u32 *)(ob + 4) = field(k, 5);
		*(__u32 *)(ob + 8) = field(k, 5) >> 32;
	}
	c->cur_in = off + 8 * u64s;
	c->cur_out = o + 40;
	return 0;
}

/* a socket filter, as every generated program is (gen/gen.h, BK_PROG_TYPE) */
SEC("socket")
int unpack_generic(struct __sk_buff *ctx)
{
	__u32 zero = 0;
	struct bk_ctl *c = bpf_map_lookup_elem(&bk_ctl, &zero);
	__u32 words;

	if (!c)
		return BK_ERR_ARGS;
	c->cur_in = c->arg_in;
	c->cur_out = c->arg_out;
	c->status = BK_ERR_LOOP_LIMIT;	/* unless a callback finishes */
	words = (c->arg_end - c->arg_in) / 8;
	bpf_loop(words + 1, one_key, NULL, 0);
	return c->status;
}

char LICENSE[] SEC("license") = "GPL";
