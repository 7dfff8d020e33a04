/* gauth_probe.c - drive gauth/gapi/secret from the command line for the integration test.
 *
 *   gauth_probe --credentials X [--metadata-host H] [--secret NAME --sm-endpoint URL]
 *               [--tokens N --sleep-ms M] [--attempts N] [--budget-ms MS]
 *               [--commands] [--log-level LEVEL]
 *
 * Prints one JSON object per line on stdout: the source description, then one line per token
 * (a SHA-256 prefix, never the token), then the secret's length and SHA-256 prefix. With
 * --commands it reads "token", "invalidate", "secret", "sleep MS" lines from stdin instead and
 * answers each, so a test can change the fake between steps. Logs go to stderr. Exit 0 when
 * every step succeeded, 1 otherwise, 64 on usage errors. */
#include "autoconfig.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "config.h"
#include "gauth.h"
#include "http.h"
#include "log.h"
#include "probe_common.h"
#include "secret.h"
#include "util.h"

struct probe {
	struct probe_common common;
	const char *secret;
	const char *sm_endpoint;
	int ntoken;
	int failures;
};

/* First 16 hex digits of SHA-256: enough to compare two values, useless to an attacker. */
static void hash_prefix(const unsigned char *data, size_t len, char out[17])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	out[0] = '\0';
	if (EVP_Digest(data, len, md, &n, EVP_sha256(), NULL) != 1)
		return;
	for (int i = 0; i < 8; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static void result(json_t *o, int rc)
{
	json_object_set_new(o, "rc", json_integer(rc));
	if (rc < 0)
		json_object_set_new(o, "error", json_string(strerror(-rc)));
}

static void do_token(struct probe *p)
{
	const struct secbuf *tok = NULL;
	int r = gauth_token(p->common.auth, &tok);
	json_t *o = json_pack("{s:s, s:i}", "event", "token", "n", ++p->ntoken);
	result(o, r);
	if (r == 0) {
		char h[17];
		hash_prefix(secbuf_expose(tok), secbuf_len(tok), h);
		json_object_set_new(o, "sha256", json_string(h));
		json_object_set_new(o, "len", json_integer((json_int_t)secbuf_len(tok)));
	} else {
		p->failures++;
	}
	probe_emit(o);
}

static void do_secret(struct probe *p)
{
	struct config cfg = {0};
	struct secbuf *key = NULL;
	cfg.seetickets.key_source = CONFIG_KEY_SECRET;
	cfg.seetickets.key_ref = (char *)p->secret;
	cfg.google.secretmanager_endpoint = (char *)p->sm_endpoint;
	int r = secret_load(&cfg, p->common.auth, p->common.http, &p->common.policy, &key);
	json_t *o = json_pack("{s:s}", "event", "secret");
	result(o, r);
	if (r == 0) {
		char h[17];
		hash_prefix(secbuf_expose(key), secbuf_len(key), h);
		json_object_set_new(o, "length", json_integer((json_int_t)secbuf_len(key)));
		json_object_set_new(o, "sha256", json_string(h));
	} else {
		p->failures++;
	}
	secbuf_free(key);
	probe_emit(o);
}

static void sleep_ms(long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static void run_commands(struct probe *p)
{
	char line[256];
	while (fgets(line, sizeof(line), stdin)) {
		line[strcspn(line, "\r\n")] = '\0';
		if (strcmp(line, "token") == 0) {
			do_token(p);
		} else if (strcmp(line, "invalidate") == 0) {
			gauth_invalidate(p->common.auth);
			probe_emit(json_pack("{s:s}", "event", "invalidate"));
		} else if (strcmp(line, "secret") == 0) {
			if (p->secret) {
				do_secret(p);
			} else {
				probe_emit(json_pack("{s:s, s:s}", "event", "error", "error",
				                     "no --secret given"));
				p->failures++;
			}
		} else if (strncmp(line, "sleep ", 6) == 0) {
			sleep_ms(strtol(line + 6, NULL, 10));
			probe_emit(json_pack("{s:s}", "event", "slept"));
		} else if (strcmp(line, "quit") == 0) {
			break;
		} else if (line[0]) {
			probe_emit(json_pack("{s:s, s:s}", "event", "error", "error",
			                     "unknown command"));
			p->failures++;
		}
	}
}

static void usage(FILE *f)
{
	fprintf(f, "usage: gauth_probe --credentials auto|metadata|FILE [--metadata-host H]\n"
	           "       [--secret NAME --sm-endpoint URL] [--tokens N] [--sleep-ms M]\n"
	           "       [--attempts N] [--budget-ms MS] [--commands] [--log-level LEVEL]\n");
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	        PROBE_OPTIONS,
	        {"metadata-host", required_argument, NULL, 'm'},
	        {"secret", required_argument, NULL, 's'},
	        {"sm-endpoint", required_argument, NULL, 'e'},
	        {"tokens", required_argument, NULL, 't'},
	        {"sleep-ms", required_argument, NULL, 'w'},
	        {"commands", no_argument, NULL, 'C'},
	        {NULL, 0, NULL, 0},
	};
	struct probe p = {
	        .common = {.usage = usage, .policy = {.max_attempts = 3, .budget_ms = 20000}},
	        .sm_endpoint = "https://secretmanager.googleapis.com"};
	const char *metadata_host = NULL;
	int tokens = 1, c;
	long sleep = 0;
	bool commands = false;

	log_open(LOG_TARGET_STDERR);
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		if (probe_option(&p.common, c, optarg))
			continue;
		switch (c) {
		case 'm':
			metadata_host = optarg;
			break;
		case 's':
			p.secret = optarg;
			break;
		case 'e':
			p.sm_endpoint = optarg;
			break;
		case 't':
			tokens = atoi(optarg);
			break;
		case 'w':
			sleep = atol(optarg);
			break;
		case 'C':
			commands = true;
			break;
		default:
			probe_usage(&p.common, 64);
		}
	}
	if (!p.common.credentials || optind < argc)
		probe_usage(&p.common, 64);

	struct http_options ho = {.timeout_s = 30, .max_response_bytes = 1 << 20};
	char err[512] = "";
	if (probe_open(&p.common, &ho, metadata_host, err, sizeof(err)) < 0) {
		probe_emit(json_pack("{s:s, s:b, s:s}", "event", "source", "ok", 0, "error", err));
		probe_close(&p.common);
		return 1;
	}
	probe_emit(json_pack("{s:s, s:b, s:s}", "event", "source", "ok", 1, "describe",
	                     gauth_describe(p.common.auth)));

	if (commands) {
		run_commands(&p);
	} else {
		for (int i = 0; i < tokens; i++) {
			if (i && sleep > 0)
				sleep_ms(sleep);
			do_token(&p);
		}
		if (p.secret)
			do_secret(&p);
	}
	probe_close(&p.common);
	return p.failures ? 1 : 0;
}
