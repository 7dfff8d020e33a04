/* keyset.c - an exact set of short byte strings, compact enough for millions of keys.
 *
 * Layout: every key is appended once to a single arena as <length><bytes>, the length
 * taking one byte below 128 and two bytes above. An open-addressing table with linear
 * probing holds one 64-bit word per key: the key's arena offset in the high 40 bits and
 * 24 bits of its hash as a tag in the low bits, so that almost every probe that is not a
 * hit is rejected without touching the arena. A zero word is an empty slot (tags are never
 * zero). A hit is only declared after comparing length and bytes, so the set never
 * reports a key it does not hold.
 *
 * The hash is SipHash-1-3 keyed per set from getrandom(): keys come from a remote API, and
 * a fixed hash would let whoever chooses them pile them onto one probe chain.
 *
 * Growth never stops the world: when the table would pass 3/4 full, a table twice the size
 * is allocated and new keys go there, while each later add moves a few slots of the old
 * table across, in slot order. Lookups consult both tables. Slots of the old table are
 * never changed, so its probe chains stay whole; only the part already moved is given back
 * to the kernel as the move goes on, and lookups there skip it (see old_find()).
 *
 * Large blocks (tables, arena) are mapped directly rather than left to malloc, whose
 * choice between heap and mmap depends on the process's history: a fresh mapping is zero
 * without a memset, grows with mremap() without copying (the arena's realloc; keys are
 * addressed by offset, so they survive a move), and can be returned piece by piece. No
 * step of growth thus costs time in proportion to the set's size. */
#include "autoconfig.h"

#include <endian.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "keyset-internal.h"
#include "keyset.h"

#define TAG_BITS    24
#define TAG_MASK    ((UINT64_C(1) << TAG_BITS) - 1)
#define OFFSET_BITS (64 - TAG_BITS)
#define ARENA_MAX   ((UINT64_C(1) << OFFSET_BITS) - 1) /* 1 TiB of keys */
#define TABLE_MIN   16
#define ARENA_MIN   256
/* Old slots moved per operation while a rehash runs. The new table takes 3/4 of the old
 * table's slot count in adds before it is full in turn, so anything above 4/3 finishes in
 * time; more just spreads the same work over fewer adds. */
#define REHASH_STEP             4
#define KEYSET_RESERVE_MOVE_NOW 65536               /* keys moved at once by keyset_reserve() */
#define LEN_ONE_BYTE            0x80                /* lengths below this take one header byte */
#define BIG_BLOCK               ((size_t)64 * 1024) /* blocks from here on are mapped directly */
/* Moved old slots go back to the kernel in pieces this big: each munmap() costs a TLB
 * shootdown, so pieces should be few, and each costs time in its size, so not too big. */
#define RELEASE_CHUNK KEYSET_RELEASE_CHUNK

struct table {
	uint64_t *slots; /* NULL when absent */
	size_t mask;     /* slot count - 1; the count is a power of two */
	size_t released; /* bytes at the start already returned (old table only) */
};

struct keyset {
	struct table cur; /* every new key goes here */
	struct table old; /* being drained into cur while a rehash runs */
	size_t old_pos;   /* next slot of old to move */
	size_t count;
	char *arena;
	size_t arena_len;
	size_t arena_cap;
	uint64_t k0, k1;
	size_t vsize; /* 0, or 8: each key is followed by its 64-bit value */
	struct keyset_hooks hooks;
};

/* ---- SipHash (Aumasson & Bernstein), checked against the reference vectors ---- */

static inline uint64_t rotl64(uint64_t x, int b)
{
	return (x << b) | (x >> (64 - b));
}

static inline void sipround(uint64_t v[4])
{
	v[0] += v[1];
	v[1] = rotl64(v[1], 13);
	v[1] ^= v[0];
	v[0] = rotl64(v[0], 32);
	v[2] += v[3];
	v[3] = rotl64(v[3], 16);
	v[3] ^= v[2];
	v[0] += v[3];
	v[3] = rotl64(v[3], 21);
	v[3] ^= v[0];
	v[2] += v[1];
	v[1] = rotl64(v[1], 17);
	v[1] ^= v[2];
	v[2] = rotl64(v[2], 32);
}

