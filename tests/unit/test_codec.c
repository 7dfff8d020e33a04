/* Unit tests for codec.c: RFC 4648 vectors, strict decoders, CRC32C, form encoding. */
#include "autoconfig.h"

#include <errno.h>

#include "codec.h"
#include "tap.h"

/* RFC 4648 §10 test vectors. */
static const struct {
	const char *plain, *b64, *b64url;
} rfc4648[] = {
        {"", "", ""},
        {"f", "Zg==", "Zg"},
        {"fo", "Zm8=", "Zm8"},
        {"foo", "Zm9v", "Zm9v"},
        {"foob", "Zm9vYg==", "Zm9vYg"},
        {"fooba", "Zm9vYmE=", "Zm9vYmE"},
        {"foobar", "Zm9vYmFy", "Zm9vYmFy"},
};

static void test_base64_encodes_rfc4648_vectors(void)
{
	for (size_t i = 0; i < sizeof(rfc4648) / sizeof(rfc4648[0]); i++) {
		char *e = codec_base64_encode(rfc4648[i].plain, strlen(rfc4648[i].plain));
		CHECK_STR(e, rfc4648[i].b64);
		free(e);
		e = codec_base64url_encode(rfc4648[i].plain, strlen(rfc4648[i].plain));
		CHECK_STR(e, rfc4648[i].b64url);
		free(e);
	}
}

static void test_base64_decodes_rfc4648_vectors(void)
{
	for (size_t i = 0; i < sizeof(rfc4648) / sizeof(rfc4648[0]); i++) {
		unsigned char *out = NULL;
		size_t n = 99;
		CHECK_INT(codec_base64_decode(rfc4648[i].b64, strlen(rfc4648[i].b64), &out, &n), 0);
		CHECK_INT(n, strlen(rfc4648[i].plain));
		CHECK(out && memcmp(out, rfc4648[i].plain, n) == 0 && out[n] == '\0');
		free(out);
		out = NULL;
		CHECK_INT(codec_base64url_decode(rfc4648[i].b64url, strlen(rfc4648[i].b64url), &out,
		                                 &n),
		          0);
		CHECK_INT(n, strlen(rfc4648[i].plain));
		CHECK(out && memcmp(out, rfc4648[i].plain, n) == 0);
		free(out);
	}
}

/* The bytes 0xfb 0xff 0xbf use the two alphabet-specific characters. */
static void test_alphabets_differ_in_two_characters(void)
{
	const unsigned char bin[] = {0xfb, 0xff, 0xbf, 0x00, 0x10};
	char *std = codec_base64_encode(bin, sizeof(bin));
	char *url = codec_base64url_encode(bin, sizeof(bin));
	CHECK_STR(std, "+/+/ABA=");
	CHECK_STR(url, "-_-_ABA");
	unsigned char *out = NULL;
	size_t n = 0;
	CHECK_INT(codec_base64_decode(std, strlen(std), &out, &n), 0);
	CHECK(n == sizeof(bin) && memcmp(out, bin, n) == 0);
	free(out);
	CHECK_INT(codec_base64url_decode(url, strlen(url), &out, &n), 0);
	CHECK(n == sizeof(bin) && memcmp(out, bin, n) == 0);
	free(out);
	/* Each decoder refuses the other's alphabet. */
	CHECK_INT(codec_base64_decode("-_-_ABA=", 8, &out, &n), -EINVAL);
	CHECK_INT(codec_base64url_decode("+/+/ABA", 7, &out, &n), -EINVAL);
	free(std);
	free(url);
}

static void test_base64_decoder_rejects_malformed_input(void)
{
	static const char *const bad[] = {
	        "Zg=",      /* length not a multiple of 4 */
	        "Zg",       /* padding missing */
	        "Z===",     /* too much padding */
	        "Zm=v",     /* padding in the middle */
	        "=Zm9",     /* padding first */
	        "Zm9v\n",   /* whitespace */
	        "Zm 9v",    /* space */
	        "Zm9*",     /* not in the alphabet */
	        "Zh==",     /* stray bits after the last byte */
	        "Zm9=Zm9v", /* padding before more data */
	        "====",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		unsigned char *out = (unsigned char *)"untouched";
		size_t n = 7;
		int r = codec_base64_decode(bad[i], strlen(bad[i]), &out, &n);
		if (r != -EINVAL)
			printf("# accepted \"%s\"\n", bad[i]);
		CHECK_INT(r, -EINVAL);
		CHECK_STR((const char *)out, "untouched");
	}
	unsigned char *out = NULL;
	size_t n = 0;
	/* An embedded NUL is not part of the alphabet. */
	CHECK_INT(codec_base64_decode("Zm\0v", 4, &out, &n), -EINVAL);
	CHECK_INT(codec_base64_decode(NULL, 0, &out, &n), -EINVAL);
}

