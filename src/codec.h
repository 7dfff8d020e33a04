/* codec.h - base64, base64url, CRC32C and form encoding. Pure functions, no I/O, no logging.
 *
 * Decoded and encoded buffers are plain malloc'd memory: when they hold a
 * secret the caller wipes them (util_wipe) before free(). */
#ifndef STBQ_CODEC_H
#define STBQ_CODEC_H

#include <stddef.h>
#include <stdint.h>

/* Standard base64 (RFC 4648 §4) with '=' padding. New NUL-terminated string, NULL on ENOMEM. */
char *codec_base64_encode(const void *data, size_t len);
/* Strict decoder: length a multiple of 4, padding only at the end, no whitespace,
 * unused bits zero. 0 and a new buffer (NUL-terminated, *out_len bytes) or
 * -EINVAL / -ENOMEM. */
int codec_base64_decode(const char *in, size_t len, unsigned char **out, size_t *out_len);

/* base64url (RFC 4648 §5) without padding, as JWTs use it. */
char *codec_base64url_encode(const void *data, size_t len);
/* Rejects '=' padding, standard-alphabet '+' '/', impossible lengths and stray bits. */
int codec_base64url_decode(const char *in, size_t len, unsigned char **out, size_t *out_len);

/* CRC32C (Castagnoli, reflected polynomial 0x82F63B78). Pass 0 to start; feed the
 * result back in to continue over more data. */
uint32_t codec_crc32c(uint32_t crc, const void *data, size_t len);

/* One name=value pair of an application/x-www-form-urlencoded body. The value is
 * counted bytes so that secret bytes (secbuf_expose) need no NUL-terminated copy. */
struct codec_form_field {
	const char *name;
	const void *value;
	size_t value_len;
};

/* Percent-encode the fields (RFC 3986 unreserved bytes kept) into one exactly
 * sized new buffer, NUL-terminated, *len bytes. Allocated once so that no
 * half-grown copy of a secret is left behind in freed memory. NULL on ENOMEM. */
char *codec_form_encode(const struct codec_form_field *fields, size_t n, size_t *len);

#endif
