// SPDX-License-Identifier: GPL-2.0
/* The key-file and query parsers of 'loader lookup' and 'scan'. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keytext.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bk_keyset ks = {};
	char err[300], *text = malloc(size + 1), *line, *save = NULL;
	FILE *f;

	memcpy(text, data, size);
	text[size] = 0;
	f = fmemopen(text, size ? size : 1, "r");
	if (f) {
		if (!bk_keyset_read(f, &ks, err, sizeof(err))) {
			size_t i;

			for (i = 0; i + 1 < ks.nr; i++)
				if (bpos_cmp((struct bpos){ ks.keys[i].k.inode, ks.keys[i].k.offset,
							    ks.keys[i].k.snapshot },
					     (struct bpos){ ks.keys[i + 1].k.inode, ks.keys[i + 1].k.offset,
							    ks.keys[i + 1].k.snapshot }) >= 0)
					__builtin_trap();	/* sorted, no duplicates */
		}
		fclose(f);
	}
	bk_keyset_free(&ks);
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		struct bpos p;

		bk_pos_parse(line, &p, err, sizeof(err));
	}
	free(text);
	return 0;
}
