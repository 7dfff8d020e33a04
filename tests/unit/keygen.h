/* keygen.h - distinct, random-looking 10-byte keys from an index, shared by the key-set
 * unit test and its benchmark so both measure and check the same keys without holding
 * an array of them. */
#ifndef STBQ_KEYGEN_H
#define STBQ_KEYGEN_H

#include <stdint.h>

#define KEY_LEN 10

/* Key number i: a bijective mix of i spread over 10 characters of 6 bits each, so keys
 * differ for every i below 2^60. */
static inline void make_key(uint64_t i, char out[KEY_LEN])
{
	static const char alphabet[] =
	        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	const uint64_t m60 = (UINT64_C(1) << 60) - 1;
	uint64_t x = i & m60;
	x = (x * UINT64_C(0x9e3779b97f4a7c15)) & m60;
	x ^= x >> 29;
	x = (x * UINT64_C(0xbf58476d1ce4e5b9)) & m60;
	x ^= x >> 31;
	for (int c = 0; c < KEY_LEN; c++)
		out[c] = alphabet[(x >> (6 * c)) & 63];
}

#endif
