/* Unit tests for seetickets.c: what a reply may look like. */
#include "autoconfig.h"

#include <errno.h>

#include "seetickets.h"
#include "tap.h"

static json_t *parse(const char *body, int *err)
{
	return st_parse_page(body, strlen(body), "test", err);
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
	json_t *rows = st_parse_page(body, sizeof(body) - 1, "test", &err);
	CHECK(rows != NULL);
	const char *name = json_string_value(json_object_get(json_array_get(rows, 0), "name"));
	CHECK_STR(name, "Caf\xc3\xa9 \xe2\x98\x95 \"q\" \\");
	json_decref(rows);
}

int main(void)
{
	RUN(test_rows_come_from_the_top_level_data_array);
	RUN(test_missing_or_null_data_is_an_empty_page);
	RUN(test_other_shapes_are_malformed);
	RUN(test_embedded_nul_and_non_ascii_survive);
	return tap_done();
}