static inline uint64_t load_le64(const uint8_t *p)
{
	uint64_t x;
	memcpy(&x, p, sizeof(x));
	return le64toh(x);
}

static inline uint64_t siphash(uint64_t k0, uint64_t k1, const uint8_t *in, size_t len, int crounds,
                               int drounds)
{
	uint64_t v[4] = {
	        UINT64_C(0x736f6d6570736575) ^ k0,
	        UINT64_C(0x646f72616e646f6d) ^ k1,
	        UINT64_C(0x6c7967656e657261) ^ k0,
	        UINT64_C(0x7465646279746573) ^ k1,
	};
	const uint8_t *end = in + (len & ~(size_t)7);
	for (; in != end; in += 8) {
		uint64_t m = load_le64(in);
		v[3] ^= m;
		for (int i = 0; i < crounds; i++)
			sipround(v);
		v[0] ^= m;
	}
	uint8_t tail[8] = {0};
	memcpy(tail, in, len & 7);
	uint64_t b = ((uint64_t)len << 56) | load_le64(tail);
	v[3] ^= b;
	for (int i = 0; i < crounds; i++)
		sipround(v);
	v[0] ^= b;
	v[2] ^= 0xff;
	for (int i = 0; i < drounds; i++)
		sipround(v);
	return v[0] ^ v[1] ^ v[2] ^ v[3];
}

uint64_t keyset_siphash13(const uint8_t key[16], const void *data, size_t len)
{
	return siphash(load_le64(key), load_le64(key + 8), data, len, 1, 3);
}

uint64_t keyset_siphash24(const uint8_t key[16], const void *data, size_t len)
{
	return siphash(load_le64(key), load_le64(key + 8), data, len, 2, 4);
}

/* ---- helpers ---- */

static uint64_t key_hash(const struct keyset *ks, const char *key, size_t len)
{
	if (ks->hooks.hash)
		return ks->hooks.hash(key, len, ks->hooks.ud);
	return siphash(ks->k0, ks->k1, (const uint8_t *)key, len, 1, 3);
}

static inline uint64_t hash_tag(uint64_t h)
{
	/* The index uses the low bits; the tag takes the top ones so the two stay independent. */
	uint64_t tag = h >> OFFSET_BITS;
	return tag ? tag : 1;
}

static bool may_alloc(const struct keyset *ks, size_t size)
{
	return !ks->hooks.may_alloc || ks->hooks.may_alloc(size, ks->hooks.ud);
}

static inline size_t table_slots(const struct table *t)
{
	return t->slots ? t->mask + 1 : 0;
}

/* Keys a table of `slots` may hold: 3/4 keeps linear probe chains short. */
static inline size_t table_limit(size_t slots)
{
	return slots - slots / 4;
}

/* ---- memory blocks: malloc for small ones, direct mappings for big ones ---- */

/* Transparent huge pages, where the kernel has them: a lookup is one random read of the
 * table, and with 4 KiB pages most of them also miss the TLB (a page walk, which under a
 * hypervisor costs more than the read itself). The kernel backs only 2 MiB-aligned
 * extents with huge pages, so a table of that size or more is mapped aligned. */
#define HUGE_PAGE ((size_t)2 << 20)

static void *map_zero(size_t size)
{
	size_t extra = size >= HUGE_PAGE ? HUGE_PAGE : 0;
	char *p = mmap(NULL, size + extra, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
	               0);
	if (p == MAP_FAILED)
		return NULL;
	if (extra) {
		size_t head = (HUGE_PAGE - (uintptr_t)p % HUGE_PAGE) % HUGE_PAGE;
		if (head)
			munmap(p, head);
		if (extra - head)
			munmap(p + head + size, extra - head);
		p += head;
		/* Advice only: without THP (or with it off) this fails and changes nothing. */
		madvise(p, size, MADV_HUGEPAGE);
	}
	return p;
}

static void *block_alloc_zero(const struct keyset *ks, size_t size)
{
	if (!may_alloc(ks, size))
		return NULL;
	return size < BIG_BLOCK ? calloc(1, size) : map_zero(size);
}

