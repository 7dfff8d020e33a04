/* Unit tests for gauth.c and gapi.c, the parts that need no server: the JWT, refresh
 * timing, token replies, key files and the ADC order, error bodies. */
#include "autoconfig.h"

#include <errno.h>
#include <stdbool.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "codec.h"
#include "gapi.h"
#include "gauth.h"
#include "log.h"
#include "tap.h"
#include "util.h"

#define TOKEN_URI "http://127.0.0.1:9/token"
#define EMAIL     "sa-test@proj.iam.gserviceaccount.com"

static char tmpdir[] = "/tmp/stbq-gauth-XXXXXX";

static struct secbuf *pem_of(EVP_PKEY *pkey)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *data = NULL;
	struct secbuf *s = NULL;
	if (bio && PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL) == 1) {
		long n = BIO_get_mem_data(bio, &data);
		s = secbuf_new(data, (size_t)n);
	}
	BIO_free(bio);
	return s;
}

static json_t *segment_json(const char *seg, size_t len)
{
	unsigned char *raw = NULL;
	size_t n = 0;
	if (codec_base64url_decode(seg, len, &raw, &n) < 0)
		return NULL;
	json_t *j = json_loadb((const char *)raw, n, 0, NULL);
	free(raw);
	return j;
}

/* Split a JWT, check its JSON, verify its signature with pkey's public half. */
static void check_jwt(const struct secbuf *jwt, EVP_PKEY *pkey, int64_t now, size_t sig_bytes)
{
	const char *s = (const char *)secbuf_expose(jwt);
	const char *dot1 = strchr(s, '.');
	const char *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
	CHECK(dot1 && dot2 && !strchr(dot2 + 1, '.'));
	if (!dot1 || !dot2)
		return;
	CHECK(strchr(s, '=') == NULL);
	CHECK(strchr(s, '+') == NULL && strchr(s, '/') == NULL);

	json_t *h = segment_json(s, (size_t)(dot1 - s));
	json_t *c = segment_json(dot1 + 1, (size_t)(dot2 - dot1 - 1));
	CHECK(h && c);
	CHECK_STR(json_string_value(json_object_get(h, "alg")), "RS256");
	CHECK_STR(json_string_value(json_object_get(h, "typ")), "JWT");
	CHECK_STR(json_string_value(json_object_get(h, "kid")), "kid-123");
	CHECK_STR(json_string_value(json_object_get(c, "iss")), EMAIL);
	CHECK_STR(json_string_value(json_object_get(c, "scope")),
	          "https://www.googleapis.com/auth/cloud-platform");
	CHECK_STR(json_string_value(json_object_get(c, "aud")), TOKEN_URI);
	CHECK_INT(json_integer_value(json_object_get(c, "iat")), now);
	CHECK_INT(json_integer_value(json_object_get(c, "exp")) -
	                  json_integer_value(json_object_get(c, "iat")),
	          3600);
	CHECK(json_object_get(c, "sub") == NULL);
	json_decref(h);
	json_decref(c);

	unsigned char *sig = NULL;
	size_t sig_len = 0;
	CHECK_INT(codec_base64url_decode(dot2 + 1, strlen(dot2 + 1), &sig, &sig_len), 0);
	CHECK_INT(sig_len, sig_bytes);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	CHECK(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pkey) == 1);
	CHECK(EVP_DigestVerify(md, sig, sig_len, (const unsigned char *)s, (size_t)(dot2 - s)) ==
	      1);
	/* One flipped bit in the signed part must break it: the check is real. */
	char *tampered = strndup(s, (size_t)(dot2 - s));
	tampered[dot1 - s + 2] ^= 1;
	EVP_MD_CTX_reset(md);
	CHECK(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pkey) == 1);
	CHECK(EVP_DigestVerify(md, sig, sig_len, (unsigned char *)tampered, strlen(tampered)) != 1);
	free(tampered);
	EVP_MD_CTX_free(md);
	free(sig);
}

