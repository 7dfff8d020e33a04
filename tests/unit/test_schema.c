/* Unit tests for schema.c: the column lists, every coercion rule both ways, table checks, times. */
#include "autoconfig.h"

#include <errno.h>
#include <inttypes.h>

#include <jansson.h>

#include "log.h"
#include "schema.h"

#define FINGERPRINT_OF_ROW "a8cc0d418f74d6c9" /* SipHash-2-4, key "stbq-fingerprint" */
#include "tap.h"
#include "util.h"

#define WHY_LEN 256

static json_t *load(const char *text)
{
	json_error_t err;
	json_t *j = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
	if (!j)
		printf("# bad JSON literal %s: %s\n", text, err.text);
	return j;
}

static size_t text_vouched; /* rows the text path took, over the whole run */

/* schema_coerce_text() on the same text must agree with the tree path: when it takes a row,
 * the tree path accepts it and dumps the same bytes with the same key; a refused row it
 * leaves to the tree path. Every case below thus checks both paths. */
static void text_agrees(const struct schema *s, const char *text, int r, const json_t *out)
{
	struct buf b = {0};
	const char *key = NULL;
	size_t klen = 0;
	int t = schema_coerce_text(s, text, strlen(text), &b, &key, &klen);
	CHECK(t == 0 || t == 1);
	if (t == 1) {
		char *dump = r == 0 ? json_dumps(out, JSON_COMPACT) : NULL;
		const char *k = r == 0 ? schema_row_key(s, out) : NULL;
		CHECK_INT(r, 0);
		CHECK(dump && b.len == strlen(dump) && memcmp(b.data, dump, b.len) == 0);
		CHECK(k && klen == strlen(k) && memcmp(key, k, klen) == 0);
		if (dump && (b.len != strlen(dump) || memcmp(b.data, dump, b.len) != 0))
			printf("# text path: %.*s\n# tree path: %s\n", (int)b.len, b.data, dump);
		free(dump);
		text_vouched++;
	} else {
		CHECK_INT(b.len, 0);
	}
	buf_free(&b);
}

/* Coerce `{<key>, <fields>}` with the schema's key set to "K1". */
static int coerce_with(const struct schema *s, const char *fields, json_t **out, char *why)
{
	char text[4096];
	snprintf(text, sizeof(text), "{\"%s\":\"K1\"%s%s}", s->key, *fields ? "," : "", fields);
	json_t *in = load(text);
	int r = in ? schema_coerce(s, in, out, why, WHY_LEN) : -EBADMSG;
	if (in)
		text_agrees(s, text, r, *out);
	json_decref(in);
	return r;
}

/* One field in, one column out: its value must equal the JSON literal `want` exactly (type too). */
static int value_is(const struct schema *s, const char *fields, const char *column,
                    const char *want)
{
	char why[WHY_LEN] = "";
	json_t *out = NULL, *w = load(want);
	int r = coerce_with(s, fields, &out, why);
	int ok = r == 0 && w && json_equal(json_object_get(out, column), w);
	if (!ok) {
		char *got = out ? json_dumps(json_object_get(out, column), JSON_ENCODE_ANY) : NULL;
		printf("# %s -> %s: r=%d why=\"%s\" got %s, want %s\n", fields, column, r, why,
		       got ? got : "(nothing)", want);
		free(got);
	}
	json_decref(out);
	json_decref(w);
	return ok;
}

/* The row is refused with a reason containing `reason`. */
static int refused(const struct schema *s, const char *fields, const char *reason)
{
	char why[WHY_LEN] = "";
	json_t *out = NULL;
	int r = coerce_with(s, fields, &out, why);
	int ok = r == -EINVAL && out == NULL && strstr(why, reason) != NULL;
	if (!ok)
		printf("# %s: r=%d why=\"%s\", want -EINVAL with \"%s\"\n", fields, r, why, reason);
	json_decref(out);
	return ok;
}

#define SALES(f, col, want)      CHECK(value_is(&schema_sales, f, col, want))
#define EVENTS(f, col, want)     CHECK(value_is(&schema_events, f, col, want))
#define SALES_REFUSED(f, reason) CHECK(refused(&schema_sales, f, reason))

static void test_column_lists_are_the_interface_ones_in_order(void)
{
	static const char *const types[] = {"S", "I", "F", "B"};
	char names[2048] = "", kinds[128] = "";

	for (size_t i = 0; i < schema_sales.ncolumns; i++) {
		const struct schema_column *c = &schema_sales.columns[i];
		strcat(names, c->name);
		strcat(names, c->parent ? "@ " : " ");
		strcat(kinds, types[c->type]);
	}
	CHECK_STR(names,
	          "affiliate currency date deliveryMethod deviceModel deviceType eventDate "
	          "eventId eventName faceValue grossCost grossFace grossSales isInternetOrder "
	          "isPending country@ countryIso@ postCode@ region1@ region2@ region3@ region4@ "
	          "offerCode partnerSite paymentMethod priceId priceName salesChannel sold "
	          "source taxTotal ticketPrice uniqueCode ");
	CHECK_STR(kinds, "SSSSSSSSSFFFFBBSSSSSSSSSSSSSISFFS");
	CHECK_INT(schema_sales.ncolumns, 33);
	CHECK_STR(schema_sales.key, "uniqueCode");
	CHECK_STR(schema_sales.feed, "sales");
	for (size_t i = 0; i < schema_sales.ncolumns; i++) {
		const struct schema_column *c = &schema_sales.columns[i];
		CHECK_STR(c->source, c->name);
		if (c->parent)
			CHECK_STR(c->parent, "location");
	}

	names[0] = kinds[0] = '\0';
	for (size_t i = 0; i < schema_events.ncolumns; i++) {
		const struct schema_column *c = &schema_events.columns[i];
		strcat(names, c->name);
		strcat(names, c->parent ? "@ " : " ");
		strcat(kinds, types[c->type]);
		CHECK_STR(c->source, c->name);
	}
	CHECK_STR(names, "doorsOpen id name promoterName starts timeslotEnabled tourId tourName "
	                 "venueName ");
	CHECK_STR(kinds, "SSSSSBSSS");
	CHECK_STR(schema_events.key, "id");
	CHECK_STR(schema_events.feed, "events");
}

