// SPDX-License-Identifier: GPL-2.0
/*
 * Generated programs as BPF ELF objects (gen/obj.c, loader gen -o): each
 * object, opened and loaded by libbpf, must give the kernel the same
 * instructions as a direct load of the same program and the same keys
 * out of the same input; bpftool loads it and shows the same source
 * lines; its skeleton compiles and runs; llvm-objdump reads it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "test_progs.h"
#include "examples.h"
#include "kenv.h"

#define OBJ_STREAM_WORDS	4096
#define OBJ_RANDOM_FORMATS	40

/* The placeholders gen -o writes: the listing's names for the maps. */
enum { FD_CTL = 1, FD_IN, FD_OUT };

static uint64_t words[OBJ_STREAM_WORDS];
static struct bkey out_direct[BK_OUT_CAP_KEYS];

/* A tmpdir of the test's own, made once. */
static const char *obj_dir(void)
{
	static char dir[] = "/tmp/bkey-obj.XXXXXX";
	static bool made;

	if (!made)
		made = mkdtemp(dir) != NULL;
	return made ? dir : NULL;
}

static void obj_dir_remove(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", obj_dir());
	if (system(cmd))
		fprintf(stderr, "  could not remove %s\n", obj_dir());
}

/* @f's program in @walk with the placeholder fds, written to @path. */
static int write_obj(const struct bkey_format *f, enum bk_shape shape, enum bk_walk walk,
		     struct bk_prog *p, const char *path)
{
	struct bk_gen_opts o = {
		.shape = shape, .walk = walk, .chunk = 1, .annotate = true,
		.strict_align = bk_strict_align_default(),
		.ctl_fd = FD_CTL, .in_fd = FD_IN, .out_fd = FD_OUT,
	};
	struct bk_obj_map maps[3];
	char err[512];
	int ret;

	ret = bk_gen_unpack(f, &o, p, NULL);
	if (ret)
		return ret;
	bk_runtime_obj_maps(maps, FD_CTL, FD_IN, FD_OUT);
	ret = bk_prog_write_obj(p, maps, 3, path, err, sizeof(err));
	if (ret)
		fprintf(stderr, "  %s\n", err);
	return ret;
}

/* The same program loaded directly, on @rt's maps. */
static int load_direct(const struct bkey_format *f, enum bk_shape shape, enum bk_walk walk,
		       struct bk_runtime *rt, struct bk_prog *p, struct bk_loaded *l)
{
	struct bk_gen_opts o = {
		.shape = shape, .walk = walk, .chunk = 1, .annotate = true,
		.strict_align = bk_strict_align_default(),
		.ctl_fd = rt->ctl_fd, .in_fd = rt->in_fd, .out_fd = rt->out_fd,
	};
	int ret = bk_gen_unpack(f, &o, p, NULL);

	return ret ?: bk_prog_load(p, l, NULL, 0);
}

/* The kernel's xlated instructions of program @fd (malloc'd), and their count. */
static struct bpf_insn *xlated(int fd, unsigned *cnt)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);
	struct bpf_insn *insns;

	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return NULL;
	*cnt = info.xlated_prog_len / sizeof(*insns);
	insns = calloc(*cnt + 1, sizeof(*insns));
	if (!insns)
		return NULL;
	memset(&info, 0, sizeof(info));
	info.xlated_prog_len = *cnt * sizeof(*insns);
	info.xlated_prog_insns = (unsigned long)insns;
	len = sizeof(info);
	if (bpf_obj_get_info_by_fd(fd, &info, &len)) {
		free(insns);
		return NULL;
	}
	return insns;
}

static uint32_t map_id(int fd)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);

	return bpf_obj_get_info_by_fd(fd, &info, &len) ? 0 : info.id;
}

/* Map references in xlated code carry the map's id: which of @ids (ctl, in, out) it is. */
static int which_map(uint32_t id, const uint32_t ids[3])
{
	int i;

	for (i = 0; i < 3; i++)
		if (ids[i] == id)
			return i;
	return -1;
}

/*
 * Programs @a and @b are the same to the kernel: the same xlated
 * instructions, a map reference in one where the other refers to the
 * same map of its own (@ids_a and @ids_b: ctl, in, out).
 */
