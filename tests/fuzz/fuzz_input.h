/*
 * fuzz_input.h — reading a fuzzer's input as a stream of small decisions: bytes, integers
 * picked from a table of interesting values, short strings. Past the end every read
 * returns 0 (or the table's first value), so any input decodes to something.
 */
#ifndef DURQ_TESTS_FUZZ_INPUT_H
#define DURQ_TESTS_FUZZ_INPUT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct fuzz_in {
	const uint8_t *p;
	size_t n;
} fuzz_in;

static inline int fuzz_left(const fuzz_in *in)
{
	return in->n > 0;
}

static inline uint8_t fuzz_byte(fuzz_in *in)
{
	if (!in->n)
		return 0;
	in->n--;
	return *in->p++;
}

static inline uint32_t fuzz_u32(fuzz_in *in)
{
	uint32_t v = 0;
	for (int i = 0; i < 4; i++)
		v = v << 8 | fuzz_byte(in);
	return v;
}

/* One of n values, chosen by one byte. */
static inline int64_t fuzz_pick(fuzz_in *in, const int64_t *values, size_t n)
{
	return values[fuzz_byte(in) % n];
}

#define FUZZ_PICK(in, arr) fuzz_pick(in, arr, sizeof(arr) / sizeof(arr[0]))

/* Up to max bytes of the input (length from one byte) into buf, NUL-terminated; NUL bytes
 * become sub. Returns the length. */
static inline size_t fuzz_str(fuzz_in *in, char *buf, size_t max, char sub)
{
	size_t len = fuzz_byte(in) % (max + 1);
	if (len > in->n)
		len = in->n;
	for (size_t i = 0; i < len; i++) {
		char c = (char)fuzz_byte(in);
		buf[i] = c ? c : sub;
	}
	buf[len] = '\0';
	return len;
}

#endif