/* Resize keeping the first `keep` bytes; *p is untouched on failure. */
static int block_resize(const struct keyset *ks, void **p, size_t old, size_t size, size_t keep)
{
	if (!may_alloc(ks, size))
		return -ENOMEM;
	void *n;
	if (size < BIG_BLOCK) {
		n = realloc(*p, size);
		if (!n)
			return -ENOMEM;
	} else if (old < BIG_BLOCK) {
		n = map_zero(size);
		if (!n)
			return -ENOMEM;
		if (keep)
			memcpy(n, *p, keep);
		free(*p);
	} else {
		n = mremap(*p, old, size, MREMAP_MAYMOVE);
		if (n == MAP_FAILED)
			return -ENOMEM;
		if (size >= HUGE_PAGE)
			madvise(n, size, MADV_HUGEPAGE);
	}
	*p = n;
	return 0;
}

/* Free a block of `size` bytes whose first `released` bytes are already unmapped. */
static void block_free(void *p, size_t size, size_t released)
{
	if (!p)
		return;
	if (size < BIG_BLOCK)
		free(p);
	else if (size > released)
		munmap((char *)p + released, size - released);
}

static int table_alloc(const struct keyset *ks, struct table *t, size_t slots)
{
	if (slots > SIZE_MAX / sizeof(uint64_t))
		return -ENOMEM;
	uint64_t *s = block_alloc_zero(ks, slots * sizeof(uint64_t));
	if (!s)
		return -ENOMEM;
	*t = (struct table){.slots = s, .mask = slots - 1};
	return 0;
}

static void table_release(struct table *t)
{
	block_free(t->slots, table_slots(t) * sizeof(uint64_t), t->released);
	*t = (struct table){0};
}

/* Arena entry at `off`: returns the key bytes and sets *len. */
static inline const char *arena_key(const char *arena, uint64_t off, size_t *len)
{
	const unsigned char *p = (const unsigned char *)arena + off;
	if (p[0] < LEN_ONE_BYTE) {
		*len = p[0];
		return (const char *)p + 1;
	}
	*len = (size_t)(p[0] & 0x7f) | ((size_t)p[1] << 7);
	return (const char *)p + 2;
}

/* The stored copy of `key` (its value follows it), or NULL. */
static const char *table_find(const struct table *t, const char *arena, uint64_t h, const char *key,
                              size_t len)
{
	uint64_t tag = hash_tag(h);
	for (size_t i = h & t->mask;; i = (i + 1) & t->mask) {
		uint64_t s = t->slots[i];
		if (!s)
			return NULL;
		if ((s & TAG_MASK) != tag)
			continue;
		size_t klen;
		const char *k = arena_key(arena, s >> TAG_BITS, &klen);
		if (klen == len && memcmp(k, key, len) == 0)
			return k;
	}
}

/* The caller knows the key is absent and that the table has room. */
static void table_put(struct table *t, uint64_t h, uint64_t off)
{
	size_t i = h & t->mask;
	while (t->slots[i])
		i = (i + 1) & t->mask;
	t->slots[i] = (off << TAG_BITS) | hash_tag(h);
}

/* Move up to `n` slots of the old table into the current one, giving back the pages that
 * only held moved slots. */
static void rehash_step(struct keyset *ks, size_t n)
{
	struct table *old = &ks->old;
	size_t end = table_slots(old);
	while (n-- > 0 && ks->old_pos < end) {
		uint64_t s = old->slots[ks->old_pos++];
		if (!s)
			continue;
		size_t len;
		const char *k = arena_key(ks->arena, s >> TAG_BITS, &len);
		table_put(&ks->cur, key_hash(ks, k, len), s >> TAG_BITS);
	}
	if (ks->old_pos >= end) {
		table_release(old);
		return;
	}
	size_t bytes = end * sizeof(uint64_t);
	size_t moved = ks->old_pos * sizeof(uint64_t) / RELEASE_CHUNK * RELEASE_CHUNK;
	if (bytes >= BIG_BLOCK && moved > old->released) {
		/* Unmapping is a page-table operation: a whole table at once would cost time
		 * in proportion to the set, a chunk costs a bounded amount. */
		munmap((char *)old->slots + old->released, moved - old->released);
		old->released = moved;
	}
}

/* Lookup in the table being drained. Slots below old_pos were moved to cur (and may be
 * unmapped): a key stored there is found in cur. A key still here sits at or after
 * old_pos, on an unbroken run of occupied slots from its home, so the probe may start at
 * old_pos; a run that wraps past the end continues at old_pos too, since everything
 * before it is either moved or part of the same run. */
