// SPDX-License-Identifier: GPL-2.0
/*
 * loader: bcachefs key unpacking through generated BPF programs.
 *
 * The commands, each in a file of its own with its --help (user/cmd.h):
 *
 *   loader [run]      the main job: the built-in workload (run.c)
 *   loader demo       built-in nodes unpacked and checked (democmd.c)
 *   loader unpack     a key stream unpacked in the kernel (unpackcmd.c)
 *   loader lookup     a btree from a key file, looked up (lookupcmd.c)
 *   loader scan       the keys from a position on (lookupcmd.c)
 *   loader image      a real bcachefs image (imagecmd.c)
 *   loader gen        the generated program (gencmd.c)
 *   loader dump       a program's JIT'd code (dumpcmd.c)
 *   loader kmod       the programs called from kernel C (kmodcmd.c)
 */
#include <stdio.h>
#include <string.h>

#include <bpf/libbpf.h>

#include "cmd.h"
#include "imagecmd.h"
#include "kmodcmd.h"
#include "run.h"
#include "util.h"

const char *prog_name = "loader";

static const struct bk_cmd cmds[] = {
	{ "run", run_main, run_usage,
	  "(the default) the main job: a ~1M-key filesystem-like workload in\n"
	  "three btrees, lookups and scans in the kernel, checked, reported" },
	{ "demo", demo_main, demo_usage,
	  "unpack built-in filesystem-like nodes in the kernel, check every\n"
	  "key against the C reference, report" },
	{ "unpack", unpack_main, unpack_usage,
	  "unpack a bset-style stream of keys in the kernel" },
	{ "lookup", lookup_main, lookup_usage,
	  "build a btree from a key file, look positions up in the kernel" },
	{ "scan", scan_main, scan_usage,
	  "the keys from a position on, from the same btree, in the kernel" },
	{ "image", image_main, image_usage,
	  "a real bcachefs image: its btrees loaded into BPF with their own\n"
	  "formats, every key unpacked in the kernel, lookups and scans" },
	{ "gen", gen_main, gen_usage,
	  "print the generated program for a format (no root needed)" },
	{ "dump", dump_main, dump_usage,
	  "a program's JIT'd machine code (bpftool on Debian cannot)" },
	{ "kmod", kmod_main, kmod_usage,
	  "call the programs from kernel C: kmod/'s module, several CPUs at\n"
	  "once, every key checked against C, timed against it" },
};

#define NR_CMDS	(sizeof(cmds) / sizeof(cmds[0]))

/* @text indented to the summaries' column after its first line. */
static void print_summary(FILE *out, const char *name, const char *text)
{
	fprintf(out, "  %-8s ", name);
	for (; *text; text++) {
		fputc(*text, out);
		if (*text == '\n')
			fprintf(out, "%11s", "");
	}
	fputc('\n', out);
}

static void usage(FILE *out)
{
	unsigned i;

	fprintf(out,
"Usage: %s [COMMAND] [OPTIONS]\n"
"\n"
"Unpack bcachefs btree keys with BPF programs generated per key format.\n"
"\n"
"Commands:\n", prog_name);
	for (i = 0; i < NR_CMDS; i++)
		print_summary(out, cmds[i].name, cmds[i].summary);
	print_summary(out, "help", "this text; 'COMMAND --help' describes a command");
	fprintf(out,
"\n"
"A format is written 'key_u64s=K bits=b0,b1,b2,b3,b4,b5 offsets=o0,o1,o2,o3,o4,o5'\n"
"with fields in the order inode, offset, snapshot, size, version_hi,\n"
"version_lo. Numbers are decimal or 0x-hex.\n"
"\n"
"Exit status: 0 success, 1 kernel or I/O failure, 2 bad input (nothing loaded).\n");
}

static bool is_help(const char *arg)
{
	return !strcmp(arg, "help") || !strcmp(arg, "--help") || !strcmp(arg, "-h");
}

int main(int argc, char **argv)
{
	unsigned i;

	libbpf_set_print(NULL);
	bk_raise_nofile();
	if (argc >= 2 && is_help(argv[1])) {
		usage(stdout);
		return 0;
	}
	/* no command, or options first: the main job */
	if (argc < 2 || argv[1][0] == '-')
		return run_main(argc, argv, prog_name);
	for (i = 0; i < NR_CMDS; i++)
		if (!strcmp(argv[1], cmds[i].name))
			return cmds[i].main(argc - 1, argv + 1, prog_name);
	fprintf(stderr, "%s: unknown command \"%s\"\n", prog_name, argv[1]);
	usage(stderr);
	return EXIT_USAGE;
}
