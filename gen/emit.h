/* SPDX-License-Identifier: GPL-2.0 */
/*
 * An instruction emitter with symbolic labels and fixups, comments attached
 * to instructions, and source "lines" that become BTF line_info.
 */
#ifndef GEN_EMIT_H
#define GEN_EMIT_H

#include <stdbool.h>
#include <stdio.h>

#include "insn.h"

/*
 * What one program may grow to: the buffers below grow on demand up to
 * these (a generator that runs away stops at -E2BIG, not at the kernel).
 */
#define BK_MAX_INSNS	(1 << 16)
#define BK_MAX_LABELS	(1 << 14)
#define BK_MAX_LINES	(1 << 12)
#define BK_TEXT_BYTES	(1 << 22)
#define BK_MAX_SUBPROGS	4	/* the program and its callbacks */

struct bk_line {
	int	insn;		/* first instruction of the line */
	int	text;		/* offset into text[] */
};

struct bk_fixup {
	int	insn;		/* a jump */
	int	label;		/* to this label */
};

/*
 * One program being emitted.  Its buffers are its own and grow as it
 * does, so emitters on several threads share nothing.  Start from zero
 * ({0}, static or calloc); bk_emit_init() makes it ready for a program
 * (again: the buffers are kept for the next one), bk_emit_release() frees
 * them.
 */
struct bk_emit {
	struct bpf_insn	*insn;
	int		*comment;	/* per instruction: offset into text[], or -1 */
	int		cnt, cap_insns;

	int		*label_pos;
	int		nr_labels, cap_labels;
	struct bk_fixup	*fix;
	int		nr_fix, cap_fix;

	struct bk_line	*line;
	int		nr_lines, cap_lines;
	int		subprog_start[BK_MAX_SUBPROGS];	/* func_info: insn of each function */
	int		nr_subprogs;

	bool		annotate;	/* keep per-instruction comments */
	int		pending_comment;
	char		*text;
	int		text_len, cap_text;
	int		err;		/* sticky: -E2BIG past a limit, -ENOMEM */
};

void bk_emit_init(struct bk_emit *e, bool annotate);
void bk_emit_release(struct bk_emit *e);
int bk_label(struct bk_emit *e);
void bk_bind(struct bk_emit *e, int label);
/* Whether a jump to @label has been emitted (a block nobody reaches must not be). */
bool bk_label_used(const struct bk_emit *e, int label);
void bk_insn(struct bk_emit *e, struct bpf_insn insn);
/* A jump whose offset is resolved when @label is bound. */
void bk_jmp(struct bk_emit *e, struct bpf_insn insn, int label);
void bk_ld_imm64(struct bk_emit *e, int dst, int pseudo, unsigned long long imm);
/* r0 = bpf_map_lookup_elem(map @map_fd, the u32 key at r10 + @fp_key); r1-r5 clobbered */
void bk_map_lookup(struct bk_emit *e, int map_fd, int fp_key);
/* Comment for the next instruction (listing only). */
void bk_comment(struct bk_emit *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Source line for the next instruction (BTF line_info and listing). */
void bk_line(struct bk_emit *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/*
 * Points the BPF_PSEUDO_FUNC ld_imm64 at instruction @ld_func to the next
 * instruction: the callback that starts there.
 */
void bk_fix_func(struct bk_emit *e, int ld_func);
/* Marks the next instruction as the start of a function (func_info). */
void bk_subprog(struct bk_emit *e);
/* Resolves fixups. Returns 0 or a negative errno. */
int bk_emit_finish(struct bk_emit *e);

static inline const char *bk_text(const struct bk_emit *e, int off)
{
	return off >= 0 ? e->text + off : NULL;
}

/* One instruction as text in the kernel's syntax; returns slots used. */
int bk_insn_str(const struct bpf_insn *insn, int idx, char *buf, size_t len);
/* Names for map fds in listings ("ctl" for the fd of the ctl map). */
struct bk_map_name {
	int		fd;
	const char	*name;
};

int bk_insn_str_named(const struct bpf_insn *insn, int idx, char *buf, size_t len,
		      const struct bk_map_name *names, int nr_names);
/* Our own annotated listing: lines, instructions, comments. */
void bk_listing(const struct bk_emit *e, FILE *out, const struct bk_map_name *names,
		int nr_names);

#endif /* GEN_EMIT_H */
