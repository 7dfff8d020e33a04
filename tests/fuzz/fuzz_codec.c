/* fuzz_codec.c - libFuzzer target for codec.c: the base64 decoders take bytes from Secret Manager
 * and JWT-shaped input; any input must decode canonically or be refused, never crash or read out
 * of bounds. Also round-trips the encoders, CRC32C chaining and form encoding. See README.md. */
#include "autoconfig.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A broken invariant is a finding: stop here so libFuzzer and the TAP driver both see it. */
#define INVARIANT(cond)                                                                            \
	do {                                                                                       \
		if (!(cond))                                                                       \
			abort();                                                                   \
	} while (0)

/* The decoders are strict, so whatever they accept re-encodes to exactly the input. */
static void decode_is_canonical(const char *in, size_t len, bool url)
{
	unsigned char *out = NULL;
	size_t n = 0;
	int r = url ? codec_base64url_decode(in, len, &out, &n)
	            : codec_base64_decode(in, len, &out, &n);
	if (r < 0) {
		INVARIANT(out == NULL);
		return;
	}
	INVARIANT(out && out[n] == '\0');
	char *again = url ? codec_base64url_encode(out, n) : codec_base64_encode(out, n);
	INVARIANT(again && strlen(again) == len && memcmp(again, in, len) == 0);
	free(again);
	free(out);
}

static void encode_round_trips(const uint8_t *data, size_t size, bool url)
{
	char *e = url ? codec_base64url_encode(data, size) : codec_base64_encode(data, size);
	unsigned char *out = NULL;
	size_t n = 0;
	INVARIANT(e);
	int r = url ? codec_base64url_decode(e, strlen(e), &out, &n)
	            : codec_base64_decode(e, strlen(e), &out, &n);
	INVARIANT(r == 0 && n == size && (size == 0 || memcmp(out, data, size) == 0));
	free(out);
	free(e);
}

static int unhex(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Split the input into a name and a value; the encoding must decode back to both. */
static void form_round_trips(const uint8_t *data, size_t size)
{
	size_t cut = size ? data[0] % (size + 1) : 0;
	char name[64];
	size_t nl = cut < sizeof(name) - 1 ? cut : sizeof(name) - 1;
	for (size_t i = 0; i < nl; i++)
		name[i] = data[i] ? (char)data[i] : 'x'; /* the name is a C string */
	name[nl] = '\0';
	struct codec_form_field f = {name, data + cut, size - cut};
	size_t len = 0;
	char *body = codec_form_encode(&f, 1, &len);
	INVARIANT(body && strlen(body) == len);
	char *eq = strchr(body, '=');
	INVARIANT(eq);
	unsigned char *dec = malloc(len + 1);
	size_t k = 0;
	for (const char *p = eq + 1; *p; p++) {
		INVARIANT(*p != '&' && *p != '=' && *p != '+' && *p != ' ');
		if (*p == '%') {
			int hi = unhex(p[1]), lo = hi >= 0 ? unhex(p[2]) : -1;
			INVARIANT(hi >= 0 && lo >= 0);
			dec[k++] = (unsigned char)(hi << 4 | lo);
			p += 2;
		} else {
			dec[k++] = (unsigned char)*p;
		}
	}
	INVARIANT(k == size - cut && (k == 0 || memcmp(dec, data + cut, k) == 0));
	free(dec);
	free(body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	decode_is_canonical((const char *)data, size, false);
	decode_is_canonical((const char *)data, size, true);
	encode_round_trips(data, size, false);
	encode_round_trips(data, size, true);
	size_t cut = size ? data[size - 1] % (size + 1) : 0;
	INVARIANT(codec_crc32c(codec_crc32c(0, data, cut), data + cut, size - cut) ==
	          codec_crc32c(0, data, size));
	form_round_trips(data, size);
	return 0;
}
