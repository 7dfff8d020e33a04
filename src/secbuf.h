/* secbuf.h - secret bytes (API key, access token, JWT) kept out of reach of the logger.
 *
 * The bytes live behind an opaque type: no function here hands out a plain
 * `char *` that could be passed to a printf-style call. The few places that
 * must put a secret on the wire use secbuf_header() or secbuf_expose() (the
 * latter only for OpenSSL/curl calls that take raw bytes). Every live secbuf
 * is also registered with the logger, which blanks any occurrence of it in a
 * log record as a second line of defence. */
#ifndef STBQ_SECBUF_H
#define STBQ_SECBUF_H

#include <stdbool.h>
#include <stddef.h>

struct secbuf;

struct secbuf *secbuf_new(const void *bytes, size_t len); /* copies; NULL on ENOMEM */
void secbuf_free(struct secbuf *s);                       /* wipes memory; accepts NULL */
struct secbuf *secbuf_dup(const struct secbuf *s);        /* NULL on ENOMEM or s == NULL */
size_t secbuf_len(const struct secbuf *s);
bool secbuf_equal(const struct secbuf *a, const struct secbuf *b); /* constant time in length */
/* Build "NAME: PREFIXsecret" in a new malloc'd buffer the caller must free with
 * secbuf_header_free() (which wipes it). NULL on ENOMEM. */
char *secbuf_header(const struct secbuf *s, const char *name, const char *prefix);
void secbuf_header_free(char *h);
/* Raw bytes for library calls (base64, HMAC, form bodies). Never log the result. */
const unsigned char *secbuf_expose(const struct secbuf *s);

/* For the logger: replace every occurrence of a live secret in `text` (in
 * place, NUL-terminated) by asterisks. Returns how many were found. */
size_t secbuf_redact_live(char *text);

#endif