static void test_jwt_is_rs256_signed_and_verifies_with_the_public_key(void)
{
	EVP_PKEY *pkey = EVP_RSA_gen(2048);
	struct secbuf *pem = pem_of(pkey), *jwt = NULL;
	char err[200] = "";
	int64_t now = 1767225600;
	CHECK_INT(gauth_jwt_build(EMAIL, "kid-123", TOKEN_URI, pem, now, &jwt, err, sizeof(err)),
	          0);
	CHECK(jwt != NULL);
	if (jwt)
		check_jwt(jwt, pkey, now, 256);
	secbuf_free(jwt);
	secbuf_free(pem);
	EVP_PKEY_free(pkey);
}

static void test_jwt_signature_is_sized_from_a_larger_key(void)
{
	EVP_PKEY *pkey = EVP_RSA_gen(3072);
	struct secbuf *pem = pem_of(pkey), *jwt = NULL, *jwt2 = NULL;
	char err[200] = "";
	CHECK_INT(gauth_jwt_build(EMAIL, "kid-123", TOKEN_URI, pem, 1000, &jwt, err, sizeof(err)),
	          0);
	if (jwt)
		check_jwt(jwt, pkey, 1000, 384);
	/* Every refresh gets a new JWT with the time of that refresh. */
	CHECK_INT(gauth_jwt_build(EMAIL, "kid-123", TOKEN_URI, pem, 2000, &jwt2, err, sizeof(err)),
	          0);
	CHECK(jwt && jwt2 && !secbuf_equal(jwt, jwt2));
	secbuf_free(jwt);
	secbuf_free(jwt2);
	secbuf_free(pem);
	EVP_PKEY_free(pkey);
}

static void test_jwt_refuses_a_non_rsa_or_garbled_key(void)
{
	EVP_PKEY *ec = EVP_EC_gen("P-256");
	struct secbuf *pem = pem_of(ec), *jwt = NULL;
	char err[200] = "";
	CHECK_INT(gauth_jwt_build(EMAIL, NULL, TOKEN_URI, pem, 1000, &jwt, err, sizeof(err)),
	          -EINVAL);
	CHECK(jwt == NULL);
	CHECK(strstr(err, "RSA") != NULL);
	secbuf_free(pem);
	EVP_PKEY_free(ec);

	const char *garbage = "-----BEGIN PRIVATE KEY-----\nTk9UQUtFWU5PVEFLRVk=\n"
	                      "-----END PRIVATE KEY-----\n";
	pem = secbuf_new(garbage, strlen(garbage));
	CHECK_INT(gauth_jwt_build(EMAIL, NULL, TOKEN_URI, pem, 1000, &jwt, err, sizeof(err)),
	          -EINVAL);
	CHECK(strstr(err, "Tk9U") == NULL && strstr(err, "BEGIN") == NULL);
	secbuf_free(pem);
}

static void test_long_token_is_refreshed_225_s_before_expiry(void)
{
	uint64_t t0 = 1000000, exp = t0 + 3599 * 1000;
	CHECK(!gauth_refresh_due(t0, exp, t0));
	CHECK(!gauth_refresh_due(t0 + 3000 * 1000, exp, t0));
	CHECK(!gauth_refresh_due(exp - 225 * 1000, exp, t0));
	CHECK(gauth_refresh_due(exp - 224 * 1000, exp, t0));
	CHECK(gauth_refresh_due(exp - 1, exp, t0));
}

static void test_short_token_is_used_for_half_its_life(void)
{
	/* A 30 s token from the metadata server: not refetched at once... */
	uint64_t t0 = 5000000, exp = t0 + 30 * 1000;
	CHECK(!gauth_refresh_due(t0, exp, t0));
	CHECK(!gauth_refresh_due(t0 + 14 * 1000, exp, t0));
	/* ...but once half of it is gone. */
	CHECK(gauth_refresh_due(t0 + 15 * 1000, exp, t0));
	CHECK(gauth_refresh_due(t0 + 29 * 1000, exp, t0));
	/* Exactly the margin long: also the short-token rule, never due at birth. */
	CHECK(!gauth_refresh_due(t0, t0 + 225 * 1000, t0));
}