static void test_table_fields_are_nullable_columns_in_order(void)
{
	json_t *got = schema_table_fields(&schema_events);
	json_t *want =
	        load("{\"fields\":["
	             "{\"name\":\"doorsOpen\",\"type\":\"STRING\",\"mode\":\"NULLABLE\"},"
	             "{\"name\":\"id\",\"type\":\"STRING\",\"mode\":\"NULLABLE\"},"
	             "{\"name\":\"name\",\"type\":\"STRING\",\"mode\":\"NULLABLE\"},"
	             "{\"name\":\"promoterName\",\"type\":\"STRING\",\"mode\":\"NULLABLE\"},"
	             "{\"name\":\"starts\",\"type\":\"STRING\",\"mode\":\"NULLABLE\"},"
	             "{\"name\":\"timeslotEnabled\",\"type\":\"BOOLEAN\",\"mode\":\"NULLABLE\"},"
	             "{\"name\":\"tourId\",\"type\":\"STRING\",\"mode\":\"NULLABLE\"},"
	             "{\"name\":\"tourName\",\"type\":\"STRING\",\"mode\":\"NULLABLE\"},"
	             "{\"name\":\"venueName\",\"type\":\"STRING\",\"mode\":\"NULLABLE\"}]}");
	CHECK(got && want && json_equal(got, want));
	json_decref(got);
	json_decref(want);

	got = schema_table_fields(&schema_sales);
	json_t *fields = json_object_get(got, "fields");
	CHECK_INT(json_object_size(got), 1);
	CHECK_INT(json_array_size(fields), schema_sales.ncolumns);
	for (size_t i = 0; i < json_array_size(fields); i++) {
		json_t *f = json_array_get(fields, i);
		CHECK_INT(json_object_size(f), 3);
		CHECK_STR(json_string_value(json_object_get(f, "name")),
		          schema_sales.columns[i].name);
		CHECK_STR(json_string_value(json_object_get(f, "mode")), "NULLABLE");
	}
	CHECK_STR(json_string_value(json_object_get(json_array_get(fields, 9), "type")), "FLOAT");
	CHECK_STR(json_string_value(json_object_get(json_array_get(fields, 13), "type")),
	          "BOOLEAN");
	CHECK_STR(json_string_value(json_object_get(json_array_get(fields, 28), "type")),
	          "INTEGER");
	CHECK_STR(json_string_value(json_object_get(json_array_get(fields, 32), "type")), "STRING");
	json_decref(got);
}

static void test_realistic_sales_row_becomes_the_exact_bigquery_row(void)
{
	json_t *in = load(
	        "{\"uniqueCode\":\"ST-0001-AB\",\"affiliate\":\"\",\"currency\":\"GBP\","
	        "\"date\":\"2026-11-27T10:15:00Z\",\"deliveryMethod\":\"PAH\","
	        "\"deviceModel\":\"iPhone\",\"deviceType\":\"Mobile\","
	        "\"eventDate\":\"2026-12-01T19:30:00\",\"eventId\":2974218,"
	        "\"eventName\":\"Caf\\u00e9 Night \\u2013 \\\"Live\\\"\",\"faceValue\":25.0,"
	        "\"grossCost\":\"27.50\",\"grossFace\":50,\"grossSales\":55.5,"
	        "\"isInternetOrder\":true,\"isPending\":\"false\","
	        "\"location\":{\"country\":\"United Kingdom\",\"countryIso\":\"GB\","
	        "\"postCode\":\"SW1A 1AA\",\"region1\":\"England\",\"region2\":\"London\","
	        "\"region3\":null,\"iso2\":\"GB\"},"
	        "\"offerCode\":null,\"partnerSite\":\"main\",\"paymentMethod\":\"Card\","
	        "\"priceId\":123456.0,\"priceName\":\"VIP ADMISSION\",\"salesChannel\":\"Web\","
	        "\"sold\":\"2\",\"source\":\"app\",\"taxTotal\":4.58,\"ticketPrice\":27.5,"
	        "\"somethingNew\":{\"a\":1}}");
	json_t *want = load(
	        "{\"affiliate\":\"\",\"currency\":\"GBP\",\"date\":\"2026-11-27T10:15:00Z\","
	        "\"deliveryMethod\":\"PAH\",\"deviceModel\":\"iPhone\",\"deviceType\":\"Mobile\","
	        "\"eventDate\":\"2026-12-01T19:30:00\",\"eventId\":\"2974218\","
	        "\"eventName\":\"Caf\\u00e9 Night \\u2013 \\\"Live\\\"\",\"faceValue\":25.0,"
	        "\"grossCost\":27.5,\"grossFace\":50.0,\"grossSales\":55.5,"
	        "\"isInternetOrder\":true,\"isPending\":false,\"country\":\"United Kingdom\","
	        "\"countryIso\":\"GB\",\"postCode\":\"SW1A 1AA\",\"region1\":\"England\","
	        "\"region2\":\"London\",\"region3\":null,\"region4\":null,\"offerCode\":null,"
	        "\"partnerSite\":\"main\",\"paymentMethod\":\"Card\",\"priceId\":\"123456\","
	        "\"priceName\":\"VIP ADMISSION\",\"salesChannel\":\"Web\",\"sold\":2,"
	        "\"source\":\"app\",\"taxTotal\":4.58,\"ticketPrice\":27.5,"
	        "\"uniqueCode\":\"ST-0001-AB\"}");
	json_t *out = NULL;
	char why[WHY_LEN] = "";

	CHECK_INT(schema_coerce(&schema_sales, in, &out, why, sizeof(why)), 0);
	CHECK_STR(why, "");
	CHECK(out && want && json_equal(out, want));
	/* Columns come out in schema order, so the NDJSON of --dry-run reads like the table. */
	size_t i = 0;
	const char *k;
	json_t *v;
	json_object_foreach(out, k, v)
	{
		if (i < schema_sales.ncolumns)
			CHECK_STR(k, schema_sales.columns[i].name);
		i++;
	}
	CHECK_INT(i, 33);
	CHECK_STR(schema_row_key(&schema_sales, out), "ST-0001-AB");
	/* The input was only borrowed. */
	CHECK_INT(in->refcount, 1);
	CHECK_STR(json_string_value(json_object_get(json_object_get(in, "location"), "postCode")),
	          "SW1A 1AA");
	json_decref(in);
	json_decref(out);
	json_decref(want);
}

static void test_realistic_events_row_becomes_the_exact_bigquery_row(void)
{
	json_t *in = load("{\"id\":2974218,\"name\":\"Winter Gala\",\"promoterName\":\"DF\","
	                  "\"starts\":\"2026-12-01T19:30:00+00:00\",\"doorsOpen\":\"18:30\","
	                  "\"timeslotEnabled\":0,\"tourId\":5501,\"tourName\":null,"
	                  "\"venueName\":\"O\\u2082 Academy\",\"status\":\"onsale\"}");
	json_t *want = load("{\"doorsOpen\":\"18:30\",\"id\":\"2974218\",\"name\":\"Winter Gala\","
	                    "\"promoterName\":\"DF\",\"starts\":\"2026-12-01T19:30:00+00:00\","
	                    "\"timeslotEnabled\":false,\"tourId\":\"5501\",\"tourName\":null,"
	                    "\"venueName\":\"O\\u2082 Academy\"}");
	json_t *out = NULL;
	char why[WHY_LEN];

	CHECK_INT(schema_coerce(&schema_events, in, &out, why, sizeof(why)), 0);
	CHECK(out && want && json_equal(out, want));
	CHECK_STR(schema_row_key(&schema_events, out), "2974218");
	json_decref(in);
	json_decref(out);
	json_decref(want);
}

