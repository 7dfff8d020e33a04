/* Unit tests for keyset.c: exact membership for millions of keys, hostile keys, growth. */
#include "autoconfig.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#include "keyset-internal.h"
#include "keyset.h"
#include "keygen.h"
#include "tap.h"

/* Millions normally; fewer under AddressSanitizer, which makes every access several times
 * slower (the whole program must stay well under 10 s there too). */
static size_t big_n = 3000000;

static bool under_sanitizers(void)
{
	const char *e = getenv("STBQ_SANITIZERS");
	if (e && *e && strcmp(e, "0") != 0)
		return true;
#if defined(__SANITIZE_ADDRESS__)
	return true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
	return true;
#endif
#endif
	return false;
}

static uint64_t constant_hash(const char *key, size_t len, void *ud)
{
	return 0x0123456789abcdefULL;
}

static struct keyset *colliding_set(size_t expected)
{
	struct keyset_hooks hooks = {.hash = constant_hash};
	return keyset_new_with_hooks(expected, &hooks);
}

static void test_siphash_matches_reference_vectors(void)
{
	/* SipHash-2-4 vectors from the reference implementation (vectors.h, vectors_sip64):
	 * key 00..0f, message i = bytes 00..i-1, output read little-endian. */
	static const uint64_t sip24[64] = {
	        0x726fdb47dd0e0e31, 0x74f839c593dc67fd, 0x0d6c8009d9a94f5a, 0x85676696d7fb7e2d,
	        0xcf2794e0277187b7, 0x18765564cd99a68d, 0xcbc9466e58fee3ce, 0xab0200f58b01d137,
	        0x93f5f5799a932462, 0x9e0082df0ba9e4b0, 0x7a5dbbc594ddb9f3, 0xf4b32f46226bada7,
	        0x751e8fbc860ee5fb, 0x14ea5627c0843d90, 0xf723ca908e7af2ee, 0xa129ca6149be45e5,
	        0x3f2acc7f57c29bdb, 0x699ae9f52cbe4794, 0x4bc1b3f0968dd39c, 0xbb6dc91da77961bd,
	        0xbed65cf21aa2ee98, 0xd0f2cbb02e3b67c7, 0x93536795e3a33e88, 0xa80c038ccd5ccec8,
	        0xb8ad50c6f649af94, 0xbce192de8a85b8ea, 0x17d835b85bbb15f3, 0x2f2e6163076bcfad,
	        0xde4daaaca71dc9a5, 0xa6a2506687956571, 0xad87a3535c49ef28, 0x32d892fad841c342,
	        0x7127512f72f27cce, 0xa7f32346f95978e3, 0x12e0b01abb051238, 0x15e034d40fa197ae,
	        0x314dffbe0815a3b4, 0x027990f029623981, 0xcadcd4e59ef40c4d, 0x9abfd8766a33735c,
	        0x0e3ea96b5304a7d0, 0xad0c42d6fc585992, 0x187306c89bc215a9, 0xd4a60abcf3792b95,
	        0xf935451de4f21df2, 0xa9538f0419755787, 0xdb9acddff56ca510, 0xd06c98cd5c0975eb,
	        0xe612a3cb9ecba951, 0xc766e62cfcadaf96, 0xee64435a9752fe72, 0xa192d576b245165a,
	        0x0a8787bf8ecb74b2, 0x81b3e73d20b49b6f, 0x7fa8220ba3b2ecea, 0x245731c13ca42499,
	        0xb78dbfaf3a8d83bd, 0xea1ad565322a1a0b, 0x60e61c23a3795013, 0x6606d7e446282b93,
	        0x6ca4ecb15c5f91e1, 0x9f626da15c9625f3, 0xe51b38608ef25f57, 0x958a324ceb064572,
	};
	/* SipHash-1-3 has no vector file; CPython 3.11 uses it for bytes, and with
	 * PYTHONHASHSEED=0 its key is all zeros: hash(bytes(range(n))) mod 2^64. */
	static const struct {
		size_t len;
		uint64_t h;
	} sip13[] = {
	        {1, 0x68a914128e01e473},  {2, 0x010bac45c41e3669},  {3, 0x4d4c9a4a8ef6e0ad},
	        {7, 0x2f098ab0c751325a},  {8, 0xead411e67ebe2eea},  {9, 0x75927f9d95124362},
	        {15, 0xf30eb725bb91c9ea}, {16, 0x8972188433a5c5b7}, {17, 0x4883c49a2c009c1d},
	        {63, 0x385d3e39e5f37359},
	};
	uint8_t key[16], msg[64], zero[16] = {0};
	for (int i = 0; i < 16; i++)
		key[i] = (uint8_t)i;
	for (int i = 0; i < 64; i++)
		msg[i] = (uint8_t)i;
	for (size_t n = 0; n < 64; n++) {
		if (keyset_siphash24(key, msg, n) != sip24[n]) {
			printf("# siphash24 length %zu: %016" PRIx64 "\n", n,
			       keyset_siphash24(key, msg, n));
			CHECK(!"siphash24 vector");
		}
	}
	for (size_t i = 0; i < sizeof(sip13) / sizeof(sip13[0]); i++) {
		if (keyset_siphash13(zero, msg, sip13[i].len) != sip13[i].h) {
			printf("# siphash13 length %zu: %016" PRIx64 "\n", sip13[i].len,
			       keyset_siphash13(zero, msg, sip13[i].len));
			CHECK(!"siphash13 vector");
		}
	}
}