static bool same_xlated(int a, const uint32_t ids_a[3], int b, const uint32_t ids_b[3])
{
	unsigned na = 0, nb = 0, i;
	struct bpf_insn *xa = xlated(a, &na), *xb = xlated(b, &nb);
	bool ok = ASSERT_TRUE(xa && xb, "xlated instructions read") &&
		  ASSERT_EQ(na, nb, "as many xlated instructions");

	for (i = 0; ok && i < na; i++) {
		if (xa[i].code == (BPF_LD | BPF_DW | BPF_IMM) && xa[i].src_reg == BPF_PSEUDO_MAP_FD &&
		    xb[i].code == xa[i].code && xb[i].src_reg == xa[i].src_reg) {
			ok &= ASSERT_EQ(which_map(xa[i].imm, ids_a), which_map(xb[i].imm, ids_b),
					"the same map referred to");
			ok &= ASSERT_GE(which_map(xa[i].imm, ids_a), 0, "one of the three maps");
			ok &= ASSERT_EQ(xa[i].dst_reg, xb[i].dst_reg, "ld_imm64 register");
			i++;
			continue;
		}
		if (!ASSERT_MEMEQ(&xa[i], &xb[i], sizeof(xa[i]), "xlated instruction"))
			fprintf(stderr, "  instruction %u of %u\n", i, na);
		ok &= !memcmp(&xa[i], &xb[i], sizeof(xa[i]));
	}
	free(xa);
	free(xb);
	return ok;
}

/* Program @fd's line_info (malloc'd, *nr of them) and its BTF (for the strings). */
static struct bpf_line_info *line_info(int fd, __u32 *nr, struct btf **btf)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);
	struct bpf_line_info *li;

	*btf = NULL;
	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return NULL;
	*nr = info.nr_line_info;
	li = calloc(*nr + 1, sizeof(*li));
	if (!li)
		return NULL;
	memset(&info, 0, sizeof(info));
	info.nr_line_info = *nr;
	info.line_info_rec_size = sizeof(*li);
	info.line_info = (unsigned long)li;
	len = sizeof(info);
	if (bpf_obj_get_info_by_fd(fd, &info, &len) || !info.btf_id) {
		free(li);
		return NULL;
	}
	*btf = btf__load_from_kernel_by_id(info.btf_id);
	if (libbpf_get_error(*btf)) {
		*btf = NULL;
		free(li);
		return NULL;
	}
	return li;
}

/*
 * The kernel has the same source lines for programs @a and @b: at the
 * same instructions, with the same file, text, line and column.
 */
static bool same_lines(int a, int b)
{
	struct btf *ba = NULL, *bb = NULL;
	__u32 na = 0, nb = 0, i;
	struct bpf_line_info *la = line_info(a, &na, &ba), *lb = line_info(b, &nb, &bb);
	bool ok = ASSERT_TRUE(la && lb, "line_info read") && ASSERT_EQ(na, nb, "as many lines");

	for (i = 0; ok && i < na; i++) {
		ok &= ASSERT_EQ(la[i].insn_off, lb[i].insn_off, "a line's instruction");
		ok &= ASSERT_EQ(la[i].line_col, lb[i].line_col, "a line's number and column");
		ok &= ASSERT_STREQ(btf__name_by_offset(ba, la[i].line_off),
				   btf__name_by_offset(bb, lb[i].line_off), "a line's text");
		ok &= ASSERT_STREQ(btf__name_by_offset(ba, la[i].file_name_off),
				   btf__name_by_offset(bb, lb[i].file_name_off), "a line's file");
	}
	btf__free(ba);
	btf__free(bb);
	free(la);
	free(lb);
	return ok;
}

/*
 * @f's object through libbpf (open, load) against the direct load: the
 * same instructions and source lines to the kernel, and over @nr_keys
 * random keys the same status, stop and keys out.
 */