static const char *old_find(const struct keyset *ks, uint64_t h, const char *key, size_t len)
{
	const struct table *t = &ks->old;
	uint64_t tag = hash_tag(h);
	size_t start = h & t->mask;
	if (start < ks->old_pos)
		start = ks->old_pos;
	size_t i = start;
	do {
		uint64_t s = t->slots[i];
		if (!s)
			return NULL;
		if ((s & TAG_MASK) == tag) {
			size_t klen;
			const char *k = arena_key(ks->arena, s >> TAG_BITS, &klen);
			if (klen == len && memcmp(k, key, len) == 0)
				return k;
		}
		i = i == t->mask ? ks->old_pos : i + 1;
	} while (i != start);
	return NULL;
}

/* The stored copy of `key` in either table, or NULL. */
static const char *set_find(const struct keyset *ks, uint64_t h, const char *key, size_t len)
{
	const char *k = table_find(&ks->cur, ks->arena, h, key, len);
	if (k)
		return k;
	return ks->old.slots ? old_find(ks, h, key, len) : NULL;
}

static inline uint64_t entry_value(const char *k, size_t len)
{
	uint64_t v;
	memcpy(&v, k + len, sizeof(v));
	return v;
}

/* Make room for one more key: start a rehash into a table twice the size. */
static int grow_table(struct keyset *ks)
{
	/* REHASH_STEP guarantees the previous rehash is over; finish it anyway rather than
	 * rely on arithmetic alone, since a third table would break lookups. */
	if (ks->old.slots)
		rehash_step(ks, SIZE_MAX);
	size_t slots = table_slots(&ks->cur);
	if (slots > SIZE_MAX / 2)
		return -ENOMEM;
	struct table next;
	int r = table_alloc(ks, &next, slots * 2);
	if (r < 0)
		return r;
	ks->old = ks->cur;
	ks->old_pos = 0;
	ks->cur = next;
	return 0;
}

int keyset_reserve(struct keyset *ks, size_t n)
{
	size_t slots = table_slots(&ks->cur);
	if (table_limit(slots) >= n)
		return 0;
	while (table_limit(slots) < n) {
		if (slots > SIZE_MAX / 2 / sizeof(uint64_t))
			return -ENOMEM;
		slots *= 2;
	}
	/* Allocate first: a refusal must leave the set exactly as it was. */
	struct table next;
	int r = table_alloc(ks, &next, slots);
	if (r < 0)
		return r;
	if (ks->old.slots)
		rehash_step(ks, SIZE_MAX);
	ks->old = ks->cur;
	ks->old_pos = 0;
	ks->cur = next;
	/* A small set moves at once; a big one moves as adds come, as in growth. */
	if (ks->count <= KEYSET_RESERVE_MOVE_NOW)
		rehash_step(ks, SIZE_MAX);
	return 0;
}

static int arena_reserve(struct keyset *ks, size_t need)
{
	if (ks->arena_cap - ks->arena_len >= need)
		return 0;
	if (need > ARENA_MAX - ks->arena_len)
		return -ENOMEM;
	size_t want = ks->arena_len + need;
	size_t cap = ks->arena_cap ? ks->arena_cap : ARENA_MIN;
	while (cap < want) {
		if (cap > SIZE_MAX / 2)
			return -ENOMEM;
		/* A mapped arena grows by mremap(), which copies nothing, so it can
		 * grow in small steps: a quarter wastes at most a fifth of it,
		 * where doubling wastes up to half (at 1M keys with fingerprints,
		 * 19 MB of entries took 32 MiB). */
		cap = cap < BIG_BLOCK ? cap * 2 : (cap + cap / 4 + 4095) & ~(size_t)4095;
	}
	void *a = ks->arena;
	int r = block_resize(ks, &a, ks->arena_cap, cap, ks->arena_len);
	if (r < 0)
		return r;
	ks->arena = a;
	ks->arena_cap = cap;
	return 0;
}

