/* Unit tests for jscan.c: the structural scanner, the plain-member lookup and the
 * conservative validator the drain trusts instead of jansson. */
#include "autoconfig.h"

#include <stdbool.h>
#include <string.h>

#include <jansson.h>

#include "jscan.h"
#include "tap.h"

static bool valid(const char *s)
{
	return jscan_valid_object(s, strlen(s));
}

/* What the validator accepts, jansson must read as an object. */
static bool agrees(const char *s)
{
	json_t *j = json_loadb(s, strlen(s), 0, NULL);
	bool ok = !valid(s) || json_is_object(j);
	json_decref(j);
	return ok;
}

static void test_spool_lines_are_vouched_for(void)
{
	static const char *const good[] = {
	        "{}",
	        "{\"uniqueCode\":\"U-1\",\"sold\":2,\"faceValue\":25.5,\"isPending\":false}",
	        "{\"a\":null,\"b\":[1,-0,0.125,true,[],{}],\"c\":{\"d\":\"caf\xc3\xa9\"}}",
	        "{\"q\":\"say \\\"hi\\\"\\n\\t\\\\ \\/\"}",
	        " { \"a\" : [ 1 , 2 ] } ",
	        "{\"n\":123456789012345678,\"r\":5.8300000000000001,\"m\":-0.1}",
	        "{\"a\":\"\\u00e9 \\u2603 \\uD83D\\uDE00 \\u001f \\uFFFF\"}",
	};
	for (size_t i = 0; i < sizeof(good) / sizeof(*good); i++) {
		CHECK(valid(good[i]));
		CHECK(agrees(good[i]));
	}
}

static void test_anything_doubtful_goes_to_jansson(void)
{
	static const char *const doubtful[] = {
	        "",
	        "[]",
	        "\"x\"",
	        "{\"a\":\"\\u0000\"}",         /* U+0000: refused without JSON_ALLOW_NUL */
	        "{\"a\":\"\\ud800\"}",         /* a lone high surrogate */
	        "{\"a\":\"\\udc00\"}",         /* a lone low surrogate */
	        "{\"a\":\"\\ud800\\u0041\"}",  /* high, then no low */
	        "{\"a\":\"\\ud800x\\udc00\"}", /* not right after */
	        "{\"a\":\"\\u00g1\"}",         /* not hex */
	        "{\"a\":\"\\u00e\"}",          /* too short */
	        "{\"a\":1e5}",                 /* exponents */
	        "{\"a\":9223372036854775808}", /* 19 digits: strtoll may overflow */
	        "{\"a\":01}",                  /* leading zero */
	        "{\"a\":1.}",                  /* no fraction digits */
	        "{\"a\":-}",
	        "{\"a\":\"\xff\"}",         /* invalid UTF-8 */
	        "{\"a\":\"\xed\xa0\x80\"}", /* a surrogate */
	        "{\"a\":\"x\ny\"}",         /* a raw control character */
	        "{\"a\":1,}",               /* trailing comma */
	        "{\"a\" 1}",
	        "{\"a\":tru}",
	        "{\"a\":truex}",
	        "{\"a\":1}x",
	        "{\"a\":[1,2}",
	        "{\"a\":\"unclosed}",
	        "{'a':1}",
	        "{\"a\":\"\\x\"}",
	};
	for (size_t i = 0; i < sizeof(doubtful) / sizeof(*doubtful); i++) {
		CHECK(!valid(doubtful[i]));
		CHECK(agrees(doubtful[i]));
	}
	/* Deep nesting: refused past JSCAN_VALIDATE_DEPTH, never a stack overflow. */
	char deep[6 * (JSCAN_VALIDATE_DEPTH + 2) + 16];
	size_t o = 0;
	for (int i = 0; i < JSCAN_VALIDATE_DEPTH + 2; i++)
		o += (size_t)snprintf(deep + o, sizeof(deep) - o, "{\"a\":");
	CHECK(!jscan_valid_object(deep, o));
}

static void test_plain_member(void)
{
	const char *v;
	size_t n;
	const char *s = "{\"id\":\"A\",\"x\":{\"id\":\"B\"},\"id\":\"C\"}";
	CHECK(jscan_plain_member(s, strlen(s), "id", &v, &n) && n == 1 && *v == 'C');
	s = "{\"id\":\"A\",\"id\":7}"; /* the last one wins, as in jansson */
	CHECK(!jscan_plain_member(s, strlen(s), "id", &v, &n));
	s = "{\"id\":\"A\\\"B\"}"; /* an escape: jansson reads it */
	CHECK(!jscan_plain_member(s, strlen(s), "id", &v, &n));
	s = "{\"i\\u0064\":\"A\"}"; /* an escaped name */
	CHECK(!jscan_plain_member(s, strlen(s), "id", &v, &n));
	s = "{\"other\":\"A\"}";
	CHECK(!jscan_plain_member(s, strlen(s), "id", &v, &n));
	s = "{\"id\":\"\",\"n\":1}";
	CHECK(jscan_plain_member(s, strlen(s), "id", &v, &n) && n == 0);
	s = "{\"id\":\"A\"";
	CHECK(!jscan_plain_member(s, strlen(s), "id", &v, &n));
}

int main(void)
{
	RUN(test_spool_lines_are_vouched_for);
	RUN(test_anything_doubtful_goes_to_jansson);
	RUN(test_plain_member);
	return tap_done();
}
