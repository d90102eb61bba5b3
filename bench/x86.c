// SPDX-License-Identifier: GPL-2.0
/*
 * Benchmark only, never linked into the product: an x86-64 emitter in the
 * style of bcachefs's old bch2_compile_bkey_format(), lowering the same
 * per-field plan (gen/plan.c) to machine code, as a loop over a node,
 * in either of the generated programs' walks:
 *
 *   by u64s:   void *fn(const void *in, const void *in_end, struct bkey *out)
 *   by table:  void *fn(const uint16_t *tab, const uint16_t *tab_end,
 *                       struct bkey *out, const uint64_t *in)
 *
 * (key i at in + 8 * tab[i], as the table walk reads a node's key table).
 * Each returns the end of the output.  Unpacked keys (format byte 1) are
 * copied.  Keys are trusted, as bcachefs trusted its nodes.
 */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "x86.h"

enum { RAX, RCX, RDX, RBX, RSP, RBP, RSI, RDI, R8, R9, R10, R11 };

#define KEY	RDI	/* the current key */
#define END	RSI	/* the end of the node */
#define OUT	RDX	/* the output bkey */
#define V	RAX
#define T	RCX
#define TMP64	R8

struct as {
	uint8_t	*p;
	size_t	n, cap;
};

static void b(struct as *a, uint8_t v)
{
	if (a->n < a->cap)
		a->p[a->n] = v;
	a->n++;
}

static void imm32(struct as *a, uint32_t v)
{
	b(a, v);
	b(a, v >> 8);
	b(a, v >> 16);
	b(a, v >> 24);
}

static void rex(struct as *a, bool w, int reg, int rm)
{
	uint8_t r = 0x40 | (w << 3) | ((reg >> 3) << 2) | (rm >> 3);

	if (r != 0x40)
		b(a, r);
}

/* modrm for [rm + disp] (rm is never rsp/r12 here) */
static void mem(struct as *a, int reg, int rm, int32_t disp)
{
	if (disp == 0 && (rm & 7) != RBP) {
		b(a, (reg & 7) << 3 | (rm & 7));
	} else if (disp >= -128 && disp <= 127) {
		b(a, 0x40 | (reg & 7) << 3 | (rm & 7));
		b(a, disp);
	} else {
		b(a, 0x80 | (reg & 7) << 3 | (rm & 7));
		imm32(a, disp);
	}
}

static void regreg(struct as *a, int reg, int rm)
{
	b(a, 0xc0 | (reg & 7) << 3 | (rm & 7));
}

/* mov r64/r32, [base + disp] */
static void load(struct as *a, bool w, int dst, int base, int32_t disp)
{
	rex(a, w, dst, base);
	b(a, 0x8b);
	mem(a, dst, base, disp);
}

/* mov [base + disp], r64/r32 */
static void store(struct as *a, bool w, int base, int32_t disp, int src)
{
	rex(a, w, src, base);
	b(a, 0x89);
	mem(a, src, base, disp);
}

/* mov dword/qword [base + disp], simm32 */
static void store_imm(struct as *a, bool w, int base, int32_t disp, uint32_t v)
{
	rex(a, w, 0, base);
	b(a, 0xc7);
	mem(a, 0, base, disp);
	imm32(a, v);
}

/* shl/shr r64, imm8 (ext 4/5) */
static void shift(struct as *a, int ext, int r, unsigned n)
{
	if (!n)
		return;
	rex(a, true, 0, r);
	b(a, 0xc1);
	regreg(a, ext, r);
	b(a, n);
}

/* op r, imm32 with ext: 0 add, 4 and */
static void alu_imm(struct as *a, bool w, int ext, int r, uint32_t v)
{
	rex(a, w, 0, r);
	b(a, 0x81);
	regreg(a, ext, r);
	imm32(a, v);
}

/* op dst, src: 0x01 add, 0x09 or (r/m64 op= r64) */
static void alu_reg(struct as *a, uint8_t op, int dst, int src)
{
	rex(a, true, src, dst);
	b(a, op);
	regreg(a, src, dst);
}

static void movabs(struct as *a, int r, uint64_t v)
{
	rex(a, true, 0, r);
	b(a, 0xb8 + (r & 7));
	imm32(a, v);
	imm32(a, v >> 32);
}

static bool fits_s32(uint64_t v)
{
	return (int64_t)v == (int32_t)v;
}

static void store_field(struct as *a, const struct bk_field_plan *fp, int r)
{
	store(a, fp->slot_size == 8, OUT, fp->slot_off, r);
}

static void emit_field(struct as *a, const struct bk_field_plan *fp)
{
	unsigned bits = fp->bits, sh = fp->sh;
	bool slot32 = fp->slot_size == 4;

	if (fp->kind == BK_FIELD_CONST) {
		if (slot32 || fits_s32(fp->offset)) {
			store_imm(a, !slot32, OUT, fp->slot_off, (uint32_t)fp->offset);
		} else {
			movabs(a, V, fp->offset);
			store_field(a, fp, V);
		}
		return;
	}
	load(a, true, V, KEY, 8 * fp->word);
	if (fp->kind == BK_FIELD_WORD) {
		if (sh + bits == 64 || slot32 || bits < 32) {
			shift(a, 5, V, sh);
			if (sh + bits != 64 && bits != 32)
				alu_imm(a, false, 4, V, (uint32_t)bkey_mask(bits));
		} else {
			shift(a, 4, V, 64 - sh - bits);
			shift(a, 5, V, 64 - bits);
		}
	} else {
		shift(a, 5, V, sh);
		load(a, true, T, KEY, 8 * (fp->word + 1));
		if (slot32 || bits < 32) {
			shift(a, 4, T, 64 - sh);
			alu_reg(a, 0x09, V, T);
			if (bits != 32)
				alu_imm(a, false, 4, V, (uint32_t)bkey_mask(bits));
		} else {
			shift(a, 4, T, 128 - sh - bits);
			if (bits < 64)
				shift(a, 5, T, 64 - bits);
			alu_reg(a, 0x09, V, T);
		}
	}
	if (slot32) {
		if ((uint32_t)fp->offset)
			alu_imm(a, false, 0, V, (uint32_t)fp->offset);
	} else if (fp->offset && fits_s32(fp->offset)) {
		alu_imm(a, true, 0, V, (uint32_t)fp->offset);
	} else if (fp->offset) {
		movabs(a, TMP64, fp->offset);
		alu_reg(a, 0x01, V, TMP64);
	}
	store_field(a, fp, V);
}