static void test_millions_of_keys_are_all_found_and_others_never(void)
{
	struct keyset *ks = keyset_new(0);
	CHECK(ks != NULL);
	if (!ks)
		return;
	char k[KEY_LEN];
	size_t bad = 0;
	for (size_t i = 0; i < big_n; i++) {
		make_key(i, k);
		if (keyset_add(ks, k, KEY_LEN) != 1)
			bad++;
	}
	CHECK_INT(bad, 0);
	CHECK_INT(keyset_count(ks), big_n);
	size_t missing = 0, phantom = 0;
	for (size_t i = 0; i < big_n; i++) {
		make_key(i, k);
		if (!keyset_has(ks, k, KEY_LEN))
			missing++;
		make_key(big_n + i, k);
		if (keyset_has(ks, k, KEY_LEN))
			phantom++;
		/* Same bytes, one shorter or one longer: must not match either. */
		make_key(i, k);
		if (keyset_has(ks, k, KEY_LEN - 1))
			phantom++;
	}
	CHECK_INT(missing, 0);
	CHECK_INT(phantom, 0);
	double per_key = (double)keyset_memory(ks) / (double)big_n;
	printf("# %zu keys of %d bytes: %.1f bytes per key, %zu slots\n", big_n, KEY_LEN, per_key,
	       keyset_table_slots(ks));
	keyset_free(ks);
}

/* Every key on one probe chain: only exact comparison can tell them apart. */
static void test_total_hash_collision_stays_exact(void)
{
	struct keyset *ks = colliding_set(0);
	CHECK(ks != NULL);
	if (!ks)
		return;
	enum { N = 3000 };
	char k[KEY_LEN];
	bool saw_rehash = false;
	for (size_t i = 0; i < N; i++) {
		make_key(i, k);
		CHECK_INT(keyset_add(ks, k, KEY_LEN), 1);
		saw_rehash |= keyset_rehashing(ks);
		if (i % 97 == 0) {
			make_key(i / 2, k);
			CHECK_INT(keyset_add(ks, k, KEY_LEN), 0);
		}
	}
	CHECK(saw_rehash);
	CHECK_INT(keyset_count(ks), N);
	size_t missing = 0, phantom = 0;
	for (size_t i = 0; i < N; i++) {
		make_key(i, k);
		missing += !keyset_has(ks, k, KEY_LEN);
		phantom += keyset_has(ks, k, KEY_LEN - 1);
		make_key(N + i, k);
		phantom += keyset_has(ks, k, KEY_LEN);
	}
	CHECK_INT(missing, 0);
	CHECK_INT(phantom, 0);
	keyset_free(ks);
}

static void check_prefix_chain(struct keyset *ks)
{
	static char a[KEYSET_MAX_KEY_LEN + 1];
	memset(a, 'a', sizeof(a));
	/* Every other length first, so the rest are prefixes and extensions of stored keys. */
	for (size_t len = 1; len <= KEYSET_MAX_KEY_LEN; len += 2)
		CHECK_INT(keyset_add(ks, a, len), 1);
	for (size_t len = 1; len <= KEYSET_MAX_KEY_LEN; len++)
		CHECK_INT(keyset_has(ks, a, len), len % 2 == 1);
	for (size_t len = 2; len <= KEYSET_MAX_KEY_LEN; len += 2)
		CHECK_INT(keyset_add(ks, a, len), 1);
	for (size_t len = 1; len <= KEYSET_MAX_KEY_LEN; len++)
		CHECK_INT(keyset_add(ks, a, len), 0);
	CHECK_INT(keyset_count(ks), KEYSET_MAX_KEY_LEN);
	CHECK(!keyset_has(ks, a, KEYSET_MAX_KEY_LEN + 1));
}