static bool check_format(struct kenv *k, const struct bkey_format *f, enum bk_shape shape,
			 enum bk_walk walk, uint64_t *seed, unsigned nr_keys)
{
	static struct bk_prog p;
	char path[128];
	struct bpf_object *obj = NULL;
	struct bpf_program *prog;
	struct bk_runtime ort = { .ctl_fd = -1, .in_fd = -1, .out_fd = -1 };
	struct bk_loaded direct = { .fd = -1 }, via_obj;
	uint32_t ids_d[3], ids_o[3], n, nk_d = 0, nk_o = 0, stop_d = 0, stop_o = 0;
	uint32_t st_d = ~0u, st_o = ~1u;
	int fds[3];
	unsigned got;
	bool ok = false;

	snprintf(path, sizeof(path), "%s/prog.bpf.o", obj_dir());
	if (!ASSERT_OK(write_obj(f, shape, walk, &p, path), "write the object") ||
	    !ASSERT_OK(load_direct(f, shape, walk, &k->rt, &p, &direct), "direct load"))
		goto out;
	obj = bpf_object__open_file(path, NULL);
	if (!ASSERT_OK(libbpf_get_error(obj), "bpf_object__open_file")) {
		obj = NULL;
		goto out;
	}
	if (!ASSERT_OK(bpf_object__load(obj), "bpf_object__load"))
		goto out;
	prog = bpf_object__find_program_by_name(obj, p.func_name);
	if (!ASSERT_TRUE(prog, "the program, by its BTF name"))
		goto out;
	fds[0] = bpf_object__find_map_fd_by_name(obj, "bk_ctl");
	fds[1] = bpf_object__find_map_fd_by_name(obj, "bk_in");
	fds[2] = bpf_object__find_map_fd_by_name(obj, "bk_out");
	if (!ASSERT_TRUE(fds[0] >= 0 && fds[1] >= 0 && fds[2] >= 0, "its three maps"))
		goto out;
	ids_d[0] = map_id(k->rt.ctl_fd), ids_d[1] = map_id(k->rt.in_fd);
	ids_d[2] = map_id(k->rt.out_fd);
	ids_o[0] = map_id(fds[0]), ids_o[1] = map_id(fds[1]), ids_o[2] = map_id(fds[2]);
	if (!same_xlated(bpf_program__fd(prog), ids_o, direct.fd, ids_d) ||
	    !same_lines(bpf_program__fd(prog), direct.fd))
		goto out;

	/* the same keys out: the object's maps adopted as a runtime */
	if (!ASSERT_OK(bk_runtime_adopt(&ort, dup(fds[0]), dup(fds[1]), dup(fds[2])),
		       "the object's maps as a runtime"))
		goto out;
	via_obj = direct;
	via_obj.fd = bpf_program__fd(prog);
	n = rnd_stream(seed, f, nr_keys, words, OBJ_STREAM_WORDS, &got);
	ok = ASSERT_OK(bk_unpack_words(&direct, &k->rt, words, n, &st_d, &nk_d, &stop_d),
		       "run the direct load");
	memcpy(out_direct, k->rt.out, sizeof(*out_direct) * (nk_d < BK_OUT_CAP_KEYS ? nk_d : 0));
	ok &= ASSERT_OK(bk_unpack_words(&via_obj, &ort, words, n, &st_o, &nk_o, &stop_o),
			"run the object's");
	ok &= ASSERT_EQ(st_o, st_d, "status") & ASSERT_EQ(nk_o, nk_d, "keys out") &
	     ASSERT_EQ(stop_o, stop_d, "where the run stopped") &
	     ASSERT_EQ(nk_d, got, "every key unpacked");
	if (ok && nk_d <= BK_OUT_CAP_KEYS)
		ok = ASSERT_MEMEQ(ort.out, out_direct, sizeof(*out_direct) * nk_d, "keys out");
out:
	bk_runtime_close(&ort);
	bpf_object__close(obj);
	bk_prog_unload(&direct);
	if (!ok) {
		char fs[200];

		bkey_format_to_str(f, fs, sizeof(fs));
		fprintf(stderr, "  format %s, %s shape, walk by %s\n", fs, bk_shape_name(shape),
			bk_walk_name(walk));
	}
	return ok;
}