static void test_expired_token_is_always_due(void)
{
	uint64_t t0 = 7000000;
	CHECK(gauth_refresh_due(t0 + 3600 * 1000, t0 + 3600 * 1000, t0));
	CHECK(gauth_refresh_due(t0 + 4000 * 1000, t0 + 3600 * 1000, t0));
	CHECK(gauth_refresh_due(t0 + 31 * 1000, t0 + 30 * 1000, t0));
	/* Nonsense (expiry before it was obtained) refreshes rather than trusts. */
	CHECK(gauth_refresh_due(t0, t0 - 1, t0 + 5));
}

static void test_token_reply_expires_in_may_be_number_or_string(void)
{
	struct secbuf *tok = NULL;
	long life = 0;
	char err[160];
	const char *a = "{\"access_token\":\"ya29.abcdefghijklmnop\",\"expires_in\":3599,"
	                "\"token_type\":\"Bearer\"}";
	CHECK_INT(gauth_parse_token_reply(a, strlen(a), &tok, &life, err, sizeof(err)), 0);
	CHECK_INT(life, 3599);
	CHECK_INT(secbuf_len(tok), strlen("ya29.abcdefghijklmnop"));
	CHECK(tok && memcmp(secbuf_expose(tok), "ya29.abcdefghijklmnop", secbuf_len(tok)) == 0);
	secbuf_free(tok);
	const char *b =
	        "{\"access_token\":\"tok-2\",\"expires_in\":\"42\",\"token_type\":\"bearer\"}";
	CHECK_INT(gauth_parse_token_reply(b, strlen(b), &tok, &life, err, sizeof(err)), 0);
	CHECK_INT(life, 42);
	secbuf_free(tok);
	const char *c = "{\"access_token\":\"tok-3\",\"expires_in\":7.9}";
	CHECK_INT(gauth_parse_token_reply(c, strlen(c), &tok, &life, err, sizeof(err)), 0);
	CHECK_INT(life, 7);
	secbuf_free(tok);
}

static void test_token_reply_rejects_bad_shapes_without_quoting_the_token(void)
{
	static const char *const bad[] = {
	        "{\"expires_in\":3599}",
	        "{\"access_token\":\"\",\"expires_in\":3599}",
	        "{\"access_token\":\"ya29.SECRETSECRET\",\"expires_in\":\"soon\"}",
	        "{\"access_token\":\"ya29.SECRETSECRET\",\"expires_in\":0}",
	        "{\"access_token\":\"ya29.SECRETSECRET\",\"expires_in\":-5}",
	        "{\"access_token\":\"ya29.SECRETSECRET\",\"expires_in\":\"-5\"}",
	        "{\"access_token\":\"ya29.SECRETSECRET\",\"token_type\":\"MAC\"}",
	        "{\"access_token\":\"ya29.SECRET\\r\\nX-Evil: 1\",\"expires_in\":5}",
	        "{\"access_token\":42}",
	        "[\"ya29.SECRETSECRET\"]",
	        "ya29.SECRETSECRET",
	        "",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct secbuf *tok = (struct secbuf *)1;
		long life = 0;
		char err[160] = "";
		int r = gauth_parse_token_reply(bad[i], strlen(bad[i]), &tok, &life, err,
		                                sizeof(err));
		if (r != -EINVAL)
			printf("# accepted: %s\n", bad[i]);
		CHECK_INT(r, -EINVAL);
		CHECK(tok == NULL);
		CHECK(err[0] != '\0' && strstr(err, "SECRET") == NULL);
	}
}

/* ---- key files ---- */

static char *write_file(const char *name, const char *content)
{
	char *path = NULL;
	if (asprintf(&path, "%s/%s", tmpdir, name) < 0)
		return NULL;
	if (util_write_file_atomic(path, content, strlen(content), 0600) < 0) {
		free(path);
		return NULL;
	}
	return path;
}

static char *sa_json(const char *drop, const char *pem, const char *type)
{
	json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "type", type, "project_id", "proj",
	                      "private_key_id", "kid-123", "private_key", pem, "client_email",
	                      EMAIL, "token_uri", TOKEN_URI);
	if (drop)
		json_object_del(o, drop);
	char *s = json_dumps(o, JSON_INDENT(2));
	json_decref(o);
	return s;
}

