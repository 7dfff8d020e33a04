/* http_probe - drive http_send() from the command line for the integration test.
 *
 * http_probe [--ca-file F] [--timeout S] [--max-bytes N] [--bearer-file F] [--attempts N]
 *            [--budget-ms N] [--method M] [--data D | --data-file F] [--content-type T]
 *            [--header H]... [--repeat N] URL
 *
 * Prints one JSON line per request: rc and error as errno names, status, body length,
 * a scrubbed excerpt of the body, elapsed ms and the attempts made. Log records go to
 * stderr (already scrubbed by the logger). SIGTERM sets a flag that the cancel callback
 * returns, as the daemon's event loop does. Exit status 0 if every request succeeded. */
#include "autoconfig.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http.h"
#include "log.h"
#include "secbuf.h"
#include "util.h"

#define PROBE_MAX_HEADERS 16

static volatile sig_atomic_t stop_requested;
static int attempts;

static void on_term(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static int probe_cancelled(void *ud)
{
	(void)ud;
	return stop_requested;
}

/* http_perform logs one debug record per attempt, tagged HTTP_STATUS: count those,
 * and pass every record on to stderr. */
static void sink(int prio, const char *msg, const struct log_field *f, size_t n, void *ud)
{
	(void)ud;
	for (size_t i = 0; i < n; i++)
		if (strcmp(f[i].name, "HTTP_STATUS") == 0)
			attempts++;
	fprintf(stderr, "%s: %s\n", log_level_name(prio), msg);
}

/* BigQuery's error shape: error.errors[0].reason. */
static const char *bq_reason(const struct http_response *r, char *buf, size_t len)
{
	json_t *root = json_loadb(r->body.data, r->body.len, 0, NULL);
	const char *reason = NULL;
	json_t *errs = json_object_get(json_object_get(root, "error"), "errors");
	const char *s = json_string_value(json_object_get(json_array_get(errs, 0), "reason"));
	if (s) {
		snprintf(buf, len, "%s", s);
		reason = buf;
	}
	json_decref(root);
	return reason;
}

static const char *errno_name(int e)
{
	if (e == 0)
		return "OK";
	const char *n = strerrorname_np(e < 0 ? -e : e);
	return n ? n : "?";
}

static void usage(void)
{
	fprintf(stderr,
	        "usage: http_probe [--ca-file F] [--timeout S] [--max-bytes N] "
	        "[--bearer-file F] [--attempts N] [--budget-ms N] [--method M] "
	        "[--data D | --data-file F] [--content-type T] [--header H]... [--repeat N] URL\n");
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	        {"ca-file", required_argument, NULL, 'c'},
	        {"timeout", required_argument, NULL, 't'},
	        {"max-bytes", required_argument, NULL, 'm'},
	        {"bearer-file", required_argument, NULL, 'b'},
	        {"attempts", required_argument, NULL, 'a'},
	        {"budget-ms", required_argument, NULL, 'B'},
	        {"method", required_argument, NULL, 'X'},
	        {"data", required_argument, NULL, 'd'},
	        {"data-file", required_argument, NULL, 'D'},
	        {"content-type", required_argument, NULL, 'T'},
	        {"header", required_argument, NULL, 'H'},
	        {"repeat", required_argument, NULL, 'r'},
	        {NULL, 0, NULL, 0},
	};
	struct http_options o = {.cancelled = probe_cancelled};
	struct http_request req = {.method = "GET"};
	struct http_policy pol = {.max_attempts = 1};
	const char *headers[PROBE_MAX_HEADERS + 1] = {0};
	size_t nheaders = 0;
	const char *bearer_file = NULL;
	char *data_file = NULL;
	struct secbuf *bearer = NULL;
	int repeat = 1, opt, failed = 0;

	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			o.ca_file = optarg;
			break;
		case 't':
			o.timeout_s = atol(optarg);
			break;
		case 'm':
			o.max_response_bytes = strtoull(optarg, NULL, 10);
			break;
		case 'b':
			bearer_file = optarg;
			break;
		case 'a':
			pol.max_attempts = atoi(optarg);
			break;
		case 'B':
			pol.budget_ms = atol(optarg);
			break;
		case 'X':
			req.method = optarg;
			break;
		case 'd':
			req.body = optarg;
			req.body_len = strlen(optarg);
			break;
		case 'D': {
			size_t len = 0;
			free(data_file);
			data_file = NULL;
			int r = util_read_file(optarg, 64u * 1024 * 1024, &data_file, &len);
			if (r < 0) {
				fprintf(stderr, "http_probe: %s: %s\n", optarg, strerror(-r));
				return 2;
			}
			req.body = data_file;
			req.body_len = len;
			break;
		}
		case 'T':
			req.content_type = optarg;
			break;
		case 'H':
			if (nheaders == PROBE_MAX_HEADERS) {
				usage();
				return 2;
			}
			headers[nheaders++] = optarg;
			break;
		case 'r':
			repeat = atoi(optarg);
			break;
		default:
			usage();
			return 2;
		}
	}
	if (optind != argc - 1) {
		usage();
		return 2;
	}
	req.url = argv[optind];
	req.headers = nheaders ? headers : NULL;

	struct sigaction sa = {.sa_handler = on_term};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	log_set_sink(sink, NULL);
	log_set_level(LOG_DEBUG);
	http_global_init();

	if (bearer_file) {
		char *data = NULL;
		size_t len = 0;
		int r = util_read_file(bearer_file, 4096, &data, &len);
		if (r < 0) {
			fprintf(stderr, "http_probe: %s: %s\n", bearer_file, strerror(-r));
			return 2;
		}
		while (len > 0 && (data[len - 1] == '\n' || data[len - 1] == '\r'))
			len--;
		bearer = secbuf_new(data, len);
		util_wipe(data, len);
		free(data);
		if (!bearer)
			return 2;
		req.bearer = bearer;
	}

	struct http_client *c = http_client_new(&o);
	if (!c) {
		fprintf(stderr, "http_probe: cannot create the client\n");
		return 2;
	}
	for (int i = 0; i < repeat; i++) {
		struct http_response resp = {0};
		char excerpt[HTTP_MAX_ERROR_BODY_LOG + 1];
		attempts = 0;
		uint64_t t0 = util_now_ms();
		int rc = http_send(c, &req, &resp, &pol, bq_reason);
		uint64_t took = util_now_ms() - t0;
		http_body_excerpt(&resp, excerpt, sizeof(excerpt));
		char ra[64];
		json_t *j = json_pack(
		        "{s:s, s:s, s:I, s:I, s:s, s:I, s:i, s:I, s:s, s:s?}", "rc", errno_name(rc),
		        "error", errno_name(resp.error), "status", (json_int_t)resp.status,
		        "body_len", (json_int_t)resp.body.len, "excerpt", excerpt, "elapsed_ms",
		        (json_int_t)took, "attempts", attempts, "retry_after_ms",
		        (json_int_t)resp.retry_after_ms, "errmsg", resp.errmsg, "content_type",
		        http_response_header(&resp, "Content-Type", ra, sizeof(ra)));
		char *line = j ? json_dumps(j, JSON_COMPACT) : NULL;
		printf("%s\n", line ? line : "{\"rc\":\"ENOMEM\"}");
		fflush(stdout);
		free(line);
		json_decref(j);
		if (rc < 0)
			failed = 1;
		http_response_free(&resp);
	}
	http_client_free(c);
	secbuf_free(bearer);
	free(data_file);
	http_global_cleanup();
	return failed;
}