static void test_keys_that_are_prefixes_of_each_other(void)
{
	struct keyset *ks = keyset_new(0);
	check_prefix_chain(ks);
	keyset_free(ks);
	ks = colliding_set(0);
	check_prefix_chain(ks);
	keyset_free(ks);
}

static void check_last_byte_differs(struct keyset *ks, size_t len)
{
	char k[KEYSET_MAX_KEY_LEN];
	memset(k, 'x', len);
	for (int b = 0; b < 256; b += 2) {
		k[len - 1] = (char)b;
		CHECK_INT(keyset_add(ks, k, len), 1);
	}
	for (int b = 0; b < 256; b++) {
		k[len - 1] = (char)b;
		CHECK_INT(keyset_has(ks, k, len), b % 2 == 0);
	}
}

static void test_keys_that_differ_only_in_the_last_byte(void)
{
	/* 127/128 straddle the one-byte/two-byte length header. */
	static const size_t lens[] = {1, 2, 10, 40, 127, 128, 129, KEYSET_MAX_KEY_LEN};
	for (int collide = 0; collide < 2; collide++) {
		struct keyset *ks = collide ? colliding_set(0) : keyset_new(0);
		for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++)
			check_last_byte_differs(ks, lens[i]);
		CHECK_INT(keyset_count(ks), 128 * sizeof(lens) / sizeof(lens[0]));
		keyset_free(ks);
	}
}

static void test_embedded_nul_bytes_are_part_of_the_key(void)
{
	for (int collide = 0; collide < 2; collide++) {
		struct keyset *ks = collide ? colliding_set(0) : keyset_new(0);
		CHECK_INT(keyset_add(ks, "a\0b", 3), 1);
		CHECK_INT(keyset_add(ks, "\0\0", 2), 1);
		CHECK(keyset_has(ks, "a\0b", 3));
		CHECK(!keyset_has(ks, "a\0c", 3));
		CHECK(!keyset_has(ks, "a", 1));
		CHECK(!keyset_has(ks, "a\0", 2));
		CHECK(!keyset_has(ks, "\0", 1));
		CHECK(!keyset_has(ks, "\0\0\0", 3));
		CHECK_INT(keyset_add(ks, "a", 1), 1);
		CHECK_INT(keyset_add(ks, "a\0", 2), 1);
		CHECK_INT(keyset_add(ks, "a\0b", 3), 0);
		CHECK_INT(keyset_count(ks), 4);
		keyset_free(ks);
	}
}

static void test_one_byte_and_max_length_keys(void)
{
	struct keyset *ks = keyset_new(0);
	for (int b = 0; b < 256; b++) {
		char c = (char)b;
		CHECK_INT(keyset_add(ks, &c, 1), 1);
	}
	static char big[KEYSET_MAX_KEY_LEN];
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (char)(i * 7 + 3);
	CHECK_INT(keyset_add(ks, big, KEYSET_MAX_KEY_LEN), 1);
	CHECK_INT(keyset_add(ks, big, KEYSET_MAX_KEY_LEN), 0);
	CHECK(keyset_has(ks, big, KEYSET_MAX_KEY_LEN));
	CHECK(!keyset_has(ks, big, KEYSET_MAX_KEY_LEN - 1));
	big[0] ^= 1;
	CHECK(!keyset_has(ks, big, KEYSET_MAX_KEY_LEN));
	for (int b = 0; b < 256; b++) {
		char c = (char)b;
		CHECK(keyset_has(ks, &c, 1));
	}
	CHECK_INT(keyset_count(ks), 257);
	keyset_free(ks);
}

static void test_invalid_lengths_are_refused(void)
{
	struct keyset *ks = keyset_new(0);
	static char big[KEYSET_MAX_KEY_LEN + 1];
	CHECK_INT(keyset_add(ks, "x", 0), -EINVAL);
	CHECK_INT(keyset_add(ks, big, KEYSET_MAX_KEY_LEN + 1), -EINVAL);
	CHECK_INT(keyset_add(ks, big, SIZE_MAX), -EINVAL);
	CHECK_INT(keyset_add(ks, NULL, 3), -EINVAL);
	CHECK_INT(keyset_count(ks), 0);
	CHECK(!keyset_has(ks, "x", 0));
	CHECK(!keyset_has(ks, big, KEYSET_MAX_KEY_LEN + 1));
	CHECK(!keyset_has(ks, NULL, 3));
	CHECK_INT(keyset_foreach(ks, NULL, NULL), 0); /* nothing to visit, fn never called */
	keyset_free(ks);
	keyset_free(NULL);
}