static struct secbuf *test_pem;

static const char *pem_text(void)
{
	if (!test_pem) {
		EVP_PKEY *pkey = EVP_RSA_gen(2048);
		test_pem = pem_of(pkey);
		EVP_PKEY_free(pkey);
	}
	return (const char *)secbuf_expose(test_pem);
}

/* Some run of the PEM body that must never show up in a message. */
static bool mentions_key(const char *text)
{
	const char *p = pem_text();
	const char *body = strchr(p, '\n');
	char probe[17];
	if (!body)
		return false;
	snprintf(probe, sizeof(probe), "%s", body + 1);
	return strstr(text, probe) != NULL || strstr(text, "BEGIN") != NULL;
}

static struct gauth *new_with(const char *credentials, char *err, size_t len)
{
	struct gauth_options o = {.credentials = credentials, .metadata_host = "10.0.0.1"};
	return gauth_new(&o, err, len);
}

static void test_service_account_file_is_described_by_email_and_path(void)
{
	char *json = sa_json(NULL, pem_text(), "service_account");
	char *path = write_file("sa.json", json);
	char err[300] = "";
	struct gauth *g = new_with(path, err, sizeof(err));
	CHECK(g != NULL);
	char want[400];
	snprintf(want, sizeof(want), "service account %s (file %s)", EMAIL, path);
	CHECK_STR(gauth_describe(g), want);
	CHECK(!mentions_key(gauth_describe(g)));
	gauth_free(g);
	free(json);
	free(path);
}

static void test_key_file_errors_name_file_and_field_never_the_key(void)
{
	static const struct {
		const char *drop, *type, *file, *expect;
		bool bad_pem;
	} cases[] = {
	        {"client_email", "service_account", "a.json", "\"client_email\"", false},
	        {"private_key", "service_account", "b.json", "\"private_key\"", false},
	        {"type", "service_account", "c.json", "\"type\"", false},
	        {NULL, "external_account", "d.json", "not supported", false},
	        {NULL, "service_account", "e.json", "private_key is not", true},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *pem = cases[i].bad_pem ? "-----BEGIN PRIVATE KEY-----\nTk9UQUtFWQ==\n"
		                                     "-----END PRIVATE KEY-----\n"
		                                   : pem_text();
		char *json = sa_json(cases[i].drop, pem, cases[i].type);
		char *path = write_file(cases[i].file, json);
		char err[400] = "";
		struct gauth *g = new_with(path, err, sizeof(err));
		CHECK(g == NULL);
		printf("# %s\n", err);
		CHECK(strstr(err, path) != NULL);
		CHECK(strstr(err, cases[i].expect) != NULL);
		CHECK(!mentions_key(err));
		CHECK(strstr(err, "Tk9U") == NULL);
		gauth_free(g);
		free(json);
		free(path);
	}
}

static void test_authorized_user_file_needs_its_refresh_token(void)
{
	const char *good =
	        "{\"type\":\"authorized_user\",\"client_id\":\"cid\","
	        "\"client_secret\":\"shh-client-secret\",\"refresh_token\":\"1//rt-SECRET\"}";
	char *path = write_file("au.json", good);
	char err[300] = "";
	struct gauth *g = new_with(path, err, sizeof(err));
	char want[300];
	snprintf(want, sizeof(want), "authorized user (file %s)", path);
	CHECK_STR(gauth_describe(g), want);
	gauth_free(g);
	free(path);

	path = write_file("au2.json", "{\"type\":\"authorized_user\",\"client_id\":\"cid\","
	                              "\"client_secret\":\"shh-client-secret\"}");
	g = new_with(path, err, sizeof(err));
	CHECK(g == NULL);
	CHECK(strstr(err, "\"refresh_token\"") != NULL && strstr(err, path) != NULL);
	CHECK(strstr(err, "shh") == NULL);
	free(path);
}

