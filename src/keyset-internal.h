/* keyset-internal.h - test hooks into keyset.c, and its SipHash (schema_fingerprint()
 * uses it with a fixed key). */
#ifndef STBQ_KEYSET_INTERNAL_H
#define STBQ_KEYSET_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keyset.h"

#define KEYSET_RELEASE_CHUNK ((size_t)1024 * 1024) /* a drained old table goes back in these */

struct keyset_hooks {
	/* Replaces the keyed hash, e.g. by a constant to force every key to collide. */
	uint64_t (*hash)(const char *key, size_t len, void *ud);
	/* Asked before every allocation; false makes that allocation fail as ENOMEM. */
	bool (*may_alloc)(size_t size, void *ud);
	void *ud;
	bool valued; /* as keyset_new_valued() */
};

/* keyset_new() with hooks (copied; either function may be NULL for the default). */
struct keyset *keyset_new_with_hooks(size_t expected, const struct keyset_hooks *hooks);
bool keyset_rehashing(const struct keyset *ks);     /* an incremental rehash is under way */
size_t keyset_table_slots(const struct keyset *ks); /* slots in the table new keys go to */

/* SipHash with a 16-byte key, as in the reference implementation (little-endian result). */
uint64_t keyset_siphash13(const uint8_t key[16], const void *data, size_t len);
uint64_t keyset_siphash24(const uint8_t key[16], const void *data, size_t len);

#endif