static void test_duplicates_return_zero_and_do_not_count(void)
{
	struct keyset *ks = keyset_new(0);
	char k[KEY_LEN];
	size_t dup_mid_rehash = 0;
	for (size_t i = 0; i < 50000; i++) {
		make_key(i, k);
		CHECK_INT(keyset_add(ks, k, KEY_LEN), 1);
		/* Re-adding an early key while a rehash runs probes the old table too. */
		make_key(i / 3, k);
		if (keyset_rehashing(ks))
			dup_mid_rehash++;
		CHECK_INT(keyset_add(ks, k, KEY_LEN), 0);
	}
	CHECK(dup_mid_rehash > 100);
	CHECK_INT(keyset_count(ks), 50000);
	keyset_free(ks);
}

/* Reserving room: the keys already in stay found, the adds up to the reserved count never
 * start a rehash, and a big set moves incrementally (lookups exact mid-move). */
static void test_reserve_makes_room_once(void)
{
	char k[KEY_LEN];
	for (size_t held = 0; held <= 200000; held += 100000) {
		struct keyset *ks = keyset_new(0);
		for (size_t i = 0; i < held; i++) {
			make_key(i, k);
			CHECK_INT(keyset_add(ks, k, KEY_LEN), 1);
		}
		CHECK_INT(keyset_reserve(ks, held + 300000), 0);
		CHECK(held <= 65536 || keyset_rehashing(ks)); /* big: moves as adds come */
		for (size_t i = 0; i < held; i += 7) {
			make_key(i, k);
			CHECK(keyset_has(ks, k, KEY_LEN));
		}
		size_t memory = 0;
		bool grew = false;
		for (size_t i = held; i < held + 300000; i++) {
			make_key(i, k);
			CHECK_INT(keyset_add(ks, k, KEY_LEN), 1);
			if (i == held + 200000)
				memory = keyset_memory(ks);
		}
		/* No table grew in the last 100 000 adds: only the arena may have. */
		grew = keyset_rehashing(ks);
		CHECK(!grew);
		CHECK(keyset_memory(ks) >= memory);
		CHECK_INT(keyset_count(ks), held + 300000);
		for (size_t i = 0; i < held + 300000; i += 11) {
			make_key(i, k);
			CHECK(keyset_has(ks, k, KEY_LEN));
		}
		make_key(held + 300000, k);
		CHECK(!keyset_has(ks, k, KEY_LEN));
		CHECK_INT(keyset_reserve(ks, 10), 0); /* already room: nothing to do */
		keyset_free(ks);
	}
}

/* Growth is spread over many adds and lookups stay exact at every step of it. */
static void test_growth_is_incremental_and_lookups_work_mid_rehash(void)
{
	struct keyset *ks = keyset_new(0);
	char k[KEY_LEN];
	size_t n = 300000, rehashes = 0, mid_checks = 0, longest = 0, run = 0;
	size_t slots = keyset_table_slots(ks), missing = 0, phantom = 0;
	for (size_t i = 0; i < n; i++) {
		bool was_rehashing = keyset_rehashing(ks);
		make_key(i, k);
		CHECK_INT(keyset_add(ks, k, KEY_LEN), 1);
		size_t now = keyset_table_slots(ks);
		if (now != slots) {
			CHECK_INT(now, slots * 2);
			/* The previous rehash must have ended on its own before a new one starts. */
			CHECK(!was_rehashing);
			rehashes++;
			slots = now;
		}
		if (keyset_rehashing(ks)) {
			run++;
			/* Spot-check old and recent keys, and never-added ones, mid-rehash. */
			for (size_t j = i; j > 0; j /= 2) {
				make_key(j, k);
				missing += !keyset_has(ks, k, KEY_LEN);
			}
			make_key(i * 7 % (i + 1), k);
			missing += !keyset_has(ks, k, KEY_LEN);
			make_key(n + i, k);
			phantom += keyset_has(ks, k, KEY_LEN);
			mid_checks++;
		} else {
			if (run > longest)
				longest = run;
			run = 0;
		}
	}
	CHECK_INT(missing, 0);
	CHECK_INT(phantom, 0);
	CHECK(rehashes >= 10);
	CHECK(mid_checks > 1000);
	/* A rehash of S old slots moves a few per add, so it ends well before the new table
	 * (2S slots) fills: within S/2 adds here. */
	CHECK(longest > 0 && longest <= slots / 4);
	CHECK(keyset_table_slots(ks) >= n * 4 / 3);
	printf("# %zu rehashes, longest ran for %zu adds, final table %zu slots\n", rehashes,
	       longest, keyset_table_slots(ks));
	for (size_t i = 0; i < n; i++) {
		make_key(i, k);
		missing += !keyset_has(ks, k, KEY_LEN);
	}
	CHECK_INT(missing, 0);
	keyset_free(ks);
}

