// SPDX-License-Identifier: GPL-2.0
/*
 * The key-stream reader behind 'loader unpack': 'B' + 56 format bytes,
 * then the stream.  Every key the walk accepts is unpacked by the
 * reference; the walk and a key-by-key check must agree.
 */
#include <stdlib.h>
#include <string.h>

#include "bkey.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bkey_format f;
	uint64_t *words;
	size_t nr_words, nr_keys, bad, pos = 0, k;
	enum bkey_stream_err err;

	if (size < 57)
		return 0;
	memcpy(&f, data + 1, sizeof(f));
	if (bkey_format_validate(&f, NULL))
		return 0;
	nr_words = (size - 57) / 8;
	words = malloc(8 * nr_words + 1);
	memcpy(words, data + 57, 8 * nr_words);
	err = bkey_stream_walk(&f, words, nr_words, &nr_keys, &bad);
	for (k = 0; k < nr_keys; k++) {
		struct bkey out;
		unsigned kw;

		if (bkey_stream_check(&f, words, nr_words, pos, &kw))
			__builtin_trap();	/* the walk accepted it */
		bkey_unpack_key(&f, &words[pos], &out);
		bkey_unpack_pos(&f, &words[pos]);
		pos += ((const uint8_t *)&words[pos])[0];
	}
	if (pos != bad || (!err && pos != nr_words))
		__builtin_trap();
	free(words);
	return 0;
}