static void test_string_columns_keep_text_and_print_scalars(void)
{
	SALES("\"eventName\":\"Caf\\u00e9 \\u2603 \\\"q\\\" \\\\ \\n\\t\"", "eventName",
	      "\"Caf\\u00e9 \\u2603 \\\"q\\\" \\\\ \\n\\t\"");
	SALES("\"eventName\":\"a\\u0000b\"", "eventName", "\"a\\u0000b\"");
	SALES("\"eventName\":\"  padded  \"", "eventName", "\"  padded  \"");
	SALES("\"eventName\":\"\"", "eventName", "\"\"");
	SALES("\"eventId\":2974300", "eventId", "\"2974300\"");
	SALES("\"eventId\":-12", "eventId", "\"-12\"");
	SALES("\"eventId\":9223372036854775807", "eventId", "\"9223372036854775807\"");
	SALES("\"eventId\":2974300.0", "eventId", "\"2974300\"");
	SALES("\"eventId\":1000000.0", "eventId", "\"1000000\"");
	SALES("\"eventId\":-0.0", "eventId", "\"0\"");
	SALES("\"eventId\":0.1", "eventId", "\"0.1\"");
	SALES("\"eventId\":25.75", "eventId", "\"25.75\"");
	SALES("\"eventId\":1.5e300", "eventId", "\"1.5e+300\"");
	SALES("\"eventId\":1e20", "eventId", "\"1e+20\"");
	SALES("\"eventId\":0.30000000000000004", "eventId", "\"0.30000000000000004\"");
	SALES("\"eventId\":true", "eventId", "\"true\"");
	SALES("\"eventId\":false", "eventId", "\"false\"");
	SALES_REFUSED("\"eventId\":{\"a\":1}", "eventId: expected a scalar");
	SALES_REFUSED("\"eventName\":[]", "eventName: expected a scalar");
	EVENTS("\"tourId\":5501", "tourId", "\"5501\"");
	EVENTS("\"tourId\":\"T-1\"", "tourId", "\"T-1\"");
}

static void test_integer_column_accepts_integers_in_any_clothing(void)
{
	SALES("\"sold\":3", "sold", "3");
	SALES("\"sold\":-3", "sold", "-3");
	SALES("\"sold\":2.0", "sold", "2");
	SALES("\"sold\":9007199254740992", "sold", "9007199254740992");
	SALES("\"sold\":-9007199254740992", "sold", "-9007199254740992");
	SALES("\"sold\":9007199254740992.0", "sold", "9007199254740992");
	SALES("\"sold\":\"7\"", "sold", "7");
	SALES("\"sold\":\" 7 \"", "sold", "7");
	SALES("\"sold\":\"+3\"", "sold", "3");
	SALES("\"sold\":\"-2\"", "sold", "-2");
	SALES("\"sold\":\"007\"", "sold", "7");
	SALES("\"sold\":\"2.0\"", "sold", "2");
	SALES("\"sold\":\"2.\"", "sold", "2");
	SALES("\"sold\":\"-0\"", "sold", "0");
}

static void test_integer_column_sends_big_integers_as_strings(void)
{
	SALES("\"sold\":9007199254740993", "sold", "\"9007199254740993\"");
	SALES("\"sold\":-9007199254740993", "sold", "\"-9007199254740993\"");
	SALES("\"sold\":9223372036854775807", "sold", "\"9223372036854775807\"");
	SALES("\"sold\":\"9007199254740993\"", "sold", "\"9007199254740993\"");
	SALES("\"sold\":\"+9223372036854775807\"", "sold", "\"9223372036854775807\"");
	SALES("\"sold\":\"-9223372036854775808\"", "sold", "\"-9223372036854775808\"");
}

static void test_integer_column_refuses_what_is_no_integer(void)
{
	SALES_REFUSED("\"sold\":2.5", "sold: not an integer");
	SALES_REFUSED("\"sold\":1e16", "sold: real number too large");
	SALES_REFUSED("\"sold\":-1e300", "sold: real number too large");
	SALES_REFUSED("\"sold\":\"2.5\"", "sold: not an integer");
	SALES_REFUSED("\"sold\":\"2.01\"", "sold: not an integer");
	SALES_REFUSED("\"sold\":\"9223372036854775808\"", "sold: integer out of range");
	SALES_REFUSED("\"sold\":\"-9223372036854775809\"", "sold: integer out of range");
	SALES_REFUSED("\"sold\":\"99999999999999999999999\"", "sold: integer out of range");
	SALES_REFUSED("\"sold\":\"99999999999999999999999x\"", "sold: not an integer");
	SALES_REFUSED("\"sold\":\"abc\"", "sold: not an integer");
	SALES_REFUSED("\"sold\":\"1e3\"", "sold: not an integer");
	SALES_REFUSED("\"sold\":\"0x10\"", "sold: not an integer");
	SALES_REFUSED("\"sold\":\"+\"", "sold: not an integer");
	SALES_REFUSED("\"sold\":\"1 2\"", "sold: not an integer");
	SALES_REFUSED("\"sold\":\".5\"", "sold: not an integer");
	SALES_REFUSED("\"sold\":\"3\\u0000\"", "sold: not an integer");
	SALES_REFUSED("\"sold\":true", "sold: not an integer");
	SALES_REFUSED("\"sold\":false", "sold: not an integer");
	SALES_REFUSED("\"sold\":[1]", "sold: expected a scalar");
	SALES_REFUSED("\"sold\":{}", "sold: expected a scalar");
}

static void test_float_column_accepts_numbers_and_numeric_text(void)
{
	SALES("\"faceValue\":25", "faceValue", "25.0");
	SALES("\"faceValue\":-3", "faceValue", "-3.0");
	SALES("\"faceValue\":25.5", "faceValue", "25.5");
	SALES("\"faceValue\":\"25.50\"", "faceValue", "25.5");
	SALES("\"faceValue\":\" 1e3 \"", "faceValue", "1000.0");
	SALES("\"faceValue\":\"-0.25\"", "faceValue", "-0.25");
	SALES("\"faceValue\":\"+7\"", "faceValue", "7.0");
	SALES("\"faceValue\":1e308", "faceValue", "1e308");
}

static void test_float_column_refuses_non_numbers_and_non_finite(void)
{
	SALES_REFUSED("\"faceValue\":\"SW1A 1AA\"", "faceValue: not a number");
	SALES_REFUSED("\"faceValue\":\"12abc\"", "faceValue: not a number");
	SALES_REFUSED("\"faceValue\":\"1,5\"", "faceValue: not a number");
	SALES_REFUSED("\"faceValue\":\"1\\u00002\"", "faceValue: not a number");
	SALES_REFUSED("\"faceValue\":\"nan\"", "faceValue: not a finite number");
	SALES_REFUSED("\"faceValue\":\"NaN\"", "faceValue: not a finite number");
	SALES_REFUSED("\"faceValue\":\"inf\"", "faceValue: not a finite number");
	SALES_REFUSED("\"faceValue\":\"-Infinity\"", "faceValue: not a finite number");
	SALES_REFUSED("\"faceValue\":\"1e999\"", "faceValue: not a finite number");
	SALES_REFUSED("\"faceValue\":true", "faceValue: not a number");
	SALES_REFUSED("\"faceValue\":false", "faceValue: not a number");
	SALES_REFUSED("\"faceValue\":{}", "faceValue: expected a scalar");
	SALES_REFUSED("\"faceValue\":[25]", "faceValue: expected a scalar");
}