/* The program shapes this kernel loads: may_goto's, the bpf_loop callbacks'. */
static int kernel_shapes(struct kenv *k, enum bk_shape sh[2])
{
	int n = kenv_shapes(k, sh);

	if (!n)
		test__skip("this kernel loads neither shape (may_goto, bpf_loop with the JIT)");
	return n;
}

static void libbpf_formats(struct kenv *k)
{
	const struct bkey_format ex[] = {
		ex2_format(), ex3_format(), ex4_format(), ex7_format(BKEY_FORMAT_ERA_CURRENT),
		ex11_format(),
	};
	uint64_t seed = 0x5eed0b1e;
	unsigned i, done = 0;
	enum bk_shape sh[2];
	int s, nsh = kernel_shapes(k, sh);
	bool ok = true;

	/* every shape, both walks: the bpf_loop shape's callbacks in .text */
	for (s = 0; s < nsh && ok; s++) {
		for (i = 0; i < 2 * (sizeof(ex) / sizeof(ex[0])) && ok; i++, done++)
			ok = check_format(k, &ex[i / 2], sh[s], i % 2 ? BK_WALK_TABLE : BK_WALK_U64S,
					  &seed, 64);
		for (i = 0; i < OBJ_RANDOM_FORMATS && ok; i++, done++) {
			struct bkey_format f = rnd_format(&seed, -1, 0);

			ok = check_format(k, &f, sh[s], i % 2 ? BK_WALK_TABLE : BK_WALK_U64S, &seed,
					  4 + rnd_below(&seed, 60));
		}
	}
	test__count("objects loaded by libbpf, equal to the direct load", done);
}

/* @text with every "map[id:N]" numbered by first appearance instead ("map[#1]"). */
static char *number_maps(const char *text)
{
	char *out = malloc(strlen(text) + 1), *o = out;
	unsigned long ids[16];
	unsigned nr = 0, i;

	while (out && *text) {
		unsigned long id;
		char *end;

		if (strncmp(text, "map[id:", 7)) {
			*o++ = *text++;
			continue;
		}
		id = strtoul(text + 7, &end, 10);
		for (i = 0; i < nr && ids[i] != id; i++)
			;
		if (i == nr && nr < 16)
			ids[nr++] = id;
		o += sprintf(o, "map[#%u", i + 1);
		text = end;
	}
	if (out)
		*o = 0;
	return out;
}

/*
 * bpftool prog load takes the object, and its dump with linum shows what
 * the direct load's shows (maps numbered in order of use).
 */
static void bpftool_load(struct kenv *k)
{
	static struct bk_prog p;
	char mnt[] = "/tmp/bkey-objfs.XXXXXX", path[128], cmd[512];
	struct bkey_format f = ex3_format();
	struct bk_loaded direct = { .fd = -1 };
	char *a = NULL, *b = NULL, *na = NULL, *nb = NULL;
	enum bk_shape sh[2];
	int nsh = kernel_shapes(k, sh);

	if (!nsh || !kenv_have_tool("bpftool version 2>/dev/null", "bpftool") ||
	    !mount_bpffs(mnt))
		return;
	/* the kernel's own shape: with callbacks where it has no may_goto */
	snprintf(path, sizeof(path), "%s/ex3.bpf.o", obj_dir());
	if (!ASSERT_OK(write_obj(&f, sh[nsh - 1], BK_WALK_U64S, &p, path), "write the object"))
		goto out;
	snprintf(cmd, sizeof(cmd), "bpftool prog load %s %s/obj 2>&1 && echo loaded", path, mnt);
	a = run_cmd(cmd);
	if (!ASSERT_TRUE(a, "bpftool prog load") || !ASSERT_HAS_SUBSTR(a, "loaded", "loaded"))
		goto out;
	free(a);
	a = NULL;
	if (!ASSERT_OK(load_direct(&f, sh[nsh - 1], BK_WALK_U64S, &k->rt, &p, &direct),
		       "direct load"))
		goto out;
	snprintf(cmd, sizeof(cmd), "%s/direct", mnt);
	if (!ASSERT_OK(bpf_obj_pin(direct.fd, cmd), "pin the direct load"))
		goto out;
	snprintf(cmd, sizeof(cmd), "bpftool prog dump xlated pinned %s/obj linum", mnt);
	a = run_cmd(cmd);
	snprintf(cmd, sizeof(cmd), "bpftool prog dump xlated pinned %s/direct linum", mnt);
	b = run_cmd(cmd);
	if (!ASSERT_TRUE(a && b, "bpftool prog dump xlated ... linum"))
		goto out;
	na = number_maps(a);
	nb = number_maps(b);
	if (ASSERT_TRUE(na && nb, "dumps") && !ASSERT_STREQ(na, nb, "the object's dump is the "
							    "direct load's"))
		fprintf(stderr, "--- object:\n%s--- direct:\n%s", a, b);
	ASSERT_HAS_SUBSTR(a, p.file_name, "the listing's file name");
	ASSERT_HAS_SUBSTR(a, "inode: K[88..127] = w1[24..63] (40 bits) + offset 0x100000000",
			  "a field's line");
out:
	free(a);
	free(b);
	free(na);
	free(nb);
	bk_prog_unload(&direct);
	umount(mnt);
	rmdir(mnt);
}