/* Hash of "h<number>.<anything>": <number> in the low bits, so the test chooses each key's
 * home slot, and an FNV-1a of the whole key in the high bits, where the tag comes from. */
static uint64_t home_hash(const char *key, size_t len, void *ud)
{
	uint64_t v = 0, fnv = UINT64_C(0xcbf29ce484222325);
	for (size_t i = 1; i < len && key[i] != '.'; i++)
		v = v * 10 + (uint64_t)(key[i] - '0');
	for (size_t i = 0; i < len; i++)
		fnv = (fnv ^ (unsigned char)key[i]) * UINT64_C(0x100000001b3);
	return v | (fnv << 40);
}

struct homed {
	char (*keys)[32];
	size_t n, cap;
};

static int homed_add(struct keyset *ks, struct homed *h, uint64_t home)
{
	if (h->n == h->cap)
		return -ENOSPC; /* the rehash ran for longer than it may */
	char *k = h->keys[h->n];
	snprintf(k, sizeof(h->keys[0]), "h%" PRIu64 ".%zu", home, h->n);
	h->n++;
	return keyset_add(ks, k, strlen(k));
}

/* While a rehash drains the old table front to back, giving back the drained part, runs
 * that wrap from the end of the old table round to its start must still find their keys,
 * and lookups of absent keys homed at the very end must not touch the drained part. */
static void check_wrapping_runs(size_t slots)
{
	struct keyset_hooks hooks = {.hash = home_hash};
	struct keyset *ks = keyset_new_with_hooks(0, &hooks);
	size_t limit = slots - slots / 4, pile = slots / 64 + 4;
	struct homed h = {.keys = calloc(2 * slots, sizeof(h.keys[0])), .cap = 2 * slots};
	if (!ks || !h.keys) {
		CHECK(!"out of memory");
		goto out;
	}
	/* Grow to `slots` first, with keys homed anywhere. */
	while ((keyset_table_slots(ks) < slots || keyset_rehashing(ks)) && h.n < slots)
		CHECK_INT(homed_add(ks, &h, h.n * 2654435761u % slots), 1);
	/* A pile of keys homed near the end, so that their run wraps round to the start. */
	for (size_t i = 0; i < pile; i++)
		CHECK_INT(homed_add(ks, &h, slots - 3), 1);
	while (h.n < limit)
		CHECK_INT(homed_add(ks, &h, h.n * 2654435761u % slots), 1);
	CHECK(!keyset_rehashing(ks));
	CHECK_INT(keyset_table_slots(ks), slots);

	size_t steps = 0, checks = 0, missing = 0, phantom = 0;
	size_t mem_start = 0, mem_low = SIZE_MAX;
	do {
		int r = homed_add(ks, &h, h.n * 2654435761u % slots);
		CHECK_INT(r, 1);
		if (r != 1)
			break;
		if (!mem_start)
			mem_start = keyset_memory(ks);
		if (keyset_memory(ks) < mem_low)
			mem_low = keyset_memory(ks);
		if (steps++ % (slots / 32 + 1) != 0 && keyset_rehashing(ks))
			continue;
		checks++;
		for (size_t i = 0; i < h.n; i++)
			missing += !keyset_has(ks, h.keys[i], strlen(h.keys[i]));
		phantom += keyset_has(ks, "h0.x", 4);
		char k[32];
		snprintf(k, sizeof(k), "h%zu.x", slots - 1);
		phantom += keyset_has(ks, k, strlen(k));
		snprintf(k, sizeof(k), "h%zu.x", slots - 3);
		phantom += keyset_has(ks, k, strlen(k));
	} while (keyset_rehashing(ks));
	CHECK_INT(missing, 0);
	CHECK_INT(phantom, 0);
	CHECK(checks >= 4);
	/* The drained part of a big old table went back before the rehash ended. */
	if (slots * sizeof(uint64_t) >= 2 * KEYSET_RELEASE_CHUNK)
		CHECK(mem_low < mem_start);
	CHECK_INT(keyset_count(ks), h.n);
out:
	free(h.keys);
	keyset_free(ks);
}

/* keyset_has_many() answers exactly as keyset_has(), key for key: present and absent keys,
 * invalid ones (NULL, empty, too long), mid-rehash, and in a set where every key collides. */
static uint64_t collide(const char *key, size_t len, void *ud)
{
	(void)key, (void)len, (void)ud;
	return 42;
}