static void test_base64url_decoder_rejects_padding_and_impossible_lengths(void)
{
	static const char *const bad[] = {"Zg==", "Zm8=", "Z", "Zm9vY", "Zh", "Zm9.", "Zm9v\n"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		unsigned char *out = NULL;
		size_t n = 0;
		int r = codec_base64url_decode(bad[i], strlen(bad[i]), &out, &n);
		if (r != -EINVAL)
			printf("# accepted \"%s\"\n", bad[i]);
		CHECK_INT(r, -EINVAL);
	}
}

static void test_round_trip_of_every_byte_value_and_length(void)
{
	unsigned char bin[260];
	for (size_t i = 0; i < sizeof(bin); i++)
		bin[i] = (unsigned char)(i * 7 + 3);
	for (size_t len = 0; len <= sizeof(bin); len++) {
		char *a = codec_base64_encode(bin, len), *b = codec_base64url_encode(bin, len);
		unsigned char *x = NULL, *y = NULL;
		size_t nx = 0, ny = 0;
		CHECK(a && b);
		if (!a || !b)
			return;
		CHECK_INT(strlen(a) % 4, 0);
		CHECK(strchr(b, '=') == NULL);
		CHECK_INT(codec_base64_decode(a, strlen(a), &x, &nx), 0);
		CHECK_INT(codec_base64url_decode(b, strlen(b), &y, &ny), 0);
		CHECK(nx == len && ny == len && memcmp(x, bin, len) == 0 &&
		      memcmp(y, bin, len) == 0);
		free(a);
		free(b);
		free(x);
		free(y);
	}
}

static void test_crc32c_vectors(void)
{
	CHECK_INT(codec_crc32c(0, "123456789", 9), 3808858755u);
	CHECK_INT(codec_crc32c(0, "123456789", 9), 0xE3069283u);
	CHECK_INT(codec_crc32c(0, "secret-key", 10), 4048198890u);
	CHECK_INT(codec_crc32c(0, "", 0), 0);
	/* RFC 3720 B.4: 32 bytes of zeros. */
	unsigned char zeros[32] = {0};
	CHECK_INT(codec_crc32c(0, zeros, sizeof(zeros)), 0x8A9136AAu);
}

static void test_crc32c_continues_across_chunks(void)
{
	uint32_t c = codec_crc32c(0, "1234", 4);
	c = codec_crc32c(c, "56789", 5);
	CHECK_INT(c, 3808858755u);
	CHECK(codec_crc32c(0, "secret-kez", 10) != 4048198890u);
}

static void test_form_encoding_escapes_reserved_bytes(void)
{
	const char secret[] = {'a', ' ', '&', '=', '+', '/', '\0', 'z'};
	struct codec_form_field f[] = {
	        {"grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer", 43},
	        {"assertion", "eyJ.abc-_~", 10},
	        {"odd name", secret, sizeof(secret)},
	        {"empty", "", 0},
	};
	size_t len = 0;
	char *body = codec_form_encode(f, 4, &len);
	CHECK_STR(body, "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer"
	                "&assertion=eyJ.abc-_~&odd%20name=a%20%26%3D%2B%2F%00z&empty=");
	CHECK_INT(len, body ? strlen(body) : 0);
	free(body);
	body = codec_form_encode(NULL, 0, &len);
	CHECK_STR(body, "");
	CHECK_INT(len, 0);
	free(body);
}

int main(void)
{
	RUN(test_base64_encodes_rfc4648_vectors);
	RUN(test_base64_decodes_rfc4648_vectors);
	RUN(test_alphabets_differ_in_two_characters);
	RUN(test_base64_decoder_rejects_malformed_input);
	RUN(test_base64url_decoder_rejects_padding_and_impossible_lengths);
	RUN(test_round_trip_of_every_byte_value_and_length);
	RUN(test_crc32c_vectors);
	RUN(test_crc32c_continues_across_chunks);
	RUN(test_form_encoding_escapes_reserved_bytes);
	return tap_done();
}
