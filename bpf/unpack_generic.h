/* SPDX-License-Identifier: GPL-2.0 */
/* The format as bpf/unpack_generic.bpf.c reads it from .bss. */
#ifndef BPF_UNPACK_GENERIC_H
#define BPF_UNPACK_GENERIC_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

struct generic_field {
	__u64	offset;
	__u64	mask;		/* mask(bits); 0 for a constant field */
	__u32	word;		/* word of the field's low bit */
	__u32	sh;		/* that bit's position in the word */
};

struct generic_format {
	__u32			key_u64s;
	__u32			header_add;
	struct generic_field	f[6];
};

#endif