static void test_boolean_column_accepts_booleans_words_and_one_zero(void)
{
	SALES("\"isPending\":true", "isPending", "true");
	SALES("\"isPending\":false", "isPending", "false");
	SALES("\"isPending\":\"true\"", "isPending", "true");
	SALES("\"isPending\":\"TRUE\"", "isPending", "true");
	SALES("\"isPending\":\"False\"", "isPending", "false");
	SALES("\"isPending\":\" true \"", "isPending", "true");
	SALES("\"isPending\":1", "isPending", "true");
	SALES("\"isPending\":0", "isPending", "false");
	EVENTS("\"timeslotEnabled\":\"fALSE\"", "timeslotEnabled", "false");
}

static void test_boolean_column_refuses_everything_else(void)
{
	SALES_REFUSED("\"isPending\":2", "isPending: not a boolean");
	SALES_REFUSED("\"isPending\":-1", "isPending: not a boolean");
	SALES_REFUSED("\"isPending\":1.0", "isPending: not a boolean");
	SALES_REFUSED("\"isPending\":\"yes\"", "isPending: not a boolean");
	SALES_REFUSED("\"isPending\":\"1\"", "isPending: not a boolean");
	SALES_REFUSED("\"isPending\":\"truex\"", "isPending: not a boolean");
	SALES_REFUSED("\"isPending\":\"t\"", "isPending: not a boolean");
	SALES_REFUSED("\"isPending\":[true]", "isPending: expected a scalar");
	SALES_REFUSED("\"isPending\":{}", "isPending: expected a scalar");
}

static void test_null_missing_and_empty_text_become_null(void)
{
	static const char *const cols[] = {"eventName", "sold", "faceValue", "isPending"};
	char f[128];

	for (size_t i = 0; i < 4; i++) {
		snprintf(f, sizeof(f), "\"%s\":null", cols[i]);
		SALES(f, cols[i], "null");
		SALES("\"other\":1", cols[i], "null");
	}
	/* Text columns keep "" (it is a value); number and boolean columns have no empty value. */
	SALES("\"eventName\":\"\"", "eventName", "\"\"");
	SALES("\"sold\":\"\"", "sold", "null");
	SALES("\"sold\":\"   \"", "sold", "null");
	SALES("\"faceValue\":\"\"", "faceValue", "null");
	SALES("\"faceValue\":\" \\t \"", "faceValue", "null");
	SALES("\"isPending\":\"\"", "isPending", "null");
	SALES("\"isPending\":\"  \"", "isPending", "null");

	/* Every column is present even in a row that has only its key. */
	json_t *out = NULL;
	char why[WHY_LEN];
	CHECK_INT(coerce_with(&schema_sales, "", &out, why), 0);
	CHECK_INT(json_object_size(out), 33);
	for (size_t i = 0; i < schema_sales.ncolumns; i++) {
		json_t *v = json_object_get(out, schema_sales.columns[i].name);
		if (strcmp(schema_sales.columns[i].name, "uniqueCode") == 0)
			CHECK_STR(json_string_value(v), "K1");
		else
			CHECK(v && json_is_null(v));
	}
	json_decref(out);
}

static void test_location_is_flattened_or_null(void)
{
	static const char *const loc[] = {"country", "countryIso", "postCode", "region1",
	                                  "region2", "region3",    "region4"};

	for (size_t i = 0; i < 7; i++) {
		SALES("\"other\":1", loc[i], "null");
		SALES("\"location\":null", loc[i], "null");
		SALES("\"location\":{}", loc[i], "null");
	}
	SALES("\"location\":{\"country\":\"UK\",\"postCode\":\"EH1 1AA\",\"region4\":7}", "country",
	      "\"UK\"");
	SALES("\"location\":{\"country\":\"UK\",\"postCode\":\"EH1 1AA\",\"region4\":7}",
	      "postCode", "\"EH1 1AA\"");
	SALES("\"location\":{\"country\":\"UK\",\"postCode\":\"EH1 1AA\",\"region4\":7}", "region4",
	      "\"7\"");
	SALES("\"location\":{\"country\":\"UK\"}", "region2", "null");
	/* A top-level field with a nested column's name is not that column. */
	SALES("\"postCode\":\"EH1 1AA\"", "postCode", "null");
	SALES_REFUSED("\"location\":\"London\"", "location: expected an object");
	SALES_REFUSED("\"location\":[]", "location: expected an object");
	SALES_REFUSED("\"location\":5", "location: expected an object");
	SALES_REFUSED("\"location\":{\"region1\":{}}", "region1: expected a scalar");
}

static int debug_records;
static char debug_text[4096];

static void capture(int prio, const char *message, const struct log_field *fields, size_t n,
                    void *ud)
{
	(void)fields;
	(void)n;
	(void)ud;
	if (prio != LOG_DEBUG)
		return;
	debug_records++;
	size_t l = strlen(debug_text);
	snprintf(debug_text + l, sizeof(debug_text) - l, "%s\n", message);
}

static void test_unknown_fields_are_ignored_and_noted_once_by_name(void)
{
	json_t *out = NULL;
	char why[WHY_LEN];

	log_set_sink(capture, NULL);
	log_set_level(LOG_DEBUG);
	debug_records = 0;
	debug_text[0] = '\0';

	CHECK_INT(coerce_with(&schema_sales,
	                      "\"zzMystery\":\"SECRET-VALUE-1\","
	                      "\"location\":{\"iso2\":\"SECRET-VALUE-2\",\"country\":\"UK\"}",
	                      &out, why),
	          0);
	CHECK_INT(json_object_size(out), 33);
	CHECK(json_object_get(out, "zzMystery") == NULL);
	CHECK(json_object_get(out, "iso2") == NULL);
	CHECK(json_object_get(out, "location") == NULL);
	CHECK_STR(json_string_value(json_object_get(out, "country")), "UK");
	json_decref(out);
	CHECK_INT(debug_records, 2);
	CHECK(strstr(debug_text, "zzMystery") != NULL);
	CHECK(strstr(debug_text, "location.iso2") != NULL);
	CHECK(strstr(debug_text, "SECRET") == NULL);

	/* The same names again, in either feed: not noted again. A new one is. */
	CHECK_INT(coerce_with(&schema_sales,
	                      "\"zzMystery\":2,\"location\":{\"iso2\":\"x\"},\"zzOther\\n\":0",
	                      &out, why),
	          0);
	json_decref(out);
	CHECK_INT(coerce_with(&schema_events, "\"zzMystery\":3", &out, why), 0);
	json_decref(out);
	CHECK_INT(debug_records, 3);
	CHECK(strstr(debug_text, "zzOther?") != NULL); /* a newline cannot split the record */

	/* Not at info level: nothing is formatted, and nothing is marked as noted. */
	log_set_level(LOG_INFO);
	CHECK_INT(coerce_with(&schema_events, "\"zzQuiet\":3", &out, why), 0);
	json_decref(out);
	log_set_level(LOG_DEBUG);
	CHECK_INT(coerce_with(&schema_events, "\"zzQuiet\":3", &out, why), 0);
	json_decref(out);
	CHECK_INT(debug_records, 4);
	CHECK(strstr(debug_text, "zzQuiet") != NULL);

	/* A flood of names costs bounded memory and ends in one last note. */
	for (int i = 0; i < 200; i++) {
		char f[64];
		snprintf(f, sizeof(f), "\"zzFlood%d\":1", i);
		CHECK_INT(coerce_with(&schema_events, f, &out, why), 0);
		json_decref(out);
	}
	CHECK(debug_records < 70);
	CHECK(strstr(debug_text, "no longer noting") != NULL);

	log_set_level(LOG_INFO);
	log_set_sink(NULL, NULL);
}

