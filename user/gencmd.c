// SPDX-License-Identifier: GPL-2.0
/*
 * loader gen: the program generated for a format, as an annotated listing,
 * JSON or a BPF ELF object; with --load, loaded and measured.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "util.h"

void gen_usage(FILE *out, const char *prog)
{
	fprintf(out,
"Usage: %s gen --format FMT [--shape auto|may_goto|bpf_loop] [--walk u64s|table]\n"
"               [--chunk N] [--strict-align] [--load [--repeat N]] [-o FILE] [-j]\n"
"\n"
"Prints the program generated for FMT as an annotated listing: the source\n"
"lines that become BTF line_info, each instruction, and comments. Without\n"
"--load it needs no privileges and loads nothing. With -o it writes the\n"
"program as a BPF ELF object instead (README \"Offline objects\").\n"
"\n"
"  --format FMT      the key format (required)\n"
"  --shape S         program shape; auto (default) is may_goto without\n"
"                    --load, the kernel's best with it\n"
"  --walk W          how the program finds the next key: u64s (default; a\n"
"                    bset stream, as 'unpack' runs) or table (the key table\n"
"                    a loaded node carries), in either shape\n"
"  --chunk N         keys per loop pass (may_goto) or per bpf_loop callback,\n"
"                    1..8 (default 1)\n"
"  --strict-align    split unaligned 8-byte stores (strict-alignment arches)\n"
"  --load            also load it (root): report the prog id, xlated\n"
"                    instructions, JIT bytes, instructions the verifier\n"
"                    processed and prepare time (generate + verify + JIT);\n"
"                    everything is released before exit\n"
"  --repeat N        with --load: prepare N times, report the median\n"
"  -o, --output FILE write a relocatable BPF object, as clang would: the\n"
"                    program in section \"socket\", its maps (bk_ctl, bk_in,\n"
"                    bk_out) as BTF-defined maps, .BTF and .BTF.ext with the\n"
"                    listing's lines (a bpf_loop shape's callbacks are static\n"
"                    functions in .text); bpftool prog load, libbpf, bpftool\n"
"                    gen skeleton and llvm-objdump take it; exit status 1 if\n"
"                    it cannot be written (the message says why)\n"
"  -j, --json        JSON: names, shape, instruction count, lines, listing\n"
"                    (and the load figures with --load; with -o, the file)\n", prog);
}

struct load_report {
	struct bk_loaded	l;
	double			prepare_us;	/* median */
	double			prepare_p90_us;
	unsigned		repeat;
};

/*
 * Generates and loads @f @repeat times with real map fds; keeps the
 * figures of the last load, unloads everything.
 */
static int gen_and_load(const struct bkey_format *f, struct bk_gen_opts *o,
			struct bk_prog *p, unsigned repeat, struct load_report *r)
{
	struct bk_runtime rt = { .ctl_fd = -1, .in_fd = -1, .out_fd = -1 };
	double *t = calloc(repeat, sizeof(*t));
	unsigned i;
	int ret;

	if (!t) {
		ret = -ENOMEM;
		goto cleanup;
	}
	ret = open_kernel(&rt, o);
	if (ret)
		goto cleanup;
	for (i = 0; i < repeat; i++) {
		double t0 = bk_now_ns();

		bk_prog_unload(&r->l);
		ret = gen_load_or_report(f, o, &rt, p, &r->l);
		t[i] = (bk_now_ns() - t0) / 1e3;
		if (ret)
			goto cleanup;
	}
	r->prepare_us = bk_median(t, repeat);
	r->prepare_p90_us = t[repeat * 9 / 10];
	r->repeat = repeat;
cleanup:
	bk_prog_unload(&r->l);
	bk_runtime_close(&rt);
	free(t);
	return ret;
}

/* gen -o: @p as an object file; the placeholder fds name the runtime's maps. */
static int write_object(const struct bk_prog *p, const char *path, bool json)
{
	struct bk_obj_map maps[3];
	char err[512];
	int ret;

	bk_runtime_obj_maps(maps, 1, 2, 3);
	ret = bk_prog_write_obj(p, maps, 3, path, err, sizeof(err));
	if (ret) {
		fprintf(stderr, "%s: %s\n", prog_name, err);
		return ret == -EOPNOTSUPP ? EXIT_USAGE : EXIT_KERNEL;
	}
	if (json) {
		printf("{\"name\":\"%s\",\"func\":\"%s\",\"shape\":\"%s\",\"walk\":\"%s\","
		       "\"insns\":%d,\"object\":", p->name, p->func_name, bk_shape_name(p->shape),
		       bk_walk_name(p->walk), p->e.cnt);
		json_str(stdout, path);
		printf("}\n");
	} else {
		printf("wrote %s: prog %s (BTF func %s), %s shape, walk by %s, %d instructions, "
		       "%d lines\n", path, p->name, p->func_name, bk_shape_name(p->shape),
		       bk_walk_name(p->walk), p->e.cnt, p->e.nr_lines);
	}
	return 0;
}

