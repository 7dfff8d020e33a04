/* Unit tests for seetickets.c: what a reply may look like. */
#include "autoconfig.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "seetickets.h"
#include "util.h"
#include "tap.h"

static struct st_page pg;

/* The page's rows, or NULL with *err set. */
static json_t *parse_n(const char *body, size_t len, int *err)
{
	st_page_clear(&pg);
	*err = st_parse_page(body, len, "test", "id", NULL, &pg);
	return *err ? NULL : json_incref(pg.rows);
}

static json_t *parse(const char *body, int *err)
{
	return parse_n(body, strlen(body), err);
}

static void test_rows_come_from_the_top_level_data_array(void)
{
	int err = 1;
	json_t *rows =
	        parse("{\"data\":[{\"id\":\"DF-1\"},{\"id\":2}],\"meta\":{\"total\":2}}", &err);
	CHECK(rows != NULL);
	CHECK_INT(err, 0);
	CHECK_INT(json_array_size(rows), 2);
	json_decref(rows);
}

static void test_missing_or_null_data_is_an_empty_page(void)
{
	int err = 1;
	json_t *rows = parse("{}", &err);
	CHECK(rows && json_array_size(rows) == 0);
	CHECK_INT(err, 0);
	json_decref(rows);
	rows = parse("{\"data\":null}", &err);
	CHECK(rows && json_array_size(rows) == 0);
	json_decref(rows);
}

static void test_other_shapes_are_malformed(void)
{
	static const char *const bad[] = {
	        "",
	        "[]",
	        "{\"data\":{}}",
	        "{\"data\":\"x\"}",
	        "{\"data\":[",
	        "<html>503</html>",
	        "null",
	        "{\"data\":[1,2]",
	        "{\"data\":[1,]}",
	        "{\"data\":[{\"id\":1}]}x",
	        "{\"data\":[{\"id\":\"\xff\"}",
	        "{\"data\":[{\"id\":1]}",
	        "{\"data\":[{\"id\":1}],\"meta\":}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int err = 0;
		json_t *rows = parse(bad[i], &err);
		if (rows)
			printf("# accepted: %s\n", bad[i]);
		CHECK(rows == NULL);
		CHECK_INT(err, -EBADMSG);
	}
}

static void test_embedded_nul_and_non_ascii_survive(void)
{
	int err = 0;
	const char body[] = "{\"data\":[{\"name\":\"Caf\\u00e9 \\u2615 \\\"q\\\" \\\\\"}]}";
	json_t *rows = parse_n(body, sizeof(body) - 1, &err);
	CHECK(rows != NULL);
	const char *name = json_string_value(json_object_get(json_array_get(rows, 0), "name"));
	CHECK_STR(name, "Caf\xc3\xa9 \xe2\x98\x95 \"q\" \\");
	json_decref(rows);
}

/* One value jansson cannot hold costs only its row: the others are read,
 * the bad one is handed over as text, and paging counts every element. */
static void test_a_bad_row_costs_only_itself(void)
{
	int err = 1;
	const char body[] = "{\"data\":[{\"id\":\"A\"},{\"id\":\"B\",\"n\":\"\xff\"},"
	                    "{\"id\":\"C\",\"s\":\"\\ud83c\"},{\"id\":\"D\"}],\"meta\":1}";
	json_t *rows = parse_n(body, sizeof(body) - 1, &err);
	CHECK_INT(err, 0);
	CHECK_INT(pg.count, 4);
	CHECK_INT(json_array_size(rows), 2);
	CHECK_INT(pg.nbad, 2);
	CHECK_STR(json_string_value(json_object_get(json_array_get(rows, 1), "id")), "D");
	CHECK_INT(pg.bad[0].index, 1);
	CHECK_STR(pg.bad[0].text, "{\"id\":\"B\",\"n\":\"\\xFF\"}");
	CHECK(strstr(pg.bad[0].why, "UTF-8") != NULL);
	CHECK_INT(pg.bad[1].index, 2);
	CHECK(strstr(pg.bad[1].why, "\\ud83c") == NULL);
	CHECK_STR(pg.first, "\"A\"");
	json_decref(rows);
}