/* bpftool gen skeleton of an object: the header compiles, and its program loads and runs. */
static void skeleton(struct kenv *k)
{
	static struct bk_prog p;
	static const char main_c[] =
		"#include <stdio.h>\n"
		"#include <bpf/bpf.h>\n"
		"#include \"bkobj.skel.h\"\n"
		"int main(void)\n"
		"{\n"
		"	struct bkobj *s = bkobj__open_and_load();\n"
		"	char pkt[64] = {};\n"
		"	int ret;\n"
		"	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = pkt, .data_size_in = 64);\n"
		"\n"
		"	if (!s)\n"
		"		return 1;\n"
		"	/* an empty run: no keys in, status BK_OK (0) in ctl */\n"
		"	ret = bpf_prog_test_run_opts(bpf_program__fd(s->progs.%s), &o);\n"
		"	printf(\"ran %%d status %%u maps %%d %%d %%d\\n\", ret, o.retval,\n"
		"	       bpf_map__fd(s->maps.bk_ctl), bpf_map__fd(s->maps.bk_in),\n"
		"	       bpf_map__fd(s->maps.bk_out));\n"
		"	bkobj__destroy(s);\n"
		"	return ret;\n"
		"}\n";
	struct bkey_format f = ex3_format();
	char path[128], cmd[1024], src[2048], *out;
	const char *dir = obj_dir();
	enum bk_shape sh[2];
	int nsh = kernel_shapes(k, sh);
	FILE *c;

	if (!nsh || !kenv_have_tool("bpftool version 2>/dev/null", "bpftool") ||
	    !kenv_have_tool("cc --version 2>/dev/null", "a C compiler (cc) for the skeleton"))
		return;
	snprintf(path, sizeof(path), "%s/ex3.bpf.o", dir);
	if (!ASSERT_OK(write_obj(&f, sh[nsh - 1], BK_WALK_U64S, &p, path), "write the object"))
		return;
	snprintf(cmd, sizeof(cmd), "bpftool gen skeleton %s name bkobj > %s/bkobj.skel.h && echo ok",
		 path, dir);
	out = run_cmd(cmd);
	ASSERT_TRUE(out && strstr(out, "ok"), "bpftool gen skeleton");
	free(out);
	snprintf(cmd, sizeof(cmd), "%s/skel.c", dir);
	c = fopen(cmd, "w");
	if (!ASSERT_TRUE(c, "write skel.c"))
		return;
	snprintf(src, sizeof(src), main_c, p.func_name);
	fputs(src, c);
	fclose(c);
	snprintf(cmd, sizeof(cmd), "cc -Wall -Werror -I%s -o %s/skel %s/skel.c -lbpf 2>&1 && "
		 "%s/skel", dir, dir, dir, dir);
	out = run_cmd(cmd);
	if (ASSERT_TRUE(out, "the skeleton compiles, loads and runs"))
		ASSERT_HAS_SUBSTR(out, "ran 0 status 0 maps", "it ran: BK_OK over no keys");
	free(out);
}