static void test_many_lookups_answer_as_single_ones(void)
{
	static char big[KEYSET_MAX_KEY_LEN + 1];
	const struct keyset_hooks same = {.hash = collide};
	struct keyset *sets[2] = {keyset_new(0), keyset_new_with_hooks(0, &same)};
	size_t sizes[2] = {200000, 300};
	memset(big, 'x', sizeof(big));
	for (int t = 0; t < 2; t++) {
		struct keyset *ks = sets[t];
		size_t n = sizes[t], wrong = 0, mid = 0, asked = 0;
		static char kb[40][KEY_LEN];
		struct keyset_key keys[40];
		bool out[40];
		for (size_t i = 0; i < n; i++) {
			make_key(i, kb[0]);
			keyset_add(ks, kb[0], KEY_LEN);
			if (i % 997 && i != n - 1)
				continue;
			mid += keyset_rehashing(ks);
			/* 37 keys: present, absent, and three invalid ones. */
			for (size_t j = 0; j < 37; j++) {
				make_key(j % 2 ? i - i * j / 37 : n + i + j, kb[j]);
				keys[j] = (struct keyset_key){kb[j], KEY_LEN};
			}
			keys[5] = (struct keyset_key){NULL, 3};
			keys[6] = (struct keyset_key){kb[6], 0};
			keys[7] = (struct keyset_key){big, sizeof(big)};
			keyset_has_many(ks, keys, 37, out);
			for (size_t j = 0; j < 37; j++) {
				wrong += out[j] != keyset_has(ks, keys[j].key, keys[j].len);
				asked++;
			}
		}
		CHECK_INT(wrong, 0);
		CHECK(asked >= 37 * 2);
		if (t == 0)
			CHECK(mid > 0);            /* some of it ran while a rehash was under way */
		keyset_has_many(ks, keys, 0, out); /* nothing asked: nothing read */
		keyset_free(ks);
	}
}

static void test_runs_wrapping_round_the_old_table_survive_the_rehash(void)
{
	check_wrapping_runs(16); /* the smallest table, malloc'd */
	check_wrapping_runs(1024);
	/* Mapped, and given back in pieces while draining. */
	check_wrapping_runs(2 * KEYSET_RELEASE_CHUNK / sizeof(uint64_t));
}

struct visit {
	const struct keyset *ks;
	struct keyset *seen;
	size_t calls, dup, foreign, stop_at;
};

static int visit_key(const char *key, size_t len, void *ud)
{
	struct visit *v = ud;
	v->calls++;
	if (keyset_add(v->seen, key, len) != 1)
		v->dup++;
	if (!keyset_has(v->ks, key, len))
		v->foreign++;
	return v->calls == v->stop_at ? 42 : 0;
}

static void test_foreach_visits_each_key_exactly_once(void)
{
	struct keyset *ks = keyset_new(0);
	char k[KEY_LEN];
	size_t n = 0;
	/* Stop while a rehash is under way: the visit must not depend on the tables. */
	while (n < 20000 || !keyset_rehashing(ks)) {
		make_key(n++, k);
		CHECK_INT(keyset_add(ks, k, KEY_LEN), 1);
	}
	CHECK_INT(keyset_add(ks, "a\0b", 3), 1);
	CHECK_INT(keyset_add(ks, "a", 1), 1);
	n += 2;
	struct visit v = {.ks = ks, .seen = keyset_new(0)};
	CHECK_INT(keyset_foreach(ks, visit_key, &v), 0);
	CHECK_INT(v.calls, n);
	CHECK_INT(v.dup, 0);
	CHECK_INT(v.foreign, 0);
	CHECK_INT(keyset_count(v.seen), n);
	CHECK(keyset_has(v.seen, "a\0b", 3));
	keyset_free(v.seen);

	struct visit stop = {.ks = ks, .seen = keyset_new(0), .stop_at = 5};
	CHECK_INT(keyset_foreach(ks, visit_key, &stop), 42);
	CHECK_INT(stop.calls, 5);
	keyset_free(stop.seen);
	keyset_free(ks);
}

