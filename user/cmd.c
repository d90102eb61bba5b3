// SPDX-License-Identifier: GPL-2.0
/*
 * What the loader's commands share: option parsing, the kernel opened for
 * one program, and JSON strings.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "btree.h"
#include "caps.h"
#include "cmd.h"

/*
 * Checks capabilities, probes the kernel, creates the shared maps; sets
 * o's shape (if auto) and map fds.  Prints one line on failure.
 */
int open_kernel(struct bk_runtime *rt, struct bk_gen_opts *o)
{
	struct bk_features ft;
	char why[160];
	int ret;

	if (!bk_caps_ok(why, sizeof(why))) {
		fprintf(stderr, "%s: %s\n", prog_name, why);
		return -EPERM;
	}
	ret = bk_probe_features(&ft);
	if (ret) {
		fprintf(stderr, "%s: kernel feature probe failed: %s\n", prog_name,
			ret == -EOPNOTSUPP ? ft.why : strerror(-ret));
		return ret;
	}
	if (o->shape == BK_SHAPE_AUTO)
		o->shape = ft.best;
	ret = bk_runtime_open(rt);
	if (ret) {
		fprintf(stderr, "%s: cannot create maps: %s\n", prog_name, strerror(-ret));
		return ret;
	}
	o->ctl_fd = rt->ctl_fd;
	o->in_fd = rt->in_fd;
	o->out_fd = rt->out_fd;
	return 0;
}

int gen_load_or_report(const struct bkey_format *f, const struct bk_gen_opts *o,
		       const struct bk_runtime *rt, struct bk_prog *p, struct bk_loaded *l)
{
	const struct bk_map_name names[] = {
		{ rt->ctl_fd, "ctl" }, { rt->in_fd, "in" }, { rt->out_fd, "out" },
	};
	int ret = bk_gen_unpack(f, o, p, NULL);

	if (ret) {
		fprintf(stderr, "%s: generating the program failed: %s\n", prog_name, strerror(-ret));
		return ret;
	}
	ret = bk_prog_load_report(p, l, stderr, prog_name, names, 3);
	if (ret && !bk_is_verdict(ret))	/* no verdict: bk_report_reject() printed nothing */
		fprintf(stderr, "%s: cannot load %s: %s\n", prog_name, p->name, strerror(-ret));
	return ret;
}

int parse_format_arg(const char *s, struct bkey_format *f)
{
	struct bkey_format_err ferr;
	char msg[256];

	if (!s) {
		fprintf(stderr, "%s: --format is required\n", prog_name);
		return -EINVAL;
	}
	if (bkey_format_parse(s, f, msg, sizeof(msg))) {
		fprintf(stderr, "%s: bad --format: %s\n", prog_name, msg);
		return -EINVAL;
	}
	if (bkey_format_validate(f, &ferr)) {
		bkey_format_err_str(&ferr, msg, sizeof(msg));
		fprintf(stderr, "%s: %s\n", prog_name, msg);
		return -EINVAL;
	}
	return 0;
}

int parse_walk(const char *s, enum bk_walk *walk)
{
	if (!strcmp(s, "u64s"))
		*walk = BK_WALK_U64S;
	else if (!strcmp(s, "table"))
		*walk = BK_WALK_TABLE;
	else {
		fprintf(stderr, "%s: --walk: unknown walk \"%s\" (u64s, table)\n", prog_name, s);
		return -EINVAL;
	}
	return 0;
}

int parse_shape(const char *s, enum bk_shape *shape)
{
	if (!strcmp(s, "auto"))
		*shape = BK_SHAPE_AUTO;
	else if (!strcmp(s, "may_goto"))
		*shape = BK_SHAPE_MAY_GOTO;
	else if (!strcmp(s, "bpf_loop"))
		*shape = BK_SHAPE_BPF_LOOP;
	else {
		fprintf(stderr, "%s: --shape: unknown shape \"%s\" (auto, may_goto, bpf_loop)\n",
			prog_name, s);
		return -EINVAL;
	}
	return 0;
}

int parse_node_size(const char *s, unsigned *out)
{
	char *end;
	unsigned long v = strtoul(s, &end, 0);

	if (*end || v < BK_NODE_SIZE_MIN || v > BK_NODE_SIZE_MAX || v % 8) {
		fprintf(stderr, "%s: --node-size: \"%s\" is not a multiple of 8 in %u..%u\n",
			prog_name, s, BK_NODE_SIZE_MIN, BK_NODE_SIZE_MAX);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

void json_str(FILE *out, const char *s)
{
	fputc('"', out);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(out, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fprintf(out, "\\u%04x", *s);
		else
			fputc(*s, out);
	}
	fputc('"', out);
}
