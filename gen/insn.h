/* SPDX-License-Identifier: GPL-2.0 */
/*
 * BPF instruction constructors with the kernel's familiar names
 * (include/linux/filter.h is not shipped by any Debian package).  Written
 * for this project; encodings follow the uapi <linux/bpf.h> opcodes.
 */
#ifndef GEN_INSN_H
#define GEN_INSN_H

#include <linux/bpf.h>

/* Newer than Debian 12's uapi headers (kernel 6.9+). */
#ifndef BPF_JCOND
#define BPF_JCOND	0xe0
#endif
#define BPF_MAY_GOTO	0	/* src_reg of a BPF_JCOND */
/* sign-extending loads (cpu v4, kernel 6.6+) */
#ifndef BPF_MEMSX
#define BPF_MEMSX	0x80
#endif

#define BPF_ALU64_REG(OP, DST, SRC)					\
	((struct bpf_insn){ .code = BPF_ALU64 | BPF_OP(OP) | BPF_X,	\
			    .dst_reg = DST, .src_reg = SRC })
#define BPF_ALU32_REG(OP, DST, SRC)					\
	((struct bpf_insn){ .code = BPF_ALU | BPF_OP(OP) | BPF_X,	\
			    .dst_reg = DST, .src_reg = SRC })
#define BPF_ALU64_IMM(OP, DST, IMM)					\
	((struct bpf_insn){ .code = BPF_ALU64 | BPF_OP(OP) | BPF_K,	\
			    .dst_reg = DST, .imm = IMM })
#define BPF_ALU32_IMM(OP, DST, IMM)					\
	((struct bpf_insn){ .code = BPF_ALU | BPF_OP(OP) | BPF_K,	\
			    .dst_reg = DST, .imm = IMM })
#define BPF_MOV64_REG(DST, SRC)		BPF_ALU64_REG(BPF_MOV, DST, SRC)
#define BPF_MOV32_REG(DST, SRC)		BPF_ALU32_REG(BPF_MOV, DST, SRC)
#define BPF_MOV64_IMM(DST, IMM)		BPF_ALU64_IMM(BPF_MOV, DST, IMM)
#define BPF_MOV32_IMM(DST, IMM)		BPF_ALU32_IMM(BPF_MOV, DST, IMM)

/* *(size *)(SRC + OFF) -> DST */
#define BPF_LDX_MEM(SIZE, DST, SRC, OFF)				\
	((struct bpf_insn){ .code = BPF_LDX | BPF_SIZE(SIZE) | BPF_MEM,	\
			    .dst_reg = DST, .src_reg = SRC, .off = OFF })
/* SRC -> *(size *)(DST + OFF) */
#define BPF_STX_MEM(SIZE, DST, SRC, OFF)				\
	((struct bpf_insn){ .code = BPF_STX | BPF_SIZE(SIZE) | BPF_MEM,	\
			    .dst_reg = DST, .src_reg = SRC, .off = OFF })
/* IMM -> *(size *)(DST + OFF); IMM is sign-extended for BPF_DW */
#define BPF_ST_MEM(SIZE, DST, OFF, IMM)					\
	((struct bpf_insn){ .code = BPF_ST | BPF_SIZE(SIZE) | BPF_MEM,	\
			    .dst_reg = DST, .off = OFF, .imm = IMM })

#define BPF_JMP_REG(OP, DST, SRC, OFF)					\
	((struct bpf_insn){ .code = BPF_JMP | BPF_OP(OP) | BPF_X,	\
			    .dst_reg = DST, .src_reg = SRC, .off = OFF })
#define BPF_JMP_IMM(OP, DST, IMM, OFF)					\
	((struct bpf_insn){ .code = BPF_JMP | BPF_OP(OP) | BPF_K,	\
			    .dst_reg = DST, .off = OFF, .imm = IMM })
#define BPF_JMP32_REG(OP, DST, SRC, OFF)				\
	((struct bpf_insn){ .code = BPF_JMP32 | BPF_OP(OP) | BPF_X,	\
			    .dst_reg = DST, .src_reg = SRC, .off = OFF })
#define BPF_JMP32_IMM(OP, DST, IMM, OFF)				\
	((struct bpf_insn){ .code = BPF_JMP32 | BPF_OP(OP) | BPF_K,	\
			    .dst_reg = DST, .off = OFF, .imm = IMM })
#define BPF_JMP_A(OFF)							\
	((struct bpf_insn){ .code = BPF_JMP | BPF_JA, .off = OFF })
#define BPF_MAY_GOTO_INSN(OFF)						\
	((struct bpf_insn){ .code = BPF_JMP | BPF_JCOND | BPF_K,	\
			    .src_reg = BPF_MAY_GOTO, .off = OFF })

/* a byte swap of dst's low @LEN bits: to big (BPF_TO_BE) or little endian */
#define BPF_ENDIAN(TYPE, DST, LEN)					\
	((struct bpf_insn){ .code = BPF_ALU | BPF_END | BPF_SRC(TYPE),	\
			    .dst_reg = DST, .imm = LEN })
/* *(size *)(DST + OFF) OP= SRC atomically; OP | BPF_FETCH: the old value to SRC */
#define BPF_ATOMIC_OP(SIZE, OP, DST, SRC, OFF)				\
	((struct bpf_insn){ .code = BPF_STX | BPF_SIZE(SIZE) | BPF_ATOMIC, \
			    .dst_reg = DST, .src_reg = SRC, .off = OFF, .imm = OP })

#define BPF_EMIT_CALL(FUNC)						\
	((struct bpf_insn){ .code = BPF_JMP | BPF_CALL, .imm = FUNC })
#define BPF_EXIT_INSN()							\
	((struct bpf_insn){ .code = BPF_JMP | BPF_EXIT })

/*
 * The two slots of a 64-bit immediate load: the first carries the low
 * 32 bits and SRC (a pseudo such as BPF_PSEUDO_MAP_VALUE), the second the
 * high 32 bits (for a map value: the offset into the value).
 */
#define BPF_LD_IMM64_RAW_1(DST, SRC, IMM)				\
	((struct bpf_insn){ .code = BPF_LD | BPF_DW | BPF_IMM,		\
			    .dst_reg = DST, .src_reg = SRC,		\
			    .imm = (__u32)(__u64)(IMM) })
#define BPF_LD_IMM64_RAW_2(IMM)						\
	((struct bpf_insn){ .imm = (__u32)((__u64)(IMM) >> 32) })

#endif /* GEN_INSN_H */