static void test_memory_accounting_is_sane(void)
{
	struct keyset *ks = keyset_new(0);
	size_t empty = keyset_memory(ks);
	CHECK(empty > 0 && empty < 4096);
	char k[KEY_LEN];
	size_t prev = empty, n = 1000000;
	size_t freed = 0;
	for (size_t i = 0; i < n; i++) {
		bool was_rehashing = keyset_rehashing(ks);
		make_key(i, k);
		keyset_add(ks, k, KEY_LEN);
		size_t m = keyset_memory(ks);
		/* Memory only goes down as a rehash gives back the old table. */
		if (m < prev) {
			if (!was_rehashing)
				CHECK(!"memory shrank outside a rehash");
			else
				freed++;
		}
		prev = m;
	}
	CHECK(freed >= 20); /* also piece by piece, not only at the end */
	while (keyset_rehashing(ks))
		keyset_add(ks, k, KEY_LEN); /* duplicates still advance the rehash */
	size_t m = keyset_memory(ks);
	/* At least the key bytes with their lengths and one 8-byte slot per key at 3/4 load... */
	CHECK(m >= n * (KEY_LEN + 1) + n * 8 * 4 / 3);
	/* ...and within the target of key bytes + 24 per key. */
	printf("# %zu keys: %zu bytes, %.1f per key\n", n, m, (double)m / (double)n);
	CHECK(m <= n * (KEY_LEN + 24));
	keyset_free(ks);

	/* Presizing for the expected count avoids every rehash up to it. */
	ks = keyset_new(100000);
	size_t slots = keyset_table_slots(ks);
	CHECK(slots >= 100000 * 4 / 3);
	CHECK(slots < 100000 * 4);
	for (size_t i = 0; i < 100000; i++) {
		make_key(i, k);
		keyset_add(ks, k, KEY_LEN);
		if (keyset_rehashing(ks)) {
			CHECK(!"rehash below the expected count");
			break;
		}
	}
	CHECK_INT(keyset_table_slots(ks), slots);
	keyset_free(ks);
	CHECK(keyset_new(SIZE_MAX) == NULL);
}

struct budget {
	long left; /* allocations still allowed; negative: unlimited */
	size_t refused;
};

static bool budget_may_alloc(size_t size, void *ud)
{
	struct budget *b = ud;
	if (b->left < 0)
		return true;
	if (b->left == 0) {
		b->refused++;
		return false;
	}
	b->left--;
	return true;
}

/* Every allocation in turn fails once; the set must stay whole and usable after it. */
/* A reserve the allocator refuses leaves the set as it was, still growing as it goes (seeding
 * then carries on without the reserve). */
static void test_refused_reserve_changes_nothing(void)
{
	char k[KEY_LEN];
	struct budget b = {.left = 1000};
	struct keyset_hooks hooks = {.may_alloc = budget_may_alloc, .ud = &b};
	struct keyset *ks = keyset_new_with_hooks(0, &hooks);
	CHECK(ks != NULL);
	for (size_t i = 0; i < 100; i++) {
		make_key(i, k);
		CHECK_INT(keyset_add(ks, k, KEY_LEN), 1);
	}
	size_t memory = keyset_memory(ks);
	bool rehashing = keyset_rehashing(ks);
	b.left = 0;
	CHECK_INT(keyset_reserve(ks, 1000000), -ENOMEM);
	CHECK(b.refused > 0);
	CHECK(keyset_rehashing(ks) == rehashing && keyset_memory(ks) == memory);
	b.left = 1000;
	for (size_t i = 0; i < 100; i++) {
		make_key(i, k);
		CHECK(keyset_has(ks, k, KEY_LEN));
	}
	for (size_t i = 100; i < 5000; i++) {
		make_key(i, k);
		CHECK_INT(keyset_add(ks, k, KEY_LEN), 1);
	}
	CHECK_INT(keyset_count(ks), 5000);
	keyset_free(ks);
}

static void test_out_of_memory_leaves_the_set_valid(void)
{
	enum { N = 5000 };
	char k[KEY_LEN];
	for (long fail_at = 0; fail_at < 16; fail_at++) {
		struct budget b = {.left = fail_at};
		struct keyset_hooks hooks = {.may_alloc = budget_may_alloc, .ud = &b};
		struct keyset *ks = keyset_new_with_hooks(0, &hooks);
		if (!ks) {
			CHECK(b.refused > 0);
			continue;
		}
		size_t added = 0, failed_key = SIZE_MAX;
		for (size_t i = 0; i < N; i++) {
			make_key(i, k);
			int r = keyset_add(ks, k, KEY_LEN);
			if (r == -ENOMEM) {
				failed_key = i;
				break;
			}
			CHECK_INT(r, 1);
			added++;
		}
		CHECK(failed_key != SIZE_MAX);
		CHECK_INT(keyset_count(ks), added);
		if (failed_key != SIZE_MAX) {
			make_key(failed_key, k);
			CHECK(!keyset_has(ks, k, KEY_LEN));
		}
		for (size_t i = 0; i < added; i++) {
			make_key(i, k);
			CHECK(keyset_has(ks, k, KEY_LEN));
		}
		/* Memory is back: the same set carries on. */
		b.left = -1;
		for (size_t i = added; i < N; i++) {
			make_key(i, k);
			CHECK_INT(keyset_add(ks, k, KEY_LEN), 1);
		}
		CHECK_INT(keyset_count(ks), N);
		size_t missing = 0;
		for (size_t i = 0; i < N; i++) {
			make_key(i, k);
			missing += !keyset_has(ks, k, KEY_LEN);
		}
		CHECK_INT(missing, 0);
		keyset_free(ks);
	}
}