/* Numbers too big for jansson are read as the string of their digits. */
static void test_big_numbers_are_read_as_strings(void)
{
	int err = 1;
	json_t *rows = parse("{\"data\":[{\"id\":123456789012345678901234567890,\"x\":[1e999,"
	                     "-9223372036854775809,9223372036854775807,2.5]},{\"id\":\"B\"}]}",
	                     &err);
	CHECK_INT(err, 0);
	CHECK_INT(pg.nbad, 0);
	CHECK_INT(json_array_size(rows), 2);
	json_t *r0 = json_array_get(rows, 0);
	CHECK_STR(json_string_value(json_object_get(r0, "id")), "123456789012345678901234567890");
	json_t *x = json_object_get(r0, "x");
	CHECK_STR(json_string_value(json_array_get(x, 0)), "1e999");
	CHECK_STR(json_string_value(json_array_get(x, 1)), "-9223372036854775809");
	CHECK(json_integer_value(json_array_get(x, 2)) == INT64_MAX);
	CHECK(json_is_real(json_array_get(x, 3)));
	CHECK_STR(pg.first, "\"123456789012345678901234567890\"");
	json_decref(rows);
}

static void test_utf8_escape(void)
{
	char *s = st_utf8_escape("a\xc3\xa9\xed\xa0\x80z\xf4\x90\x80\x80", 11);
	CHECK_STR(s, "a\xc3\xa9\\xED\\xA0\\x80z\\xF4\\x90\\x80\\x80");
	free(s);
	s = st_utf8_escape("x\0y", 3);
	CHECK_STR(s, "x\\x00y");
	free(s);
}

/* The fast path's filter: knows the keys in a NULL-terminated list, and counts the asks. */
struct knowing {
	const char *const *keys;
	int asked;
	int batches;
};

static bool knows(const char *key, size_t len, void *ud)
{
	struct knowing *k = ud;
	k->asked++;
	for (const char *const *p = k->keys; *p; p++)
		if (strlen(*p) == len && memcmp(*p, key, len) == 0)
			return true;
	return false;
}

/* The ids of the rows read, joined by commas. */
static void ids(const json_t *rows, char *out, size_t len)
{
	size_t i, o = 0;
	const json_t *row;
	out[0] = '\0';
	json_array_foreach(rows, i, row)
	{
		const json_t *id = json_object_get(row, "id");
		o += (size_t)snprintf(out + o, len - o, "%s%s", i ? "," : "",
		                      json_is_string(id) ? json_string_value(id) : "?");
	}
}

