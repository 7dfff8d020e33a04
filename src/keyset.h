/* keyset.h - the set of row keys already in BigQuery (sales uniqueCode, event id), used to
 * drop rows that were loaded before. Exact: a key is reported present only if exactly the
 * same bytes were added, so no row is ever dropped by mistake. Keys are copied into the set;
 * the caller keeps its own buffers. Lookups change nothing and may run concurrently with
 * each other, but not with keyset_add(). */
#ifndef STBQ_KEYSET_H
#define STBQ_KEYSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest key accepted. BigQuery's insertId limit (128) does not apply here: these keys
 * are the key column values themselves, compared byte for byte, and a longer insertId is
 * derived from them elsewhere. The bound keeps one bad row from costing unbounded memory
 * and keeps each key's stored length to two bytes. */
#define KEYSET_MAX_KEY_LEN 1024

struct keyset;

/* A set sized for `expected` keys (0 is fine; it grows). NULL on ENOMEM. */
struct keyset *keyset_new(size_t expected);
/* The same, with a 64-bit value beside each key (8 more bytes a key): a row's
 * fingerprint, where changed rows are tracked. keyset_add() gives a new key the
 * value 0. */
struct keyset *keyset_new_valued(size_t expected);
void keyset_free(struct keyset *ks); /* accepts NULL */
/* Copy `key` in. 1 added, 0 already present, -EINVAL (len 0 or > KEYSET_MAX_KEY_LEN),
 * -ENOMEM (the set is unchanged and still usable). Keys may hold any bytes, NUL included. */
int keyset_add(struct keyset *ks, const char *key, size_t len);
bool keyset_has(const struct keyset *ks, const char *key, size_t len); /* exact match */
/* Add `key` with `value`, or set the value of a key already present. 1 added, 0 updated,
 * or as keyset_add(). In a set without values it is keyset_add(). */
int keyset_put(struct keyset *ks, const char *key, size_t len, uint64_t value);
/* keyset_has(), and the key's value in *value (0 in a set without values; value may be
 * NULL). */
bool keyset_get(const struct keyset *ks, const char *key, size_t len, uint64_t *value);
size_t keyset_count(const struct keyset *ks); /* keys held */

struct keyset_key {
	const char *key;
	size_t len;
};
/* out[i] = keyset_has(keys[i]) for each of n keys. In a big set every lookup
 * waits on a read from memory; here the reads of a group of keys are issued
 * together, so their waits overlap: several times the lookups per second. */
void keyset_has_many(const struct keyset *ks, const struct keyset_key *keys, size_t n, bool *out);
/* keyset_has_many() with each present key's value in values[i] (0 when absent). */
void keyset_get_many(const struct keyset *ks, const struct keyset_key *keys, size_t n, bool *out,
                     uint64_t *values);
/* Room for `n` keys in all without growth: one rehash now, while the set is small, rather
 * than one per doubling (seeding learns the table's row count before its first key). 0, or
 * -ENOMEM with the set unchanged and still usable. */
int keyset_reserve(struct keyset *ks, size_t n);
size_t keyset_memory(const struct keyset *ks); /* bytes allocated, for the metrics and benchmarks */
/* Call fn for every key once (order unspecified; key is not NUL-terminated and is borrowed
 * for the call). Stops early if fn returns nonzero and returns that value; 0 otherwise.
 * fn must not add to the set. */
int keyset_foreach(const struct keyset *ks, int (*fn)(const char *key, size_t len, void *ud),
                   void *ud);

#endif