static void test_unreadable_or_invalid_key_files_are_refused(void)
{
	char err[300] = "";
	CHECK(new_with("/nonexistent/key.json", err, sizeof(err)) == NULL);
	CHECK(strstr(err, "/nonexistent/key.json") != NULL);
	char *path = write_file("broken.json", "{\"type\": \"service_account\", \"private_key\": "
	                                       "\"-----BEGIN PRIVATE KEY-----\\nMIIsecret");
	CHECK(new_with(path, err, sizeof(err)) == NULL);
	printf("# %s\n", err);
	CHECK(strstr(err, "invalid JSON") != NULL && strstr(err, path) != NULL);
	CHECK(strstr(err, "MIIsecret") == NULL);
	free(path);
	/* token_uri must obey the URL policy: no plain http off loopback. */
	char *text = sa_json(NULL, pem_text(), "service_account");
	json_t *o = json_loads(text, 0, NULL);
	free(text);
	json_object_set_new(o, "token_uri", json_string("http://evil.example/token"));
	char *s = json_dumps(o, 0);
	path = write_file("uri.json", s);
	CHECK(new_with(path, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "token_uri") != NULL);
	free(path);
	free(s);
	json_decref(o);
}

static void test_adc_order_env_then_gcloud_file_then_metadata(void)
{
	char err[300] = "";
	char *sa = sa_json(NULL, pem_text(), "service_account");
	char *sa_path = write_file("adc-sa.json", sa);
	char gcloud[300];
	snprintf(gcloud, sizeof(gcloud), "%s/gcloud", tmpdir);
	CHECK_INT(util_mkdir_p(gcloud, 0700), 0);
	char *au_path = NULL;
	CHECK(asprintf(&au_path, "%s/application_default_credentials.json", gcloud) > 0);
	const char *au = "{\"type\":\"authorized_user\",\"client_id\":\"c\","
	                 "\"client_secret\":\"s\",\"refresh_token\":\"r\"}";
	CHECK_INT(util_write_file_atomic(au_path, au, strlen(au), 0600), 0);

	unsetenv("GCE_METADATA_HOST");
	setenv("GOOGLE_APPLICATION_CREDENTIALS", sa_path, 1);
	setenv("CLOUDSDK_CONFIG", gcloud, 1);
	struct gauth *g = new_with("auto", err, sizeof(err));
	CHECK(g && util_str_has_prefix(gauth_describe(g), "service account "));
	gauth_free(g);

	unsetenv("GOOGLE_APPLICATION_CREDENTIALS");
	g = new_with("auto", err, sizeof(err));
	CHECK(g && util_str_has_prefix(gauth_describe(g), "authorized user (file "));
	CHECK(g && strstr(gauth_describe(g), au_path) != NULL);
	gauth_free(g);

	unlink(au_path);
	g = new_with("auto", err, sizeof(err));
	CHECK_STR(g ? gauth_describe(g) : err, "metadata server 10.0.0.1");
	gauth_free(g);

	/* HOME's well-known path is used when CLOUDSDK_CONFIG is unset. */
	unsetenv("CLOUDSDK_CONFIG");
	char home[300], cfg[350];
	snprintf(home, sizeof(home), "%s/home", tmpdir);
	snprintf(cfg, sizeof(cfg), "%s/.config/gcloud", home);
	CHECK_INT(util_mkdir_p(cfg, 0700), 0);
	char *home_adc = NULL;
	CHECK(asprintf(&home_adc, "%s/application_default_credentials.json", cfg) > 0);
	CHECK_INT(util_write_file_atomic(home_adc, au, strlen(au), 0600), 0);
	char *old_home = util_strdup_or_null(getenv("HOME"));
	setenv("HOME", home, 1);
	g = new_with("auto", err, sizeof(err));
	CHECK(g && strstr(gauth_describe(g), home_adc) != NULL);
	gauth_free(g);

	/* A GOOGLE_APPLICATION_CREDENTIALS that is set but broken is an error, not a fallback. */
	setenv("GOOGLE_APPLICATION_CREDENTIALS", "/nonexistent/adc.json", 1);
	g = new_with("auto", err, sizeof(err));
	CHECK(g == NULL);
	CHECK(strstr(err, "GOOGLE_APPLICATION_CREDENTIALS") != NULL);
	unsetenv("GOOGLE_APPLICATION_CREDENTIALS");
	if (old_home)
		setenv("HOME", old_home, 1);
	free(old_home);
	free(home_adc);
	free(au_path);
	free(sa_path);
	free(sa);
}