static int key_refused(const struct schema *s, const char *row, const char *reason)
{
	char why[WHY_LEN] = "";
	json_t *out = NULL, *in = load(row);
	int r = in ? schema_coerce(s, in, &out, why, sizeof(why)) : -EBADMSG;
	int ok = r == -EINVAL && !out && strcmp(why, reason) == 0;
	if (!ok)
		printf("# %s: r=%d why=\"%s\", want \"%s\"\n", row, r, why, reason);
	json_decref(in);
	json_decref(out);
	return ok;
}

static void test_key_must_be_present_short_and_printable(void)
{
	CHECK(key_refused(&schema_sales, "{\"sold\":1}", "missing key uniqueCode"));
	CHECK(key_refused(&schema_sales, "{\"uniqueCode\":null}", "missing key uniqueCode"));
	CHECK(key_refused(&schema_sales, "{\"uniqueCode\":\"\"}", "empty key uniqueCode"));
	CHECK(key_refused(&schema_events, "{\"name\":\"x\"}", "missing key id"));
	CHECK(key_refused(&schema_events, "{\"id\":{}}", "id: expected a scalar"));
	CHECK(key_refused(&schema_events, "{\"id\":\"a\\tb\"}",
	                  "key id contains a control character"));
	CHECK(key_refused(&schema_events, "{\"id\":\"ab\\n\"}",
	                  "key id contains a control character"));
	CHECK(key_refused(&schema_events, "{\"id\":\"a\\u007f\"}",
	                  "key id contains a control character"));
	CHECK(key_refused(&schema_events, "{\"id\":\"a\\u0000b\"}",
	                  "key id contains a control character"));
	/* The key is judged before anything else that is wrong with the row. */
	CHECK(key_refused(&schema_sales, "{\"sold\":\"x\",\"location\":7}",
	                  "missing key uniqueCode"));

	char row[2100], id[1100];
	memset(id, 'k', 1024);
	id[1024] = '\0';
	snprintf(row, sizeof(row), "{\"id\":\"%s\"}", id);
	json_t *in = load(row), *out = NULL;
	char why[WHY_LEN];
	CHECK_INT(schema_coerce(&schema_events, in, &out, why, sizeof(why)), 0);
	CHECK_INT(strlen(schema_row_key(&schema_events, out)), 1024);
	json_decref(in);
	json_decref(out);
	snprintf(row, sizeof(row), "{\"id\":\"k%s\"}", id);
	CHECK(key_refused(&schema_events, row, "key id too long (over 1024 bytes)"));

	EVENTS("\"name\":\"n\"", "id", "\"K1\"");
	CHECK(value_is(&schema_events, "\"x\":1", "id", "\"K1\""));
	in = load("{\"id\":2974218.0}");
	CHECK_INT(schema_coerce(&schema_events, in, &out, why, sizeof(why)), 0);
	CHECK_STR(schema_row_key(&schema_events, out), "2974218");
	json_decref(in);
	json_decref(out);
	in = load("{\"id\":\"  Caf\\u00e9 \"}");
	CHECK_INT(schema_coerce(&schema_events, in, &out, why, sizeof(why)), 0);
	CHECK_STR(schema_row_key(&schema_events, out), "  Caf\xc3\xa9 ");
	json_decref(in);
	json_decref(out);

	/* schema_row_key on rows it did not make. */
	in = load("{\"id\":5}");
	CHECK(schema_row_key(&schema_events, in) == NULL);
	CHECK(schema_row_key(&schema_sales, in) == NULL);
	json_decref(in);
}

static void test_rows_that_are_not_objects_are_refused(void)
{
	static const char *const rows[] = {"[]", "[{\"id\":\"1\"}]", "\"id\"", "7", "null", "true"};
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(rows); i++)
		CHECK(key_refused(&schema_events, rows[i], "events row is not a JSON object"));
	json_t *out = (json_t *)1;
	char why[WHY_LEN];
	CHECK_INT(schema_coerce(&schema_sales, NULL, &out, why, sizeof(why)), -EINVAL);
	CHECK(out == NULL);
	CHECK_STR(why, "sales row is not a JSON object");
	/* why may be left out. */
	CHECK_INT(schema_coerce(&schema_sales, NULL, &out, NULL, 0), -EINVAL);
}

/* Every column, fed a bad value carrying personal-looking text: refused, the reason names the
 * column, and the text is nowhere in it. */
static void check_reasons_hide_values(const struct schema *s)
{
	for (size_t i = 0; i < s->ncolumns; i++) {
		const struct schema_column *c = &s->columns[i];
		const char *bad =
		        c->type == SCHEMA_STRING ? "{\"x\":\"SW1A 1AA\"}" : "\"SW1A 1AA\"";
		char fields[256], why[WHY_LEN] = "";
		json_t *out = NULL;

		if (strcmp(c->name, s->key) == 0)
			snprintf(fields, sizeof(fields), "{\"%s\":%s}", c->name, bad);
		else if (c->parent)
			snprintf(fields, sizeof(fields), "{\"%s\":\"K\",\"%s\":{\"%s\":%s}}",
			         s->key, c->parent, c->source, bad);
		else
			snprintf(fields, sizeof(fields), "{\"%s\":\"K\",\"%s\":%s}", s->key,
			         c->source, bad);
		json_t *in = load(fields);
		CHECK_INT(schema_coerce(s, in, &out, why, sizeof(why)), -EINVAL);
		CHECK(strstr(why, c->name) != NULL);
		CHECK(strstr(why, "SW1A") == NULL);
		CHECK(strstr(why, "1AA") == NULL);
		json_decref(in);
		json_decref(out);
	}
}

