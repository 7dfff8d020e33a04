/* codec.c - base64 / base64url, CRC32C, form encoding. */
#include "autoconfig.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "util.h"

static const char b64_std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64_url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static char *encode(const unsigned char *in, size_t len, const char *alphabet, bool pad)
{
	if (len > (SIZE_MAX / 4 - 1) * 3)
		return NULL;
	size_t full = len / 3, rest = len % 3;
	size_t out_len = full * 4 + (rest ? (pad ? 4 : rest + 1) : 0);
	char *out = malloc(out_len + 1);
	if (!out)
		return NULL;
	char *o = out;
	for (size_t i = 0; i < full; i++, in += 3) {
		uint32_t v = (uint32_t)in[0] << 16 | (uint32_t)in[1] << 8 | in[2];
		*o++ = alphabet[v >> 18 & 63];
		*o++ = alphabet[v >> 12 & 63];
		*o++ = alphabet[v >> 6 & 63];
		*o++ = alphabet[v & 63];
	}
	if (rest) {
		uint32_t v = (uint32_t)in[0] << 16 | (rest == 2 ? (uint32_t)in[1] << 8 : 0);
		*o++ = alphabet[v >> 18 & 63];
		*o++ = alphabet[v >> 12 & 63];
		if (rest == 2)
			*o++ = alphabet[v >> 6 & 63];
		else if (pad)
			*o++ = '=';
		if (pad)
			*o++ = '=';
	}
	*o = '\0';
	return out;
}

static int sextet(unsigned char c, bool url)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == (url ? '-' : '+'))
		return 62;
	if (c == (url ? '_' : '/'))
		return 63;
	return -1;
}

/* Decode `len` alphabet characters (padding already removed by the caller).
 * A leftover of one character cannot encode a byte; leftover bits that are not
 * zero mean a non-canonical or damaged encoding - both are refused so that one
 * payload has exactly one accepted spelling. */
static int decode(const char *in, size_t len, bool url, unsigned char **out, size_t *out_len)
{
	if (len % 4 == 1)
		return -EINVAL;
	size_t n = len / 4 * 3 + (len % 4 ? len % 4 - 1 : 0);
	unsigned char *buf = malloc(n + 1);
	if (!buf)
		return -ENOMEM;
	uint32_t acc = 0;
	int bits = 0;
	size_t k = 0;
	for (size_t i = 0; i < len; i++) {
		int v = sextet((unsigned char)in[i], url);
		if (v < 0)
			goto bad;
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			buf[k++] = (unsigned char)(acc >> bits & 0xff);
		}
	}
	if (bits && (acc & ((1u << bits) - 1)))
		goto bad;
	buf[k] = '\0';
	*out = buf;
	*out_len = k;
	return 0;
bad:
	/* Partially decoded bytes may be secret. */
	util_wipe(buf, n + 1);
	free(buf);
	return -EINVAL;
}

char *codec_base64_encode(const void *data, size_t len)
{
	return encode(data, len, b64_std, true);
}

char *codec_base64url_encode(const void *data, size_t len)
{
	return encode(data, len, b64_url, false);
}

int codec_base64_decode(const char *in, size_t len, unsigned char **out, size_t *out_len)
{
	if (!in || len % 4 != 0)
		return -EINVAL;
	size_t pad = 0;
	if (len >= 1 && in[len - 1] == '=')
		pad++;
	if (len >= 2 && in[len - 2] == '=')
		pad++;
	return decode(in, len - pad, false, out, out_len);
}

int codec_base64url_decode(const char *in, size_t len, unsigned char **out, size_t *out_len)
{
	if (!in)
		return -EINVAL;
	return decode(in, len, true, out, out_len);
}

static uint32_t crc32c_table[256];
static bool crc32c_ready;

static void crc32c_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? c >> 1 ^ 0x82F63B78u : c >> 1;
		crc32c_table[i] = c;
	}
	crc32c_ready = true;
}

uint32_t codec_crc32c(uint32_t crc, const void *data, size_t len)
{
	const unsigned char *p = data;
	if (!crc32c_ready)
		crc32c_init();
	crc = ~crc;
	while (len--)
		crc = crc32c_table[(crc ^ *p++) & 0xff] ^ crc >> 8;
	return ~crc;
}

static bool unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == '~';
}

static size_t escaped_len(const unsigned char *s, size_t len)
{
	size_t n = 0;
	for (size_t i = 0; i < len; i++)
		n += unreserved(s[i]) ? 1 : 3;
	return n;
}

static char *escape_into(char *o, const unsigned char *s, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	for (size_t i = 0; i < len; i++) {
		if (unreserved(s[i])) {
			*o++ = (char)s[i];
		} else {
			*o++ = '%';
			*o++ = hex[s[i] >> 4];
			*o++ = hex[s[i] & 15];
		}
	}
	return o;
}

char *codec_form_encode(const struct codec_form_field *fields, size_t n, size_t *len)
{
	size_t total = 0;
	for (size_t i = 0; i < n; i++) {
		const unsigned char *name = (const unsigned char *)fields[i].name;
		if (fields[i].value_len > SIZE_MAX / 4 - total)
			return NULL;
		total += (i ? 1 : 0) + escaped_len(name, strlen(fields[i].name)) + 1 +
		         escaped_len(fields[i].value, fields[i].value_len);
	}
	char *out = malloc(total + 1);
	if (!out)
		return NULL;
	char *o = out;
	for (size_t i = 0; i < n; i++) {
		if (i)
			*o++ = '&';
		o = escape_into(o, (const unsigned char *)fields[i].name, strlen(fields[i].name));
		*o++ = '=';
		o = escape_into(o, fields[i].value, fields[i].value_len);
	}
	*o = '\0';
	if (len)
		*len = total;
	return out;
}