static int count_keys(const char *key, size_t len, void *ud)
{
	(void)key;
	(void)len;
	++*(size_t *)ud;
	return 0;
}

/* Values ride with their keys: through growth, mid-rehash, total collision and
 * updates, a key's value is the last one put, and an unvalued set says 0. */
static void test_values_follow_their_keys(void)
{
	const struct keyset_hooks plain = {.valued = true},
	                          same = {.hash = collide, .valued = true};
	struct keyset *sets[2] = {keyset_new_with_hooks(0, &plain),
	                          keyset_new_with_hooks(0, &same)};
	size_t sizes[2] = {100000, 400};
	char kb[KEY_LEN];
	for (int t = 0; t < 2; t++) {
		struct keyset *ks = sets[t];
		size_t n = sizes[t], wrong = 0, mid = 0;
		for (size_t i = 0; i < n; i++) {
			make_key(i, kb);
			CHECK_INT(keyset_put(ks, kb, KEY_LEN, i * 0x9e3779b97f4a7c15ULL), 1);
			mid += keyset_rehashing(ks);
			if (i % 3 == 0) /* an update, and a plain add that keeps the value */
				wrong += keyset_put(ks, kb, KEY_LEN, ~(uint64_t)i) != 0 ||
				         keyset_add(ks, kb, KEY_LEN) != 0;
		}
		struct keyset_key keys[16];
		char many[16][KEY_LEN];
		for (size_t i = 0; i < n + 8; i++) {
			uint64_t v = 1, want = i % 3 ? i * 0x9e3779b97f4a7c15ULL : ~(uint64_t)i;
			make_key(i, kb);
			bool has = keyset_get(ks, kb, KEY_LEN, &v);
			wrong += i < n ? !has || v != want : has;
			memcpy(many[i % 16], kb, KEY_LEN);
			keys[i % 16] = (struct keyset_key){many[i % 16], KEY_LEN};
			if (i % 16 == 15) {
				bool out[16];
				uint64_t vals[16];
				keyset_get_many(ks, keys, 16, out, vals);
				for (size_t j = 0; j < 16; j++) {
					size_t x = i - 15 + j;
					uint64_t w =
					        x % 3 ? x * 0x9e3779b97f4a7c15ULL : ~(uint64_t)x;
					wrong += x < n ? !out[j] || vals[j] != w
					               : out[j] || vals[j] != 0;
				}
			}
		}
		CHECK_INT(wrong, 0);
		CHECK_INT(keyset_count(ks), n);
		if (t == 0)
			CHECK(mid > 0);
		size_t seen = 0;
		CHECK_INT(keyset_foreach(ks, count_keys, &seen), 0);
		CHECK_INT(seen, n);
		keyset_free(ks);
	}
	struct keyset *plainset = keyset_new(0);
	uint64_t v = 7;
	CHECK_INT(keyset_put(plainset, "k", 1, 42), 1);
	CHECK(keyset_get(plainset, "k", 1, &v));
	CHECK_INT(v, 0);
	keyset_free(plainset);
}

int main(void)
{
	if (under_sanitizers())
		big_n = 1000000;
	RUN(test_siphash_matches_reference_vectors);
	RUN(test_millions_of_keys_are_all_found_and_others_never);
	RUN(test_total_hash_collision_stays_exact);
	RUN(test_keys_that_are_prefixes_of_each_other);
	RUN(test_keys_that_differ_only_in_the_last_byte);
	RUN(test_embedded_nul_bytes_are_part_of_the_key);
	RUN(test_one_byte_and_max_length_keys);
	RUN(test_invalid_lengths_are_refused);
	RUN(test_duplicates_return_zero_and_do_not_count);
	RUN(test_growth_is_incremental_and_lookups_work_mid_rehash);
	RUN(test_reserve_makes_room_once);
	RUN(test_runs_wrapping_round_the_old_table_survive_the_rehash);
	RUN(test_many_lookups_answer_as_single_ones);
	RUN(test_foreach_visits_each_key_exactly_once);
	RUN(test_memory_accounting_is_sane);
	RUN(test_out_of_memory_leaves_the_set_valid);
	RUN(test_refused_reserve_changes_nothing);
	RUN(test_values_follow_their_keys);
	return tap_done();
}
