/* util.h - small helpers shared by every module: durable files, clocks, randomness, buffers. */
#ifndef STBQ_UTIL_H
#define STBQ_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

#define UTIL_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* A growable byte buffer, always NUL-terminated when data != NULL. */
struct buf {
	char *data;
	size_t len;
	size_t cap;
};

int buf_reserve(struct buf *b, size_t extra);                     /* 0 or -ENOMEM */
int buf_append_grow(struct buf *b, const void *data, size_t len); /* buf_append(), any size */
/* 0 or -ENOMEM. Inline where there is room: rows are written as many short pieces. */
static inline int buf_append(struct buf *b, const void *data, size_t len)
{
	if (b->cap - b->len <= len)
		return buf_append_grow(b, data, len);
	if (len)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
	return 0;
}
int buf_puts(struct buf *b, const char *s); /* 0 or -ENOMEM */
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_reset(struct buf *b);  /* len = 0, keeps memory */
void buf_free(struct buf *b);   /* frees data, zeroes b */
char *buf_steal(struct buf *b); /* hands data over; b is emptied */

int util_write_all(int fd, const void *data, size_t len); /* 0 or -errno */
int util_fsync_dir(const char *dir);                      /* 0 or -errno */
/* Write `path` atomically: temporary file in the same directory, fsync,
 * rename, fsync of the directory. 0 or -errno. */
int util_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode);
/* Read a whole file (at most max bytes) into a new NUL-terminated buffer. */
int util_read_file(const char *path, size_t max, char **out, size_t *len);
int util_mkdir_p(const char *path, mode_t mode); /* 0 or -errno */
/* A file that holds a secret (fd open on it, path for the message) must not
 * be open to every user and must belong to root or to this user (or to the
 * overflow uid, which is how root's files look under systemd's
 * PrivateUsers=). 0, or -EPERM with the problem and its fix in why. */
int util_check_private_file(int fd, const char *path, char *why, size_t len);

uint64_t util_now_ms(void);     /* CLOCK_MONOTONIC in milliseconds */
uint64_t util_now_us(void);     /* CLOCK_MONOTONIC in microseconds */
int64_t util_wall_s(void);      /* CLOCK_REALTIME seconds (for JWTs, dead letters) */
uint32_t util_random_u32(void); /* getrandom(), falling back to a seeded xorshift */
/* Format the current UTC time as RFC 3339 ("2026-11-27T12:00:00Z"). */
void util_utc_now(char out[32]);

void util_wipe(void *p, size_t len); /* memset that the compiler cannot drop */
bool util_str_has_prefix(const char *s, const char *prefix);
char *util_strdup_or_null(const char *s); /* strdup, NULL for NULL */

#endif
