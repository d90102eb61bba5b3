/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The loader's commands: each has a file of its own (user/<name>cmd.c, and
 * run.c for the main job) with its main and its --help beside its code;
 * user/loader.c dispatches through a table of them.  What they share
 * lives in user/cmd.c.
 */
#ifndef USER_CMD_H
#define USER_CMD_H

#include <stdbool.h>
#include <stdio.h>

#include "bkey.h"
#include "gen.h"

#define EXIT_USAGE	2	/* bad input: nothing was loaded */
#define EXIT_KERNEL	1	/* the kernel refused or a run failed */

/* The name the loader was run as, for messages ("loader"). */
extern const char *prog_name;

struct bk_cmd {
	const char	*name;
	/* the command's own argv (argv[0] is its name): an exit status */
	int		(*main)(int argc, char **argv, const char *prog);
	/* its --help */
	void		(*usage)(FILE *out, const char *prog);
	/* a line or two for the loader's --help */
	const char	*summary;
};

int unpack_main(int argc, char **argv, const char *prog);
void unpack_usage(FILE *out, const char *prog);
int demo_main(int argc, char **argv, const char *prog);
void demo_usage(FILE *out, const char *prog);
int lookup_main(int argc, char **argv, const char *prog);
void lookup_usage(FILE *out, const char *prog);
int scan_main(int argc, char **argv, const char *prog);
void scan_usage(FILE *out, const char *prog);
int dump_main(int argc, char **argv, const char *prog);
void dump_usage(FILE *out, const char *prog);
int gen_main(int argc, char **argv, const char *prog);
void gen_usage(FILE *out, const char *prog);

/*
 * Checks capabilities, probes the kernel, creates the shared maps; sets
 * o's shape (if auto) and map fds.  Prints one line on failure.
 */
int open_kernel(struct bk_runtime *rt, struct bk_gen_opts *o);
/* Generates and loads; a verifier rejection prints its log and our listing. */
int gen_load_or_report(const struct bkey_format *f, const struct bk_gen_opts *o,
		       const struct bk_runtime *rt, struct bk_prog *p, struct bk_loaded *l);

/* Option values; each prints one line naming the option on a bad one. */
int parse_format_arg(const char *s, struct bkey_format *f);
int parse_walk(const char *s, enum bk_walk *walk);
int parse_shape(const char *s, enum bk_shape *shape);
int parse_node_size(const char *s, unsigned *out);

/* @s as a JSON string, quoted and escaped. */
void json_str(FILE *out, const char *s);

#endif