static void test_refusal_reasons_name_the_column_never_the_value(void)
{
	check_reasons_hide_values(&schema_sales);
	check_reasons_hide_values(&schema_events);

	char why[WHY_LEN] = "";
	json_t *out = NULL;
	CHECK_INT(coerce_with(&schema_sales, "\"location\":{\"postCode\":{\"v\":\"SW1A 1AA\"}}",
	                      &out, why),
	          -EINVAL);
	CHECK_STR(why, "postCode: expected a scalar");
	CHECK_INT(coerce_with(&schema_sales, "\"faceValue\":\"SW1A 1AA\"", &out, why), -EINVAL);
	CHECK_STR(why, "faceValue: not a number");
	CHECK_INT(coerce_with(&schema_sales, "\"location\":\"SW1A 1AA\"", &out, why), -EINVAL);
	CHECK_STR(why, "location: expected an object");
	/* A small buffer is cut, not overrun. */
	char tiny[8];
	json_t *in = load("{\"uniqueCode\":\"K\",\"faceValue\":\"x\"}");
	CHECK_INT(schema_coerce(&schema_sales, in, &out, tiny, sizeof(tiny)), -EINVAL);
	CHECK_STR(tiny, "faceVal");
	json_decref(in);
}

/* A tables.get "schema" built from our own fields, with edits. */
static json_t *table_schema(const struct schema *s)
{
	return schema_table_fields(s);
}

static json_t *field_of(json_t *ts, const char *name)
{
	json_t *fields = json_object_get(ts, "fields");
	for (size_t i = 0; i < json_array_size(fields); i++) {
		json_t *f = json_array_get(fields, i);
		if (strcmp(json_string_value(json_object_get(f, "name")), name) == 0)
			return f;
	}
	return NULL;
}

static int check_table(const struct schema *s, json_t *ts, char *why)
{
	int r = schema_check_table(s, ts, why, WHY_LEN);
	json_decref(ts);
	return r;
}

static void test_table_check_accepts_compatible_schemas(void)
{
	char why[WHY_LEN] = "";
	json_t *ts;

	CHECK_INT(check_table(&schema_sales, table_schema(&schema_sales), why), 0);
	CHECK_INT(check_table(&schema_events, table_schema(&schema_events), why), 0);

	/* Standard SQL type names, the original TIMESTAMP columns, other case, extra columns. */
	ts = table_schema(&schema_sales);
	json_object_set_new(field_of(ts, "sold"), "type", json_string("INT64"));
	json_object_set_new(field_of(ts, "faceValue"), "type", json_string("FLOAT64"));
	json_object_set_new(field_of(ts, "isPending"), "type", json_string("BOOL"));
	json_object_set_new(field_of(ts, "date"), "type", json_string("TIMESTAMP"));
	json_object_set_new(field_of(ts, "eventDate"), "type", json_string("TIMESTAMP"));
	json_object_set_new(field_of(ts, "uniqueCode"), "name", json_string("UNIQUECODE"));
	json_object_set_new(field_of(ts, "priceId"), "mode", json_string("REQUIRED"));
	json_object_del(field_of(ts, "affiliate"), "mode");
	json_array_append_new(json_object_get(ts, "fields"),
	                      json_pack("{s:s,s:s}", "name", "loadedAt", "type", "TIMESTAMP"));
	CHECK_INT(check_table(&schema_sales, ts, why), 0);

	ts = table_schema(&schema_events);
	json_object_set_new(field_of(ts, "starts"), "type", json_string("TIMESTAMP"));
	CHECK_INT(check_table(&schema_events, ts, why), 0);
	CHECK_STR(why, "");
}

static void test_table_check_names_the_first_missing_or_mismatched_column(void)
{
	char why[WHY_LEN];
	json_t *ts;

	ts = table_schema(&schema_sales);
	json_array_remove(json_object_get(ts, "fields"), 32); /* uniqueCode */
	json_array_remove(json_object_get(ts, "fields"), 17); /* postCode */
	CHECK_INT(check_table(&schema_sales, ts, why), -EINVAL);
	CHECK_STR(why, "table sales lacks column postCode");

	ts = table_schema(&schema_sales);
	json_object_set_new(field_of(ts, "sold"), "type", json_string("STRING"));
	json_object_set_new(field_of(ts, "ticketPrice"), "type", json_string("INTEGER"));
	CHECK_INT(check_table(&schema_sales, ts, why), -EINVAL);
	CHECK_STR(why, "table sales column sold has STRING, expected INTEGER");

	ts = table_schema(&schema_sales);
	json_object_set_new(field_of(ts, "affiliate"), "type", json_string("TIMESTAMP"));
	CHECK_INT(check_table(&schema_sales, ts, why), -EINVAL);
	CHECK_STR(why, "table sales column affiliate has TIMESTAMP, expected STRING");

	ts = table_schema(&schema_events);
	json_object_set_new(field_of(ts, "timeslotEnabled"), "type", json_string("INT64"));
	CHECK_INT(check_table(&schema_events, ts, why), -EINVAL);
	CHECK_STR(why, "table events column timeslotEnabled has INT64, expected BOOLEAN");

	ts = table_schema(&schema_events);
	json_object_set_new(field_of(ts, "name"), "type", json_string("A\nB"));
	CHECK_INT(check_table(&schema_events, ts, why), -EINVAL);
	CHECK_STR(why, "table events column name has A?B, expected STRING");

	ts = table_schema(&schema_events);
	json_object_del(field_of(ts, "name"), "type");
	CHECK_INT(check_table(&schema_events, ts, why), -EINVAL);
	CHECK_STR(why, "table events column name has no type, expected STRING");

	ts = table_schema(&schema_events);
	json_object_set_new(field_of(ts, "tourId"), "mode", json_string("REPEATED"));
	CHECK_INT(check_table(&schema_events, ts, why), -EINVAL);
	CHECK_STR(why, "table events column tourId is REPEATED, expected NULLABLE");

	CHECK_INT(check_table(&schema_events, load("{}"), why), -EINVAL);
	CHECK_STR(why, "table events: schema has no field list");
	CHECK_INT(check_table(&schema_events, load("{\"fields\":{}}"), why), -EINVAL);
	CHECK_INT(check_table(&schema_events, load("[]"), why), -EINVAL);
	CHECK_INT(check_table(&schema_events, load("{\"fields\":[1,null,{\"name\":3}]}"), why),
	          -EINVAL);
	CHECK_STR(why, "table events lacks column doorsOpen");
	CHECK_INT(schema_check_table(&schema_events, NULL, why, sizeof(why)), -EINVAL);
}

static int time_is(const char *s, int64_t want)
{
	int64_t got = -12345;
	int r = schema_parse_time(s, &got);
	if (r != 0 || got != want)
		printf("# \"%s\": r=%d got %" PRId64 ", want %" PRId64 "\n", s, r, got, want);
	return r == 0 && got == want;
}

static int time_refused(const char *s)
{
	int64_t got = -12345;
	int r = schema_parse_time(s, &got);
	if (r != -EINVAL || got != -12345)
		printf("# \"%s\": r=%d got %" PRId64 ", want -EINVAL\n", s ? s : "(null)", r, got);
	return r == -EINVAL && got == -12345;
}