static void test_metadata_host_from_environment_wins(void)
{
	char err[200];
	struct gauth_options o = {.credentials = "metadata", .metadata_host = "10.0.0.1"};
	unsetenv("GCE_METADATA_HOST");
	struct gauth *g = gauth_new(&o, err, sizeof(err));
	CHECK_STR(gauth_describe(g), "metadata server 10.0.0.1");
	gauth_free(g);
	setenv("GCE_METADATA_HOST", "127.0.0.1:8080", 1);
	g = gauth_new(&o, err, sizeof(err));
	CHECK_STR(gauth_describe(g), "metadata server 127.0.0.1:8080");
	gauth_free(g);
	o.metadata_host = NULL;
	unsetenv("GCE_METADATA_HOST");
	g = gauth_new(&o, err, sizeof(err));
	CHECK_STR(gauth_describe(g), "metadata server metadata.google.internal");
	gauth_free(g);
}

/* ---- gapi: error bodies ---- */

static struct http_response response(long status, const char *body, const char *headers)
{
	struct http_response r = {.status = status, .retry_after_ms = -1};
	buf_puts(&r.body, body);
	r.headers = headers ? strdup(headers) : NULL;
	return r;
}

static void test_error_reason_from_bigquery_rpc_and_oauth_bodies(void)
{
	char buf[64];
	struct http_response r = response(403,
	                                  "{\"error\":{\"code\":403,\"message\":\"Exceeded\","
	                                  "\"errors\":[{\"reason\":\"rateLimitExceeded\"}],"
	                                  "\"status\":\"PERMISSION_DENIED\"}}",
	                                  NULL);
	CHECK_STR(gapi_error_reason(&r, buf, sizeof(buf)), "rateLimitExceeded");
	http_response_free(&r);
	r = response(400, "{\"error\":{\"code\":400,\"status\":\"FAILED_PRECONDITION\"}}", NULL);
	CHECK_STR(gapi_error_reason(&r, buf, sizeof(buf)), "FAILED_PRECONDITION");
	http_response_free(&r);
	r = response(400, "{\"error\":\"invalid_grant\",\"error_description\":\"x\"}", NULL);
	CHECK_STR(gapi_error_reason(&r, buf, sizeof(buf)), "invalid_grant");
	http_response_free(&r);
	r = response(502, "<html>Bad Gateway</html>", NULL);
	CHECK(gapi_error_reason(&r, buf, sizeof(buf)) == NULL);
	http_response_free(&r);
	r = response(500, "", NULL);
	CHECK(gapi_error_reason(&r, buf, sizeof(buf)) == NULL);
	http_response_free(&r);
}

static void test_error_message_is_scrubbed_and_truncated(void)
{
	char buf[GAPI_MAX_MESSAGE + 1];
	struct http_response r = response(
	        401, "{\"error\":{\"message\":\"bad header Bearer ya29.verysecrettoken\\nnext\"}}",
	        NULL);
	gapi_error_message(&r, buf, sizeof(buf));
	CHECK(strstr(buf, "verysecrettoken") == NULL);
	CHECK(strstr(buf, "bad header") != NULL);
	CHECK(strchr(buf, '\n') == NULL);
	http_response_free(&r);

	struct buf big = {0};
	buf_puts(&big, "{\"error\":{\"message\":\"");
	for (int i = 0; i < 100; i++)
		buf_puts(&big, "0123456789");
	buf_puts(&big, "\"}}");
	r = response(400, big.data, NULL);
	gapi_error_message(&r, buf, sizeof(buf));
	CHECK_INT(strlen(buf), GAPI_MAX_MESSAGE);
	CHECK(strstr(buf, "...") != NULL);
	char small[16];
	gapi_error_message(&r, small, sizeof(small));
	CHECK_INT(strlen(small), 15);
	http_response_free(&r);
	buf_free(&big);

	r = response(400, "{\"error\":\"invalid_grant\",\"error_description\":\"Invalid JWT\"}",
	             NULL);
	gapi_error_message(&r, buf, sizeof(buf));
	CHECK_STR(buf, "invalid_grant: Invalid JWT");
	http_response_free(&r);

	r = response(503, "<html>down</html>",
	             "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/html\r\n\r\n");
	gapi_error_message(&r, buf, sizeof(buf));
	CHECK_STR(buf, "HTTP/1.1 503 Service Unavailable");
	http_response_free(&r);

	r = response(0, "", NULL);
	snprintf(r.errmsg, sizeof(r.errmsg), "Connection refused");
	r.error = -ECONNREFUSED;
	gapi_error_message(&r, buf, sizeof(buf));
	CHECK_STR(buf, "Connection refused");
	http_response_free(&r);
}