static void random_key(struct keyset *ks)
{
	uint8_t k[16];
	size_t got = 0;
	while (got < sizeof(k)) {
		/* Non-blocking: at early boot a weaker seed beats a daemon that hangs. */
		ssize_t n = getrandom(k + got, sizeof(k) - got, GRND_NONBLOCK);
		if (n > 0)
			got += (size_t)n;
		else if (n < 0 && errno == EINTR)
			continue;
		else
			break;
	}
	if (got < sizeof(k)) {
		struct timespec mono, real;
		clock_gettime(CLOCK_MONOTONIC, &mono);
		clock_gettime(CLOCK_REALTIME, &real);
		uint64_t mix[4] = {(uint64_t)mono.tv_nsec ^ ((uint64_t)mono.tv_sec << 30),
		                   (uint64_t)real.tv_nsec ^ ((uint64_t)real.tv_sec << 30),
		                   (uint64_t)getpid(), (uint64_t)(uintptr_t)ks};
		uint64_t a = siphash(0, 0, (const uint8_t *)mix, sizeof(mix), 2, 4);
		uint64_t b = siphash(a, ~a, (const uint8_t *)mix, sizeof(mix), 2, 4);
		memcpy(k, &a, 8);
		memcpy(k + 8, &b, 8);
	}
	ks->k0 = load_le64(k);
	ks->k1 = load_le64(k + 8);
}

/* ---- public functions ---- */

struct keyset *keyset_new_with_hooks(size_t expected, const struct keyset_hooks *hooks)
{
	if (hooks && hooks->may_alloc && !hooks->may_alloc(sizeof(struct keyset), hooks->ud))
		return NULL;
	struct keyset *ks = calloc(1, sizeof(*ks));
	if (!ks)
		return NULL;
	if (hooks)
		ks->hooks = *hooks;
	ks->vsize = ks->hooks.valued ? sizeof(uint64_t) : 0;
	random_key(ks);
	size_t slots = TABLE_MIN;
	while (table_limit(slots) < expected) {
		if (slots > SIZE_MAX / 2) {
			free(ks);
			return NULL;
		}
		slots *= 2;
	}
	if (table_alloc(ks, &ks->cur, slots) < 0) {
		free(ks);
		return NULL;
	}
	return ks;
}

struct keyset *keyset_new(size_t expected)
{
	return keyset_new_with_hooks(expected, NULL);
}

void keyset_free(struct keyset *ks)
{
	if (!ks)
		return;
	table_release(&ks->cur);
	table_release(&ks->old);
	block_free(ks->arena, ks->arena_cap, 0);
	free(ks);
}

struct keyset *keyset_new_valued(size_t expected)
{
	const struct keyset_hooks valued = {.valued = true};
	return keyset_new_with_hooks(expected, &valued);
}

/* Add `key` with `value` (kept only by a valued set); an existing key's value is
 * replaced when `replace`. 1 added, 0 present, or -errno. */
static int set_put(struct keyset *ks, const char *key, size_t len, uint64_t value, bool replace)
{
	if (len == 0 || len > KEYSET_MAX_KEY_LEN || !key)
		return -EINVAL;
	if (ks->old.slots)
		rehash_step(ks, REHASH_STEP);
	uint64_t h = key_hash(ks, key, len);
	const char *found = set_find(ks, h, key, len);
	if (found) {
		if (replace && ks->vsize)
			memcpy((char *)found + len, &value, sizeof(value));
		return 0;
	}
	/* Everything that can fail happens before the set changes, so -ENOMEM leaves it whole. */
	if (ks->count + 1 > table_limit(table_slots(&ks->cur))) {
		int r = grow_table(ks);
		if (r < 0)
			return r;
	}
	size_t hdr = len < LEN_ONE_BYTE ? 1 : 2;
	int r = arena_reserve(ks, hdr + len + ks->vsize);
	if (r < 0)
		return r;
	uint64_t off = ks->arena_len;
	unsigned char *p = (unsigned char *)ks->arena + off;
	if (hdr == 1) {
		p[0] = (unsigned char)len;
	} else {
		p[0] = (unsigned char)(LEN_ONE_BYTE | (len & 0x7f));
		p[1] = (unsigned char)(len >> 7);
	}
	memcpy(p + hdr, key, len);
	if (ks->vsize)
		memcpy(p + hdr + len, &value, sizeof(value));
	ks->arena_len += hdr + len + ks->vsize;
	table_put(&ks->cur, h, off);
	ks->count++;
	return 1;
}