static void test_times_parse_in_every_iso_form_seen(void)
{
	const int64_t t = 1796153400; /* 2026-12-01T19:30:00Z */

	CHECK(time_is("2026-12-01T19:30:00Z", t));
	CHECK(time_is("2026-12-01t19:30:00z", t));
	CHECK(time_is("2026-12-01T19:30:00", t));
	CHECK(time_is("2026-12-01 19:30:00", t));
	CHECK(time_is("2026-12-01T19:30Z", t));
	CHECK(time_is("2026-12-01T19:30", t));
	CHECK(time_is("2026-12-01T19:30:00.5Z", t));
	CHECK(time_is("2026-12-01T19:30:00.999999999", t));
	CHECK(time_is("2026-12-01T19:30:00,25Z", t));
	CHECK(time_is("2026-12-01T20:30:00+01:00", t));
	CHECK(time_is("2026-12-01T20:30:00.123+01:00", t));
	CHECK(time_is("2026-12-01T20:30:00+0100", t));
	CHECK(time_is("2026-12-01T20:30:00+01", t));
	CHECK(time_is("2026-12-01T14:00:00-05:30", t));
	CHECK(time_is("2026-12-02T00:00:00+04:30", t));
	CHECK(time_is("2026-12-01T19:30:00+00:00", t));
	CHECK(time_is("2026-12-01T19:30:00-00:00", t));
	CHECK(time_is("2026-12-01", 1796083200));
	CHECK(time_is("1970-01-01T00:00:00Z", 0));
	CHECK(time_is("1970-01-01", 0));
	CHECK(time_is("1969-12-31T23:59:59Z", -1));
	CHECK(time_is("1970-01-01T00:59:59+01:00", -1));
	CHECK(time_is("2024-02-29", 1709164800));
	CHECK(time_is("2000-03-01T12:34:56Z", 951914096));
	CHECK(time_is("1900-01-01T00:00:00Z", -2208988800LL));
	CHECK(time_is("9999-12-31T23:59:59Z", 253402300799LL));
	CHECK(time_is("2016-12-31T23:59:60Z", 1483228800)); /* leap second */
}

static void test_times_refuse_garbage(void)
{
	static const char *const bad[] = {
	        "TBC",
	        "",
	        " ",
	        "2026",
	        "2026-12",
	        "2026-12-1",
	        "2026-1-01",
	        "26-12-01",
	        "2026/12/01",
	        "2026-13-01T00:00:00Z",
	        "2026-00-10",
	        "2026-02-30",
	        "2026-02-29",
	        "2100-02-29",
	        "2026-04-31",
	        "2026-12-00",
	        "2026-12-32",
	        " 2026-12-01",
	        "2026-12-01 ",
	        "2026-12-01T",
	        "2026-12-01T19",
	        "2026-12-01T19:3",
	        "2026-12-01T19:30:0",
	        "2026-12-01T19:30:00.",
	        "2026-12-01T19:30:00.Z",
	        "2026-12-01T24:00:00Z",
	        "2026-12-01T19:60:00Z",
	        "2026-12-01T19:30:61Z",
	        "2026-12-01T19:30:00Zjunk",
	        "2026-12-01T19:30:00 Z",
	        "2026-12-01T19:30:00+",
	        "2026-12-01T19:30:00+1",
	        "2026-12-01T19:30:00+01:",
	        "2026-12-01T19:30:00+01:0",
	        "2026-12-01T19:30:00+24:00",
	        "2026-12-01T19:30:00+01:60",
	        "2026-12-01T19:30:00+01:00x",
	        "2026-12-01T19:30:00+010",
	        "2026-12-01junk",
	        "2026-12-01Z",
	        "2026-12-01T19:30:00GMT",
	        "2026-12-01T-1:30:00",
	        "\xef\xbc\x92\xef\xbc\x90\xef\xbc\x92\xef\xbc\x96-12-01",
	        "2026-12-01\n",
	};
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(bad); i++)
		CHECK(time_refused(bad[i]));
	CHECK(time_refused(NULL));
}

/* The text path: what it takes and what it leaves to jansson. */
static int text_path(const struct schema *s, const char *text, char *got, size_t size)
{
	struct buf b = {0};
	const char *key;
	size_t klen;
	int r = schema_coerce_text(s, text, strlen(text), &b, &key, &klen);
	snprintf(got, size, "%.*s", (int)b.len, b.data ? b.data : "");
	buf_free(&b);
	return r;
}

static void test_text_path_takes_plain_rows_and_leaves_the_rest_to_jansson(void)
{
	char got[4096];
	const char *sale =
	        "{\"uniqueCode\":\"ST-0001-AB\",\"affiliate\":\"\",\"currency\":\"GBP\","
	        "\"eventId\":2974218,\"eventName\":\"Caf\xc3\xa9 Night\",\"faceValue\":25.0,"
	        "\"grossCost\":\" 27.50 \",\"grossFace\":50,\"taxTotal\":4.58,"
	        "\"isInternetOrder\":true,\"isPending\":\"FALSE\",\"sold\":\"2\","
	        "\"location\":{\"country\":\"UK\",\"postCode\":\"SW1A 1AA\",\"iso2\":\"GB\"},"
	        "\"priceId\":123456.0,\"extra\":[{\"a\":[1,2,null]}],\"source\":\"app\"}";
	CHECK_INT(text_path(&schema_sales, sale, got, sizeof(got)), 1);
	CHECK_STR(got,
	          "{\"affiliate\":\"\",\"currency\":\"GBP\",\"date\":null,\"deliveryMethod\":null,"
	          "\"deviceModel\":null,\"deviceType\":null,\"eventDate\":null,"
	          "\"eventId\":\"2974218\",\"eventName\":\"Caf\xc3\xa9 Night\",\"faceValue\":25.0,"
	          "\"grossCost\":27.5,\"grossFace\":50.0,\"grossSales\":null,"
	          "\"isInternetOrder\":true,\"isPending\":false,\"country\":\"UK\","
	          "\"countryIso\":null,\"postCode\":\"SW1A 1AA\",\"region1\":null,"
	          "\"region2\":null,\"region3\":null,\"region4\":null,\"offerCode\":null,"
	          "\"partnerSite\":null,\"paymentMethod\":null,\"priceId\":\"123456\","
	          "\"priceName\":null,\"salesChannel\":null,\"sold\":2,\"source\":\"app\","
	          "\"taxTotal\":4.5800000000000001,\"ticketPrice\":null,"
	          "\"uniqueCode\":\"ST-0001-AB\"}");
	/* Later members of a name win, as in jansson. */
	CHECK_INT(text_path(&schema_events, "{\"id\":\"1\",\"name\":\"a\",\"name\":\"b\"}", got,
	                    sizeof(got)),
	          1);
	CHECK(strstr(got, "\"name\":\"b\"") != NULL);
	/* Escapes are decoded, and written again as jansson writes them. */
	CHECK_INT(text_path(&schema_events,
	                    "{\"id\":\"1\",\"name\":\"\\u00e9\\/\\u0001\\t\\\"\\uD83D\\uDE00\"}",
	                    got, sizeof(got)),
	          1);
	CHECK(strstr(got, "\"name\":\"\xc3\xa9/\\u0001\\t\\\"\xf0\x9f\x98\x80\"") != NULL);
	/* Left to jansson: escapes in a name or the key, \u0000 and lone surrogates,
	 * exponents, long integers, refusals, keys that are no plain string, malformed
	 * text, debug level. */
	static const char *const leave[] = {
	        "{\"id\":\"1\",\"name\":\"a\\u0000b\"}",
	        "{\"id\":\"1\",\"na\\u006de\":\"x\"}",
	        "{\"id\":\"1\",\"other\":\"\\ud800\"}",
	        "{\"id\":\"1\\n\"}",
	        "{\"id\":\"1\",\"other\":1e5}",
	        "{\"id\":\"1\",\"tourId\":1234567890123456789}",
	        "{\"id\":\"1\",\"timeslotEnabled\":\"yes\"}",
	        "{\"id\":\"1\",\"name\":{}}",
	        "{\"id\":1}",
	        "{\"id\":\"\"}",
	        "{\"id\":\"a\x7f\"}",
	        "{\"name\":\"x\"}",
	        "{\"id\":\"1\",}",
	        "{\"id\":\"1\",\"name\":\"\xff\"}",
	        "[{\"id\":\"1\"}]",
	};
	for (size_t i = 0; i < sizeof(leave) / sizeof(leave[0]); i++) {
		int r = text_path(&schema_events, leave[i], got, sizeof(got));
		if (r != 0)
			printf("# took %s\n", leave[i]);
		CHECK_INT(r, 0);
		CHECK_STR(got, "");
	}
	CHECK_INT(text_path(&schema_sales, "{\"uniqueCode\":\"1\",\"location\":[]}", got,
	                    sizeof(got)),
	          0);
	log_set_level(LOG_DEBUG);
	CHECK_INT(text_path(&schema_events, "{\"id\":\"1\"}", got, sizeof(got)), 0);
	log_set_level(LOG_INFO);
	CHECK_INT(text_path(&schema_events, "{\"id\":\"1\"}", got, sizeof(got)), 1);
	/* Every SALES()/EVENTS() case above also ran the text path; most of them it took. */
	CHECK(text_vouched > 50);
	printf("# the text path took %zu of the cases above\n", text_vouched);
}

