// SPDX-License-Identifier: GPL-2.0
/*
 * loader demo: built-in filesystem-like nodes unpacked in the kernel, every
 * key checked against the C reference, timed.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "caps.h"
#include "cmd.h"
#include "demo.h"

void demo_usage(FILE *out, const char *prog)
{
	fprintf(out,
"Usage: %s demo [-j]\n"
"\n"
"Builds five nodes of 1024 keys (extents of one inode, extents across 200\n"
"inodes, dirents with 64-bit hashes, inodes, and keys in the widest\n"
"format), computes each node's format from its keys and min/max positions,\n"
"loads the format's generated program, unpacks the node in one program run,\n"
"checks every key against the C reference, and times both. Needs CAP_BPF\n"
"and CAP_PERFMON. Everything loaded is released before exit.\n"
"\n"
"  -j, --json   print the report as JSON\n"
"\n"
"Exit status: 0 if every key matched, 1 otherwise.\n", prog);
}

int demo_main(int argc, char **argv, const char *prog)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	struct demo_report rep;
	unsigned i, bad = 0;
	char why[160], *log;
	bool json = false;
	int opt, ret;

	while ((opt = getopt_long(argc, argv, "jh", opts, NULL)) != -1) {
		switch (opt) {
		case 'j': json = true; break;
		case 'h': demo_usage(stdout, prog_name); return 0;
		default: demo_usage(stderr, prog_name); return EXIT_USAGE;
		}
	}
	if (!bk_caps_ok(why, sizeof(why))) {
		fprintf(stderr, "%s: %s\n", prog_name, why);
		return EXIT_KERNEL;
	}
	log = calloc(1, 1 << 20);	/* only a rejection writes it */
	if (!log)
		return EXIT_KERNEL;
	ret = demo_run(&rep, log, 1 << 20);
	if (ret) {
		fprintf(stderr, "%s: demo failed: %s\n%s", prog_name, strerror(-ret), log);
		free(log);
		return EXIT_KERNEL;
	}
	free(log);
	for (i = 0; i < rep.nr_rows; i++)
		bad += rep.rows[i].mismatches;
	if (json) {
		printf("{\"shape\":\"%s\",\"walk\":\"%s\",\"why\":", bk_shape_name(rep.ft.best),
		       bk_walk_name(rep.ft.best_walk));
		json_str(stdout, rep.ft.why);
		printf(",\"jit\":%s,\"nodes\":[", rep.ft.jit ? "true" : "false");
		for (i = 0; i < rep.nr_rows; i++) {
			const struct demo_row *r = &rep.rows[i];
			char fs[200];

			bkey_format_to_str(&r->f, fs, sizeof(fs));
			printf("%s{\"name\":\"%s\",\"format\":\"%s\",\"prog\":\"%s\",\"keys\":%u,"
			       "\"stored_unpacked\":%u,\"mismatches\":%u,\"xlated_insns\":%u,"
			       "\"jited_bytes\":%u,\"prepare_us\":%.1f,\"bpf_ns_per_key\":%.2f,"
			       "\"ref_ns_per_key\":%.2f}", i ? "," : "", r->name, fs, r->prog,
			       r->keys, r->unpacked, r->mismatches, r->xlated, r->jited,
			       r->prepare_us, r->bpf_ns, r->ref_ns);
		}
		printf("],\"mismatches\":%u}\n", bad);
		return bad ? EXIT_KERNEL : 0;
	}
	printf("program shape: %s, walk by %s (%s); JIT %s\n\n", bk_shape_name(rep.ft.best),
	       bk_walk_name(rep.ft.best_walk), rep.ft.why, rep.ft.jit ? "on" : "off (interpreter)");
	printf("%-15s %-15s %5s %8s %6s %6s %10s %9s %9s %6s\n", "node", "program", "keys",
	       "unpacked", "xlated", "JIT B", "prepare us", "bpf ns/k", "C ns/k", "C/bpf");
	for (i = 0; i < rep.nr_rows; i++) {
		const struct demo_row *r = &rep.rows[i];

		printf("%-15s %-15s %5u %8u %6u %6u %10.1f %9.2f %9.2f %6.2f\n", r->name, r->prog,
		       r->keys, r->unpacked, r->xlated, r->jited, r->prepare_us, r->bpf_ns,
		       r->ref_ns, r->bpf_ns > 0 ? r->ref_ns / r->bpf_ns : 0);
	}
	for (i = 0; i < rep.nr_rows; i++) {
		char fs[200];

		bkey_format_to_str(&rep.rows[i].f, fs, sizeof(fs));
		printf("  %-15s %s\n", rep.rows[i].name, fs);
	}
	printf("\nprepare = generate + verify + JIT, median of 21 loads; bpf ns/key is\n"
	       "kernel-measured over one program run per node (median of 15 rounds of 200\n"
	       "runs), the node's key table built once when it was loaded; C is the\n"
	       "reference streaming unpack (bcachefs's portable shape). make bench compares\n"
	       "every method side by side.\n");
	printf("mismatches against the reference: %u\n", bad);
	return bad ? EXIT_KERNEL : 0;
}