static void jcc32(struct as *a, uint8_t cc, size_t target)
{
	b(a, 0x0f);
	b(a, cc);
	imm32(a, (uint32_t)(target - (a->n + 4)));
}

static void jmp32(struct as *a, size_t target)
{
	b(a, 0xe9);
	imm32(a, (uint32_t)(target - (a->n + 4)));
}

static void patch32(struct as *a, size_t at, size_t target)
{
	uint32_t v = (uint32_t)(target - (at + 4));

	if (at + 4 <= a->cap)
		memcpy(a->p + at, &v, 4);
}

#define TAB	R9	/* the table walk: the current table entry */
#define TEND	R10	/* the table's end */
#define IN	R11	/* the node's words */

/* mov dst, src (64 bits) */
static void mov_reg(struct as *a, int dst, int src)
{
	rex(a, true, src, dst);
	b(a, 0x89);
	regreg(a, src, dst);
}

/* the next key: by u64s, rdi += 8 * u64s; by table, r9 += 2; and rdx += 40 */
static void emit_next(struct as *a, bool table)
{
	if (table) {
		b(a, 0x49); b(a, 0x83); b(a, 0xc1); b(a, 2);	/* add r9, 2 */
	} else {
		b(a, 0x0f); b(a, 0xb6); mem(a, V, KEY, 0);	/* movzx eax, byte [rdi] */
		b(a, 0x48); b(a, 0x8d); b(a, 0x3c); b(a, 0xc7);	/* lea rdi, [rdi + rax*8] */
	}
	b(a, 0x48); b(a, 0x83); b(a, 0xc2); b(a, 40);		/* add rdx, 40 */
}

static void emit_all(struct as *a, const struct bk_plan *P, bool table)
{
	size_t loop, to_done, to_unpacked, unpacked, done;
	unsigned i;

	if (table) {
		mov_reg(a, IN, RCX);
		mov_reg(a, TEND, END);
		mov_reg(a, TAB, KEY);
	}
	loop = a->n;
	if (table) {
		/* cmp r9, r10; jae done; movzx eax, word [r9]; lea rdi, [r11 + rax*8] */
		alu_reg(a, 0x39, TAB, TEND);
		b(a, 0x0f); b(a, 0x83); to_done = a->n; imm32(a, 0);
		rex(a, false, V, TAB); b(a, 0x0f); b(a, 0xb7); mem(a, V, TAB, 0);
		b(a, 0x49); b(a, 0x8d); b(a, 0x3c); b(a, 0xc3);
	} else {
		/* cmp rdi, rsi; jae done */
		alu_reg(a, 0x39, KEY, END);
		b(a, 0x0f); b(a, 0x83); to_done = a->n; imm32(a, 0);
	}
	/* test byte [rdi + 1], 0x7f; jnz unpacked */
	b(a, 0xf6); mem(a, 0, KEY, 1); b(a, 0x7f);
	b(a, 0x0f); b(a, 0x85); to_unpacked = a->n; imm32(a, 0);
	/* header: mov ecx, [rdi]; and ecx, 0xffffff; add ecx, add; mov [rdx], ecx */
	load(a, false, T, KEY, 0);
	alu_imm(a, false, 4, T, 0xffffff);
	alu_imm(a, false, 0, T, P->header_add);
	store(a, false, OUT, 0, T);
	for (i = 0; i < BKEY_NR_FIELDS; i++)
		emit_field(a, &P->fp[i]);
	emit_next(a, table);
	jmp32(a, loop);

	unpacked = a->n;
	for (i = 0; i < BKEY_U64s; i++) {
		load(a, true, V, KEY, 8 * i);
		store(a, true, OUT, 8 * i, V);
	}
	emit_next(a, table);
	jmp32(a, loop);

	done = a->n;
	/* mov rax, rdx; ret */
	b(a, 0x48); b(a, 0x89); b(a, 0xd0); b(a, 0xc3);
	patch32(a, to_done, done);
	patch32(a, to_unpacked, unpacked);
	(void)jcc32;
}

int x86_emit(const struct bk_plan *plan, bool table, struct x86_fn *fn)
{
	struct as a = { .p = NULL, .cap = 0 };
	size_t len;

	emit_all(&a, plan, table);	/* sizing pass */
	len = (a.n + 4095) & ~4095UL;
	a.p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (a.p == MAP_FAILED)
		return -errno;
	a.cap = a.n;
	a.n = 0;
	emit_all(&a, plan, table);
	if (mprotect(a.p, len, PROT_READ | PROT_EXEC)) {
		munmap(a.p, len);
		return -errno;
	}
	fn->code = a.p;
	fn->len = a.n;
	fn->map_len = len;
	fn->run = (x86_unpack_fn)(void *)a.p;
	fn->run_table = (x86_table_fn)(void *)a.p;
	return 0;
}

void x86_free(struct x86_fn *fn)
{
	if (fn->code)
		munmap(fn->code, fn->map_len);
	fn->code = NULL;
}