/* llvm-objdump reads it: the program's symbol, and its instructions. */
static void objdump(void)
{
	static struct bk_prog p;
	struct bkey_format f = ex3_format();
	char path[128], cmd[256], *out;

	if (!kenv_have_tool("llvm-objdump --version 2>/dev/null",
			    "llvm-objdump (Debian's llvm package)"))
		return;
	snprintf(path, sizeof(path), "%s/ex3.bpf.o", obj_dir());
	if (!ASSERT_OK(write_obj(&f, BK_SHAPE_MAY_GOTO, BK_WALK_U64S, &p, path),
		       "write the object"))
		return;
	snprintf(cmd, sizeof(cmd), "llvm-objdump -d -l -r %s", path);
	out = run_cmd(cmd);
	if (ASSERT_TRUE(out, "llvm-objdump -d -l -r")) {
		ASSERT_HAS_SUBSTR(out, "file format elf64-bpf", "a BPF object");
		ASSERT_HAS_SUBSTR(out, "Disassembly of section socket:", "its program's section");
		ASSERT_HAS_SUBSTR(out, p.func_name, "the program's symbol");
		ASSERT_HAS_SUBSTR(out, "r1 = 0 ll", "a map reference as clang leaves it");
		ASSERT_HAS_SUBSTR(out, "R_BPF_64_64\tbk_ctl", "relocated against its map");
	}
	free(out);
	/* with callbacks: static functions in .text, referred to through it */
	if (!ASSERT_OK(write_obj(&f, BK_SHAPE_BPF_LOOP, BK_WALK_U64S, &p, path),
		       "write the object with callbacks"))
		return;
	out = run_cmd(cmd);
	if (ASSERT_TRUE(out, "llvm-objdump -d -l -r, callbacks")) {
		ASSERT_HAS_SUBSTR(out, "Disassembly of section .text:", "the callbacks' section");
		ASSERT_HAS_SUBSTR(out, "R_BPF_64_64\t.text", "the callback's address relocated");
	}
	free(out);
}

/* Bad input: clear errors, and no file. */
static void refusals(void)
{
	static struct bk_prog p;
	struct bkey_format f = ex3_format();
	struct bk_gen_opts o = {
		.shape = BK_SHAPE_MAY_GOTO, .walk = BK_WALK_U64S, .chunk = 1,
		.ctl_fd = FD_CTL, .in_fd = FD_IN, .out_fd = FD_OUT,
	};
	struct bk_obj_map maps[3];
	char path[128], err[512];

	snprintf(path, sizeof(path), "%s/refused.bpf.o", obj_dir());
	bk_runtime_obj_maps(maps, FD_CTL, FD_IN, FD_OUT);
	if (!ASSERT_OK(bk_gen_unpack(&f, &o, &p, NULL), "generate"))
		return;
	ASSERT_EQ(bk_prog_write_obj(&p, maps, 2, path, err, sizeof(err)), -EINVAL,
		  "a map fd none of the maps has");
	ASSERT_HAS_SUBSTR(err, "refers to map fd 3", "names the fd");
	ASSERT_NEQ(access(path, F_OK), 0, "no file written");
	/* a call of a function: only bpf_loop callbacks are written */
	p.e.insn[0] = (struct bpf_insn){ .code = BPF_JMP | BPF_CALL, .src_reg = BPF_PSEUDO_CALL,
					 .imm = 1 };
	ASSERT_EQ(bk_prog_write_obj(&p, maps, 3, path, err, sizeof(err)), -EOPNOTSUPP,
		  "a bpf-to-bpf call");
	ASSERT_HAS_SUBSTR(err, "calls a function directly", "says why");
	ASSERT_NEQ(access(path, F_OK), 0, "no file written");
}

DEFINE_TEST(obj)
{
	struct kenv *k;

	if (!obj_dir()) {
		test__skip("no temporary directory");
		return;
	}
	if (test__start_subtest("refusals"))
		refusals();
	if (test__start_subtest("libbpf") && (k = kenv_get()))
		libbpf_formats(k);
	if (test__start_subtest("bpftool") && (k = kenv_get()))
		bpftool_load(k);
	if (test__start_subtest("skeleton") && (k = kenv_get()))
		skeleton(k);
	if (test__start_subtest("objdump"))
		objdump();
	obj_dir_remove();
}