static void test_known_rows_are_counted_not_read(void)
{
	static const char *const known[] = {"K1", "K2", "K\"Q", "K4", "K5", NULL};
	struct knowing k = {known, 0, 0};
	struct st_known filter = {.known = knows, .userdata = &k};
	const char *body = "{\"data\":[{\"id\":\"K1\",\"x\":{\"id\":\"N0\"}},"
	                   "{\"x\":1,\"id\":\"N1\"},"
	                   "{\"id\":\"K\\\"Q\"},"           /* an escape: read, never skipped */
	                   "{\"i\\u0064\":\"K2\"},"         /* an escaped name: read */
	                   "{\"id\":\"N2\",\"id\":\"K4\"}," /* the last one wins */
	                   "{\"id\":\"K5\",\"id\":7},"      /* ... also when not a string */
	                   "{\"id\":\"K2\",\"bad\":1e999999,\"n\":tru},"
	                   "[\"K1\"],\"K1\",{\"id\":\"K2\"}]}";
	st_page_clear(&pg);
	int err = st_parse_page(body, strlen(body), "test", "id", &filter, &pg);
	CHECK_INT(err, 0);
	CHECK_INT(pg.count, 10);
	/* K1, K4 (last of two), K2 with scalars jansson refuses, the last K2. */
	CHECK_INT(pg.nknown, 4);
	CHECK_INT(pg.nbad, 0);
	char got[200];
	ids(pg.rows, got, sizeof(got));
	CHECK_STR(got, "N1,K\"Q,K2,?,?,?");
	CHECK_STR(pg.first, "\"K1\"");
	CHECK(k.asked >= 5);

	/* Knowing nothing: the page jansson reads, row for row. */
	static const char *const none[] = {NULL};
	struct knowing n = {none, 0, 0};
	struct st_known nothing = {.known = knows, .userdata = &n};
	body = "{\"data\":[{\"id\":\"A\",\"v\":[1,{\"w\":\"]}\"}]},{\"id\":\"B\\\\\"}],\"m\":1}";
	st_page_clear(&pg);
	err = st_parse_page(body, strlen(body), "test", "id", &nothing, &pg);
	CHECK_INT(err, 0);
	json_t *fast = json_incref(pg.rows);
	st_page_clear(&pg);
	err = st_parse_page(body, strlen(body), "test", "id", NULL, &pg);
	CHECK_INT(err, 0);
	CHECK(json_equal(fast, pg.rows));
	json_decref(fast);

	/* Truncated or broken structure stays malformed with a filter. */
	st_page_clear(&pg);
	body = "{\"data\":[{\"id\":\"K1\"},{\"id\":\"K2\"}";
	CHECK_INT(st_parse_page(body, strlen(body), "test", "id", &filter, &pg), -EBADMSG);
	body = "{\"data\":[{\"id\":\"K1\"}}]}";
	CHECK_INT(st_parse_page(body, strlen(body), "test", "id", &filter, &pg), -EBADMSG);
}

static void many(const struct st_span *keys, size_t n, bool *out, void *ud)
{
	struct knowing *k = ud;
	k->batches++;
	for (size_t i = 0; i < n; i++)
		out[i] = keys[i].text && knows(keys[i].text, keys[i].len, ud);
}

/* leave_unread: known rows are counted as before; every other element is left, in order,
 * as its text, for the caller to read; the keys of a page are looked up in one call. */
static void test_rows_left_unread_keep_their_order_and_text(void)
{
	static const char *const known[] = {"K1", "K2", NULL};
	struct knowing k = {known, 0, 0};
	struct st_known leave = {
	        .known = knows, .userdata = &k, .leave_unread = true, .known_many = many};
	const char *body = "{\"m\":{\"data\":1},\"data\":[{\"id\":\"N1\",\"v\":[1,2]},"
	                   "{\"id\":\"K1\"},"
	                   "{\"id\":\"K\\u0032\"}," /* no plain string: left, read later */
	                   "\"text\","
	                   "{\"id\":\"K2\",\"x\":tru}," /* known: counted, whatever else */
	                   " {\"id\":\"N2\"} ]}";
	st_page_clear(&pg);
	CHECK_INT(st_parse_page(body, strlen(body), "test", "id", &leave, &pg), 0);
	CHECK_INT(pg.count, 6);
	CHECK_INT(pg.nknown, 2);
	CHECK_INT(pg.nbad, 0);
	CHECK_INT(json_array_size(pg.rows), 0);
	CHECK_INT(pg.nunread, 4);
	CHECK_INT(k.batches, 1);
	CHECK_STR(pg.first, "\"N1\"");
	static const char *const want[] = {"{\"id\":\"N1\",\"v\":[1,2]}", "{\"id\":\"K\\u0032\"}",
	                                   "\"text\"", "{\"id\":\"N2\"}"};
	for (size_t i = 0; i < pg.nunread && i < 4; i++)
		CHECK(pg.unread[i].len == strlen(want[i]) &&
		      memcmp(pg.unread[i].text, want[i], pg.unread[i].len) == 0);
	/* st_read_row() reads them as the page would have. */
	json_t *row;
	struct st_bad_row bad;
	CHECK_INT(st_read_row(pg.unread[1].text, pg.unread[1].len, &row, &bad), 0);
	CHECK_STR(json_string_value(json_object_get(row, "id")), "K2");
	json_decref(row);
	CHECK_INT(st_read_row("{\"id\":tru}", 10, &row, &bad), 1);
	CHECK(strstr(bad.why, "not valid JSON") != NULL);
	CHECK_STR(bad.text, "{\"id\":tru}");
	free(bad.text);

	/* A later "data" replaces an earlier one, as in jansson; a known first row is its key. */
	body = "{\"data\":[{\"id\":\"N9\"}],\"data\":[{\"id\":\"K2\"},{\"id\":\"N3\"}]}";
	st_page_clear(&pg);
	CHECK_INT(st_parse_page(body, strlen(body), "test", "id", &leave, &pg), 0);
	CHECK_INT(pg.count, 2);
	CHECK_INT(pg.nknown, 1);
	CHECK_INT(pg.nunread, 1);
	CHECK_STR(pg.first, "\"K2\"");
	/* Broken structure is malformed, as without leave_unread. */
	body = "{\"data\":[{\"id\":\"N1\"},{\"id\":\"K2\"}";
	st_page_clear(&pg);
	CHECK_INT(st_parse_page(body, strlen(body), "test", "id", &leave, &pg), -EBADMSG);
	body = "{\"data\":{\"id\":\"N1\"}}";
	CHECK_INT(st_parse_page(body, strlen(body), "test", "id", &leave, &pg), -EBADMSG);
	st_page_clear(&pg);
}

