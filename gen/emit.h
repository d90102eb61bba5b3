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

#define BK_MAX_INSNS	2048
#define BK_MAX_LABELS	256
#define BK_MAX_LINES	256
#define BK_TEXT_BYTES	65536
#define BK_MAX_SUBPROGS	4	/* the program and its callbacks */

struct bk_line {
	int	insn;		/* first instruction of the line */
	int	text;		/* offset into text[] */
};

struct bk_emit {
	struct bpf_insn	insn[BK_MAX_INSNS];
	int		comment[BK_MAX_INSNS];	/* offset into text[], or -1 */
	int		cnt;

	int		label_pos[BK_MAX_LABELS];
	int		nr_labels;
	struct { int insn, label; } fix[BK_MAX_INSNS];
	int		nr_fix;

	struct bk_line	line[BK_MAX_LINES];
	int		nr_lines;
	int		subprog_start[BK_MAX_SUBPROGS];	/* func_info: insn of each function */
	int		nr_subprogs;

	bool		annotate;	/* keep per-instruction comments */
	int		pending_comment;
	char		text[BK_TEXT_BYTES];
	int		text_len;
	int		err;		/* sticky: -E2BIG on overflow */
};

void bk_emit_init(struct bk_emit *e, bool annotate);
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
