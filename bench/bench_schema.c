/* bench_schema - throughput of schema_coerce() on realistic sales rows, and of writing the
 * coerced row as the spool line.
 *
 * Usage: bench_schema [ROWS [RUNS]]   (default: 1000 rows, 7 runs)
 *
 * ROWS varied API rows are built once in memory as jansson objects, with the quirks the See
 * Tickets API has (and tests/fakes/seetickets-fake serves): numbers as strings, ids as numbers,
 * booleans as "true", a nested location that is full, without iso2, null or missing, about 1 row
 * in 15 with a null field and 1 in 20 with a field that is no column. Each pass goes over every
 * row enough times to last about 0.2 s; a pass is run RUNS times and the fastest run reported,
 * as the others only measured something else on the machine as well.
 *
 * Passes:
 *   parse         json_loadb() of the row's compact text: what reading the API page costs per
 *                 row, for scale (the daemon parses a whole page at once)
 *   coerce        schema_coerce() and freeing its result
 *   coerce+dump   the same plus json_dumps(JSON_COMPACT) of the coerced row, the spool line
 *   dump          json_dumps() of an already coerced row alone
 *
 * Columns: rows/s, ns/row, and for the dump passes the mean bytes per line written. */
#include "autoconfig.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "log.h"
#include "schema.h"

#define DEFAULT_ROWS 1000
#define DEFAULT_RUNS 7
#define PASS_NS      200000000ull /* each run of a pass lasts about this long */

static uint64_t rng_state = UINT64_C(0x2545f4914f6cdd1d);

/* xorshift64*: the same rows on every run and machine, so figures compare. */
static uint64_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * UINT64_C(0x2545f4914f6cdd1d);
}

static size_t pick(size_t n)
{
	return (size_t)(rnd() % n);
}

static int chance(unsigned one_in)
{
	return pick(one_in) == 0;
}

#define PICK(a) ((a)[pick(sizeof(a) / sizeof((a)[0]))])

static const char *const event_names[] = {"The Lathums",
                                          "Café Müller – Nuit ☕",
                                          "The \"Quoted\" Tour",
                                          "Back\\slash Sessions",
                                          "Emoji Fest 🎸🎉",
                                          "Idles",
                                          "Wet Leg",
                                          "Fontaines D.C."};
static const char *const affiliates[] = {"Skiddle", "Songkick", "Bandsintown", ""};
static const char *const delivery[] = {"PAH", "Mobile", "Box Office Collection", "Post"};
static const char *const device_models[] = {"iPhone", "Samsung Galaxy S23", "Pixel 8", "Desktop",
                                            "iPad"};
static const char *const device_types[] = {"Mobile", "Desktop", "Tablet"};
static const char *const offer_codes[] = {"", "EARLYBIRD", "FANCLUB", "STUDENT10"};
static const char *const partner_sites[] = {"seetickets.com", "dfconcerts.co.uk",
                                            "venue-site.example"};
static const char *const payments[] = {"Card", "PayPal", "Apple Pay", "Google Pay"};
static const char *const price_names[] = {"GENERAL ADMISSION", "VIP ADMISSION", "EARLY BIRD",
                                          "STANDING", "SEATED – Stalls"};
static const char *const channels[] = {"Web", "App", "Box Office", "Phone"};
static const char *const sources[] = {"web", "app", "api"};
static const double prices[] = {15.0, 22.5, 25.5, 29.75, 35.0, 45.0, 65.0};
static const char *const nullable[] = {"affiliate", "deviceModel", "offerCode", "partnerSite",
                                       "eventDate", "priceName",   "source"};
static const char *const extras[] = {"loyaltyTier", "basketId", "marketing"};

static const struct {
	const char *country, *iso3, *iso2, *r1, *r2, *r3;
} locations[] = {
        {"United Kingdom", "GBR", "GB", "England", "Greater London", "Westminster"},
        {"United Kingdom", "GBR", "GB", "Scotland", "Glasgow City", "Glasgow"},
        {"United Kingdom", "GBR", "GB", "Wales", "Cardiff", NULL},
        {"Ireland", "IRL", "IE", "Leinster", "Dublin", NULL},
        {"France", "FRA", "FR", "Île-de-France", "Paris", NULL},
};

static json_t *str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

/* A money value as the API sends it: mostly a number, about 1 in 8 as "25.50". */
static json_t *money(double v)
{
	char text[32];
	if (!chance(8))
		return json_real(v);
	snprintf(text, sizeof(text), "%.2f", v);
	return json_string(text);
}

static json_t *flag(int v)
{
	return chance(10) ? json_string(v ? "true" : "false") : json_boolean(v);
}