/* The fingerprint is stored in BigQuery and compared by every later process
 * and version: it must never change. These values pin it. */
static void test_fingerprint_is_stable_and_parses_back(void)
{
	const char *row = "{\"id\":\"1\",\"name\":\"x\"}";
	uint64_t fp = schema_fingerprint(row, strlen(row));
	char hex[17];
	snprintf(hex, sizeof(hex), "%016" PRIx64, fp);
	CHECK_STR(hex, FINGERPRINT_OF_ROW);
	CHECK(schema_fingerprint("", 0) != 0);
	CHECK(schema_fingerprint(row, strlen(row) - 1) != fp);
	CHECK(schema_fingerprint_parse(hex, 16) == fp);
	CHECK(schema_fingerprint_parse(hex, 15) == 0);
	CHECK(schema_fingerprint_parse("0123456789ABCDEF", 16) == 0); /* we write lowercase */
	CHECK(schema_fingerprint_parse("0123456789abcdeg", 16) == 0);
	CHECK(schema_fingerprint_parse(NULL, 0) == 0);
	CHECK(schema_fingerprint_parse("00000000000000ff", 16) == 0xff);
}

/* The tracked tables: _fingerprint (and _observed_at for changes) after the
 * columns, checked like them; a table without them is told what it lacks. */
static void test_tracked_tables_have_their_extra_columns(void)
{
	json_t *f = schema_table_fields(&schema_events_changes);
	json_t *fields = json_object_get(f, "fields");
	size_t n = json_array_size(fields);
	char why[200];
	CHECK_INT(n, schema_events.ncolumns + 2);
	CHECK_STR(json_string_value(json_object_get(json_array_get(fields, n - 2), "name")),
	          "_fingerprint");
	CHECK_STR(json_string_value(json_object_get(json_array_get(fields, n - 1), "type")),
	          "TIMESTAMP");
	CHECK_INT(schema_check_table(&schema_events_changes, f, why, sizeof(why)), 0);
	CHECK_INT(schema_check_table(&schema_events_tracked, f, why, sizeof(why)), 0);
	json_t *plain = schema_table_fields(&schema_events);
	CHECK_INT(schema_check_table(&schema_events, plain, why, sizeof(why)), 0);
	CHECK_INT(schema_check_table(&schema_events_tracked, plain, why, sizeof(why)), -EINVAL);
	CHECK(strstr(why, "lacks column _fingerprint") != NULL);
	/* A _fingerprint of the wrong type is refused, whatever its case. */
	json_object_set_new(json_array_get(fields, n - 2), "type", json_string("INTEGER"));
	json_object_set_new(json_array_get(fields, n - 2), "name", json_string("_FINGERPRINT"));
	CHECK_INT(schema_check_table(&schema_events_tracked, f, why, sizeof(why)), -EINVAL);
	CHECK(strstr(why, "not a NULLABLE STRING") != NULL);
	CHECK_STR(schema_events_changes.feed, "events_changes");
	CHECK_STR(schema_sales_changes.key, "uniqueCode");
	json_decref(f);
	json_decref(plain);
}

int main(void)
{
	RUN(test_column_lists_are_the_interface_ones_in_order);
	RUN(test_table_fields_are_nullable_columns_in_order);
	RUN(test_fingerprint_is_stable_and_parses_back);
	RUN(test_tracked_tables_have_their_extra_columns);
	RUN(test_realistic_sales_row_becomes_the_exact_bigquery_row);
	RUN(test_realistic_events_row_becomes_the_exact_bigquery_row);
	RUN(test_string_columns_keep_text_and_print_scalars);
	RUN(test_integer_column_accepts_integers_in_any_clothing);
	RUN(test_integer_column_sends_big_integers_as_strings);
	RUN(test_integer_column_refuses_what_is_no_integer);
	RUN(test_float_column_accepts_numbers_and_numeric_text);
	RUN(test_float_column_refuses_non_numbers_and_non_finite);
	RUN(test_boolean_column_accepts_booleans_words_and_one_zero);
	RUN(test_boolean_column_refuses_everything_else);
	RUN(test_null_missing_and_empty_text_become_null);
	RUN(test_location_is_flattened_or_null);
	RUN(test_unknown_fields_are_ignored_and_noted_once_by_name);
	RUN(test_key_must_be_present_short_and_printable);
	RUN(test_rows_that_are_not_objects_are_refused);
	RUN(test_refusal_reasons_name_the_column_never_the_value);
	RUN(test_table_check_accepts_compatible_schemas);
	RUN(test_table_check_names_the_first_missing_or_mismatched_column);
	RUN(test_times_parse_in_every_iso_form_seen);
	RUN(test_times_refuse_garbage);
	RUN(test_text_path_takes_plain_rows_and_leaves_the_rest_to_jansson);
	return tap_done();
}