int keyset_add(struct keyset *ks, const char *key, size_t len)
{
	return set_put(ks, key, len, 0, false);
}

int keyset_put(struct keyset *ks, const char *key, size_t len, uint64_t value)
{
	return set_put(ks, key, len, value, true);
}

bool keyset_has(const struct keyset *ks, const char *key, size_t len)
{
	if (len == 0 || len > KEYSET_MAX_KEY_LEN || !key)
		return false;
	return set_find(ks, key_hash(ks, key, len), key, len) != NULL;
}

bool keyset_get(const struct keyset *ks, const char *key, size_t len, uint64_t *value)
{
	if (len == 0 || len > KEYSET_MAX_KEY_LEN || !key)
		return false;
	const char *k = set_find(ks, key_hash(ks, key, len), key, len);
	if (k && value)
		*value = ks->vsize ? entry_value(k, len) : 0;
	return k != NULL;
}

/* Keys whose memory reads are in flight at once: enough to cover a miss to
 * DRAM, few enough that the prefetched lines are still in cache when used. */
#define KEYSET_GROUP 16

static inline bool key_ok(const char *key, size_t len)
{
	return key && len > 0 && len <= KEYSET_MAX_KEY_LEN;
}

void keyset_get_many(const struct keyset *ks, const struct keyset_key *keys, size_t n, bool *out,
                     uint64_t *values)
{
	uint64_t h[KEYSET_GROUP];
	for (size_t at = 0; at < n; at += KEYSET_GROUP) {
		size_t m = n - at < KEYSET_GROUP ? n - at : KEYSET_GROUP;
		const struct keyset_key *k = keys + at;
		/* The home slot of each key, in both tables while a rehash runs. */
		for (size_t i = 0; i < m; i++) {
			if (!key_ok(k[i].key, k[i].len))
				continue;
			h[i] = key_hash(ks, k[i].key, k[i].len);
			__builtin_prefetch(&ks->cur.slots[h[i] & ks->cur.mask]);
			if (ks->old.slots && (h[i] & ks->old.mask) >= ks->old_pos)
				__builtin_prefetch(&ks->old.slots[h[i] & ks->old.mask]);
		}
		/* Then the arena entry of a home slot whose tag matches: almost always
		 * the key itself when it is present. */
		for (size_t i = 0; i < m; i++) {
			if (!key_ok(k[i].key, k[i].len))
				continue;
			uint64_t s = ks->cur.slots[h[i] & ks->cur.mask];
			if (s && (s & TAG_MASK) == hash_tag(h[i]))
				__builtin_prefetch(ks->arena + (s >> TAG_BITS));
		}
		for (size_t i = 0; i < m; i++) {
			const char *e = key_ok(k[i].key, k[i].len)
			                        ? set_find(ks, h[i], k[i].key, k[i].len)
			                        : NULL;
			out[at + i] = e != NULL;
			if (values)
				values[at + i] = e && ks->vsize ? entry_value(e, k[i].len) : 0;
		}
	}
}

void keyset_has_many(const struct keyset *ks, const struct keyset_key *keys, size_t n, bool *out)
{
	keyset_get_many(ks, keys, n, out, NULL);
}

size_t keyset_count(const struct keyset *ks)
{
	return ks->count;
}

size_t keyset_memory(const struct keyset *ks)
{
	return sizeof(*ks) + ks->arena_cap +
	       (table_slots(&ks->cur) + table_slots(&ks->old)) * sizeof(uint64_t) -
	       ks->old.released;
}

int keyset_foreach(const struct keyset *ks, int (*fn)(const char *key, size_t len, void *ud),
                   void *ud)
{
	/* The arena holds each key exactly once, in insertion order, whatever the tables do. */
	size_t off = 0;
	while (off < ks->arena_len) {
		size_t len;
		const char *k = arena_key(ks->arena, off, &len);
		int r = fn(k, len, ud);
		if (r)
			return r;
		off = (size_t)(k - ks->arena) + len + ks->vsize;
	}
	return 0;
}

bool keyset_rehashing(const struct keyset *ks)
{
	return ks->old.slots != NULL;
}

size_t keyset_table_slots(const struct keyset *ks)
{
	return table_slots(&ks->cur);
}