/* The bound on what jansson reads holds with a filter too: the rows it hands to jansson are
 * counted (a page of 600 000 unknown "{}" is refused), the rows it skips are not (600 000
 * known rows of four values each pass). */
static void test_the_value_bound_counts_only_rows_read(void)
{
	static const char *const known[] = {"K", NULL};
	struct knowing k = {known, 0, 0};
	struct st_known filter = {.known = knows, .userdata = &k};
	struct buf b = {0};
	size_t n = 600000;
	CHECK_INT(buf_puts(&b, "{\"data\":["), 0);
	for (size_t i = 0; i < n; i++)
		CHECK_INT(buf_puts(&b, i ? ",{}" : "{}"), 0);
	CHECK_INT(buf_puts(&b, "]}"), 0);
	st_page_clear(&pg);
	CHECK_INT(st_parse_page(b.data, b.len, "test", "id", &filter, &pg), -EBADMSG);
	CHECK(pg.rows == NULL && pg.count == 0);
	buf_reset(&b);
	CHECK_INT(buf_puts(&b, "{\"data\":["), 0);
	for (size_t i = 0; i < n; i++)
		CHECK_INT(buf_puts(&b, i ? ",{\"id\":\"K\",\"v\":[1,2]}"
		                         : "{\"id\":\"K\",\"v\":[1,2]}"),
		          0);
	CHECK_INT(buf_puts(&b, "]}"), 0);
	CHECK_INT(st_parse_page(b.data, b.len, "test", "id", &filter, &pg), 0);
	CHECK(pg.count == n && pg.nknown == n && json_array_size(pg.rows) == 0);
	st_page_clear(&pg);
	buf_free(&b);
}

int main(void)
{
	RUN(test_rows_come_from_the_top_level_data_array);
	RUN(test_missing_or_null_data_is_an_empty_page);
	RUN(test_other_shapes_are_malformed);
	RUN(test_embedded_nul_and_non_ascii_survive);
	RUN(test_a_bad_row_costs_only_itself);
	RUN(test_big_numbers_are_read_as_strings);
	RUN(test_utf8_escape);
	RUN(test_known_rows_are_counted_not_read);
	RUN(test_the_value_bound_counts_only_rows_read);
	RUN(test_rows_left_unread_keep_their_order_and_text);
	st_page_clear(&pg);
	return tap_done();
}