int gen_main(int argc, char **argv, const char *prog)
{
	static const struct option opts[] = {
		{ "format", required_argument, NULL, 'f' },
		{ "shape", required_argument, NULL, 's' },
		{ "walk", required_argument, NULL, 'w' },
		{ "chunk", required_argument, NULL, 'c' },
		{ "strict-align", no_argument, NULL, 'a' },
		{ "load", no_argument, NULL, 'L' },
		{ "repeat", required_argument, NULL, 'r' },
		{ "json", no_argument, NULL, 'j' },
		{ "output", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	/* placeholders: a listing names the maps instead of their fds */
	static const struct bk_map_name names[] = { { 1, "ctl" }, { 2, "in" }, { 3, "out" } };
	struct bk_gen_opts o = {
		.shape = BK_SHAPE_AUTO, .annotate = true, .chunk = 1,
		.strict_align = bk_strict_align_default(),
		.ctl_fd = 1, .in_fd = 2, .out_fd = 3,
	};
	struct load_report r = { .l.fd = -1 };
	const char *fmt = NULL, *obj_path = NULL;
	struct bkey_format f;
	struct bk_prog *p;
	bool json = false, load = false;
	unsigned repeat = 1;
	int opt, ret, i;

	while ((opt = getopt_long(argc, argv, "f:s:w:c:aLr:jo:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'f': fmt = optarg; break;
		case 'w':
			if (parse_walk(optarg, &o.walk))
				return EXIT_USAGE;
			break;
		case 's':
			if (parse_shape(optarg, &o.shape))
				return EXIT_USAGE;
			break;
		case 'L': load = true; break;
		case 'r':
			repeat = atoi(optarg);
			if (repeat < 1 || repeat > 1000000) {
				fprintf(stderr, "%s: --repeat: \"%s\" is not in 1..1000000\n",
					prog_name, optarg);
				return EXIT_USAGE;
			}
			break;
		case 'c':
			o.chunk = atoi(optarg);
			if (o.chunk < 1 || o.chunk > BK_CHUNK_MAX) {
				fprintf(stderr, "%s: --chunk: \"%s\" is not in 1..%d\n", prog_name,
					optarg, BK_CHUNK_MAX);
				return EXIT_USAGE;
			}
			break;
		case 'a': o.strict_align = true; break;
		case 'j': json = true; break;
		case 'o': obj_path = optarg; break;
		case 'h': gen_usage(stdout, prog_name); return 0;
		default: gen_usage(stderr, prog_name); return EXIT_USAGE;
		}
	}
	if (parse_format_arg(fmt, &f))
		return EXIT_USAGE;
	if (obj_path && load) {
		fprintf(stderr, "%s: -o writes the object without loading it: drop --load (bpftool "
			"prog load FILE loads it)\n", prog_name);
		return EXIT_USAGE;
	}
	p = calloc(1, sizeof(*p));
	if (!p)
		return EXIT_KERNEL;
	if (load) {
		ret = gen_and_load(&f, &o, p, repeat, &r);
		if (ret) {
			bk_prog_release(p);
			free(p);
			return EXIT_KERNEL;
		}
		/* listing with the placeholder fds again */
		o.ctl_fd = 1, o.in_fd = 2, o.out_fd = 3;
	} else if (o.shape == BK_SHAPE_AUTO) {
		o.shape = BK_SHAPE_MAY_GOTO;
	}
	ret = bk_gen_unpack(&f, &o, p, NULL);
	if (ret) {
		fprintf(stderr, "%s: generating the program failed: %s\n", prog_name, strerror(-ret));
		bk_prog_release(p);
		free(p);
		return EXIT_KERNEL;
	}
	if (obj_path) {
		ret = write_object(p, obj_path, json);
		bk_prog_release(p);
		free(p);
		return ret;
	}
	if (!json) {
		printf("# prog %s (BTF func %s), %s shape, walk by %s, %d instructions\n",
		       p->name, p->func_name, bk_shape_name(p->shape), bk_walk_name(p->walk),
		       p->e.cnt);
		if (load)
			printf("# loaded as id %u: %u xlated insns, %u JIT bytes, %u insns processed "
			       "by the verifier; prepare (generate + verify + JIT) %.1f us median "
			       "of %u (p90 %.1f us)\n", r.l.id, r.l.xlated_insns, r.l.jited_bytes,
			       r.l.verified_insns, r.prepare_us, r.repeat, r.prepare_p90_us);
		bk_listing(&p->e, stdout, names, 3);
	} else {
		printf("{\"name\":\"%s\",\"func\":\"%s\",\"shape\":\"%s\",\"walk\":\"%s\","
		       "\"insns\":%d,\"lines\":[", p->name, p->func_name, bk_shape_name(p->shape),
		       bk_walk_name(p->walk), p->e.cnt);
		for (i = 0; i < p->e.nr_lines; i++) {
			printf("%s{\"insn\":%d,\"text\":", i ? "," : "", p->e.line[i].insn);
			json_str(stdout, bk_text(&p->e, p->e.line[i].text));
			printf("}");
		}
		printf("],\"listing\":[");
		for (i = 0; i < p->e.cnt;) {
			char buf[128];
			int n = bk_insn_str_named(&p->e.insn[i], i, buf, sizeof(buf), names, 3);

			printf("%s", i ? "," : "");
			json_str(stdout, buf);
			i += n;
		}
		printf("]");
		if (load)
			printf(",\"load\":{\"xlated_insns\":%u,\"jited_bytes\":%u,\"verified_insns\":%u,"
			       "\"prepare_us_median\":%.2f,\"prepare_us_p90\":%.2f,\"repeat\":%u}",
			       r.l.xlated_insns, r.l.jited_bytes, r.l.verified_insns, r.prepare_us,
			       r.prepare_p90_us, r.repeat);
		printf("}\n");
	}
	bk_prog_release(p);
	free(p);
	return 0;
}