/* A loopback port nobody listens on: bound once by us, then closed. */
static int closed_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) < 0) {
		if (fd >= 0)
			close(fd);
		return 1;
	}
	close(fd);
	return ntohs(a.sin_port);
}

static void test_gapi_call_sends_nothing_without_a_token(void)
{
	/* A metadata server that refuses connections never yields a token; gapi_call
	 * must give up before sending the API request. */
	char err[200], host[64];
	int port = closed_port();
	snprintf(host, sizeof(host), "127.0.0.1:%d", port);
	struct gauth_options o = {.credentials = "metadata", .metadata_host = host};
	unsetenv("GCE_METADATA_HOST");
	struct http_options ho = {.timeout_s = 2};
	struct http_client *http = http_client_new(&ho);
	struct http_policy pol = {.max_attempts = 1};
	o.http = http;
	o.policy = &pol;
	struct gauth *g = gauth_new(&o, err, sizeof(err));
	struct http_request req = {.method = "GET", .url = "http://127.0.0.1:9/never"};
	struct http_response resp = {0};
	int r = gapi_call(g, http, &req, &resp, &pol);
	CHECK(r < 0);
	CHECK(resp.body.data == NULL); /* untouched: no request was made */
	CHECK(req.bearer == NULL);
	http_response_free(&resp);
	gauth_free(g);
	http_client_free(http);
}

static int sink_count;
static void count_sink(int prio, const char *message, const struct log_field *fields,
                       size_t nfields, void *userdata)
{
	(void)prio;
	(void)message;
	(void)fields;
	(void)nfields;
	(void)userdata;
	sink_count++;
}

int main(void)
{
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	http_global_init();
	log_set_sink(count_sink, NULL);
	RUN(test_jwt_is_rs256_signed_and_verifies_with_the_public_key);
	RUN(test_jwt_signature_is_sized_from_a_larger_key);
	RUN(test_jwt_refuses_a_non_rsa_or_garbled_key);
	RUN(test_long_token_is_refreshed_225_s_before_expiry);
	RUN(test_short_token_is_used_for_half_its_life);
	RUN(test_expired_token_is_always_due);
	RUN(test_token_reply_expires_in_may_be_number_or_string);
	RUN(test_token_reply_rejects_bad_shapes_without_quoting_the_token);
	RUN(test_service_account_file_is_described_by_email_and_path);
	RUN(test_key_file_errors_name_file_and_field_never_the_key);
	RUN(test_authorized_user_file_needs_its_refresh_token);
	RUN(test_unreadable_or_invalid_key_files_are_refused);
	RUN(test_adc_order_env_then_gcloud_file_then_metadata);
	RUN(test_metadata_host_from_environment_wins);
	RUN(test_error_reason_from_bigquery_rpc_and_oauth_bodies);
	RUN(test_error_message_is_scrubbed_and_truncated);
	RUN(test_gapi_call_sends_nothing_without_a_token);
	log_set_sink(NULL, NULL);
	secbuf_free(test_pem);
	http_global_cleanup();
	char cmd[100];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		printf("# could not remove %s\n", tmpdir);
	return tap_done();
}