static json_t *make_location(void)
{
	static const char area[] = "ABCDEGHKLMNPRSTW", unit[] = "ABDEFGHJLNPQRSTUWXYZ";
	char post[16];
	const size_t l = pick(sizeof(locations) / sizeof(locations[0]));
	snprintf(post, sizeof(post), "%c%c%zu %zu%c%c", area[pick(16)], area[pick(16)],
	         1 + pick(99), 1 + pick(9), unit[pick(20)], unit[pick(20)]);
	json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:n}", "country",
	                      locations[l].country, "countryIso", locations[l].iso3, "postCode",
	                      post, "region1", locations[l].r1, "region2", locations[l].r2,
	                      "region3", str_or_null(locations[l].r3), "region4");
	if (o && !chance(14))
		json_object_set_new(o, "iso2", json_string(locations[l].iso2));
	return o;
}

static json_t *make_sale(size_t i)
{
	static const char code_chars[] = "ABCDEFGHIJKLMNPQRSTUVWXYZ0123456789";
	char code[11], date[32], event_date[32], event_id[16];
	for (int c = 0; c < 10; c++)
		code[c] = code_chars[pick(sizeof(code_chars) - 1)];
	code[10] = '\0';
	snprintf(date, sizeof(date), "2026-%02zu-%02zuT%02zu:%02zu:%02zuZ", 1 + pick(12),
	         1 + pick(28), pick(24), pick(60), pick(60));
	snprintf(event_date, sizeof(event_date), "2026-%02zu-%02zuT19:30:00Z", 1 + pick(12),
	         1 + pick(28));
	const size_t event = pick(40);
	const int price_id = 100000 + (int)pick(900000);
	const int sold = (int)(1 + pick(4));
	const double price = prices[pick(sizeof(prices) / sizeof(prices[0]))];
	const double fee = (double)(long)(price * 10.0 + 0.5) / 100.0;
	snprintf(event_id, sizeof(event_id), "DF-%zu", 2974219 + event);

	json_t *row = json_object();
	if (!row)
		return NULL;
	/* About 1 event in 10 has a numeric id, sent as a number in some of its sales. */
	json_object_set_new(row, "uniqueCode", json_string(code));
	json_object_set_new(row, "eventId",
	                    event % 10 == 3 && chance(2) ? json_integer(2974219 + (json_int_t)event)
	                                                 : json_string(event_id));
	json_object_set_new(row, "eventName", json_string(event_names[event % 8]));
	json_object_set_new(row, "eventDate", json_string(event_date));
	json_object_set_new(row, "date", json_string(date));
	json_object_set_new(row, "affiliate", json_string(PICK(affiliates)));
	json_object_set_new(row, "currency", json_string("GBP"));
	json_object_set_new(row, "deliveryMethod", json_string(PICK(delivery)));
	json_object_set_new(row, "deviceModel", json_string(PICK(device_models)));
	json_object_set_new(row, "deviceType", json_string(PICK(device_types)));
	json_object_set_new(row, "offerCode", json_string(PICK(offer_codes)));
	json_object_set_new(row, "partnerSite", json_string(PICK(partner_sites)));
	json_object_set_new(row, "paymentMethod", json_string(PICK(payments)));
	if (chance(2)) {
		json_object_set_new(row, "priceId", json_integer(price_id));
	} else {
		char text[16];
		snprintf(text, sizeof(text), "%d", price_id);
		json_object_set_new(row, "priceId", json_string(text));
	}
	json_object_set_new(row, "priceName", json_string(PICK(price_names)));
	json_object_set_new(row, "salesChannel", json_string(PICK(channels)));
	json_object_set_new(row, "source", json_string(PICK(sources)));
	json_object_set_new(row, "faceValue", money(price));
	json_object_set_new(row, "grossCost", money((price + fee) * sold));
	json_object_set_new(row, "grossFace", money(price * sold));
	json_object_set_new(row, "grossSales", money((price + fee) * sold));
	json_object_set_new(row, "taxTotal", money(price * sold / 6.0));
	json_object_set_new(row, "ticketPrice", money(price + fee));
	json_object_set_new(row, "sold",
	                    chance(10) ? json_sprintf("%d", sold) : json_integer(sold));
	json_object_set_new(row, "isInternetOrder", flag(!chance(7)));
	json_object_set_new(row, "isPending", flag(chance(10)));
	switch (pick(100)) {
	case 0 ... 6:
		json_object_set_new(row, "location", json_null());
		break;
	case 7 ... 13:
		break; /* no location at all */
	default:
		json_object_set_new(row, "location", make_location());
	}
	if (chance(15))
		json_object_set_new(row, PICK(nullable), json_null());
	if (chance(20)) {
		const char *extra = PICK(extras);
		json_object_set_new(row, extra,
		                    strcmp(extra, "marketing") == 0
		                            ? json_pack("{s:b, s:s}", "optIn", (int)chance(2),
		                                        "channel", "email")
		                            : json_integer((json_int_t)(i * 7919)));
	}
	return row;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

enum pass { PASS_PARSE, PASS_COERCE, PASS_COERCE_DUMP, PASS_DUMP };

struct data {
	size_t n;
	json_t **api;     /* the API rows */
	char **text;      /* their compact JSON text */
	json_t **coerced; /* their coerced rows */
};

/* One sweep over every row. Returns the bytes written (dump passes), or -1 on a failure, which
 * would make every figure meaningless. */
static long long sweep(const struct data *d, enum pass p)
{
	long long bytes = 0;
	char why[256];
	for (size_t i = 0; i < d->n; i++) {
		json_t *bq = NULL;
		char *line = NULL;
		switch (p) {
		case PASS_PARSE:
			bq = json_loadb(d->text[i], strlen(d->text[i]), 0, NULL);
			if (!bq)
				return -1;
			break;
		case PASS_COERCE:
		case PASS_COERCE_DUMP:
			if (schema_coerce(&schema_sales, d->api[i], &bq, why, sizeof(why)) < 0) {
				fprintf(stderr, "row %zu refused: %s\n", i, why);
				return -1;
			}
			if (p == PASS_COERCE)
				break;
			/* fall through */
		case PASS_DUMP:
			line = json_dumps(bq ? bq : d->coerced[i], JSON_COMPACT);
			if (!line)
				return -1;
			bytes += (long long)strlen(line) + 1; /* and its newline */
			free(line);
			break;
		}
		json_decref(bq);
	}
	return bytes;
}

static int run_pass(const struct data *d, enum pass p, const char *name, int runs)
{
	/* Size the repeat count from one sweep so that a run lasts about PASS_NS. */
	uint64_t t0 = now_ns();
	long long bytes = sweep(d, p);
	if (bytes < 0)
		return -1;
	uint64_t one = now_ns() - t0;
	size_t reps = one ? (size_t)(PASS_NS / one) : 1000;
	if (reps < 1)
		reps = 1;

	uint64_t best = UINT64_MAX;
	for (int r = 0; r < runs; r++) {
		t0 = now_ns();
		for (size_t k = 0; k < reps; k++)
			if (sweep(d, p) < 0)
				return -1;
		uint64_t t = now_ns() - t0;
		if (t < best)
			best = t;
	}
	double rows = (double)d->n * (double)reps;
	double ns_row = (double)best / rows;
	printf("%-12s %10.0f %8.0f", name, 1e9 / ns_row, ns_row);
	if (p == PASS_COERCE_DUMP || p == PASS_DUMP)
		printf(" %9.0f", (double)bytes / (double)d->n);
	printf("\n");
	fflush(stdout);
	return 0;
}

static int parse_arg(const char *s, long max, long *out)
{
	char *end;
	long v = strtol(s, &end, 10);
	if (*end || v < 1 || v > max)
		return -1;
	*out = v;
	return 0;
}

int main(int argc, char **argv)
{
	long rows = DEFAULT_ROWS, runs = DEFAULT_RUNS;
	if (argc > 3 || (argc > 1 && parse_arg(argv[1], 10000000, &rows) < 0) ||
	    (argc > 2 && parse_arg(argv[2], 1000, &runs) < 0)) {
		fprintf(stderr, "usage: %s [ROWS [RUNS]]\n", argv[0]);
		return 2;
	}
	/* The daemon's default level: unknown fields are noted at debug level and dropped. */
	log_open(LOG_TARGET_STDERR);
	log_set_level(LOG_INFO);

	struct data d = {.n = (size_t)rows};
	d.api = calloc(d.n, sizeof(*d.api));
	d.text = calloc(d.n, sizeof(*d.text));
	d.coerced = calloc(d.n, sizeof(*d.coerced));
	if (!d.api || !d.text || !d.coerced)
		return 1;
	size_t api_bytes = 0;
	char why[256];
	for (size_t i = 0; i < d.n; i++) {
		d.api[i] = make_sale(i);
		d.text[i] = d.api[i] ? json_dumps(d.api[i], JSON_COMPACT) : NULL;
		if (!d.text[i] ||
		    schema_coerce(&schema_sales, d.api[i], &d.coerced[i], why, sizeof(why)) < 0) {
			fprintf(stderr, "cannot build row %zu: %s\n", i,
			        d.text[i] ? why : "no memory");
			return 1;
		}
		api_bytes += strlen(d.text[i]);
	}

	double load = 0.0;
	if (getloadavg(&load, 1) < 1)
		load = -1.0;
	printf("schema: %zu sales rows (mean %zu bytes of API JSON), fastest of %ld runs; load "
	       "%.2f\n",
	       d.n, api_bytes / d.n, runs, load);
	printf("%-12s %10s %8s %9s\n", "pass", "rows/s", "ns/row", "bytes/row");
	fflush(stdout);
	static const struct {
		enum pass p;
		const char *name;
	} passes[] = {{PASS_PARSE, "parse"},
	              {PASS_COERCE, "coerce"},
	              {PASS_COERCE_DUMP, "coerce+dump"},
	              {PASS_DUMP, "dump"}};
	int status = 0;
	for (size_t i = 0; i < sizeof(passes) / sizeof(passes[0]); i++)
		if (run_pass(&d, passes[i].p, passes[i].name, (int)runs) < 0)
			status = 1;

	for (size_t i = 0; i < d.n; i++) {
		json_decref(d.api[i]);
		json_decref(d.coerced[i]);
		free(d.text[i]);
	}
	free(d.api);
	free(d.text);
	free(d.coerced);
	return status;
}
