/* Unit tests for gauth.c and gapi.c, the parts that need no server: the JWT, refresh
 * timing, token replies, key files and the ADC order, error bodies. */
#include "autoconfig.h"

#include <errno.h>
#include <stdbool.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
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
/* What Google's token endpoint (and google-auth) want as the JWT's aud, whatever token_uri is.
 * Spelled out rather than GAUTH_JWT_AUDIENCE, so that the test pins the value. */
#define GOOGLE_AUD "https://oauth2.googleapis.com/token"

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

/* Split a JWT, check its JSON, verify its signature with pkey's public half. `aud` is the
 * audience it must name; `now` its iat (negative: any). */
static void check_jwt(const struct secbuf *jwt, EVP_PKEY *pkey, int64_t now, size_t sig_bytes,
                      const char *aud)
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
	CHECK_STR(json_string_value(json_object_get(c, "aud")), aud);
	if (now >= 0)
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
	CHECK_STR(GAUTH_JWT_AUDIENCE, GOOGLE_AUD);
	CHECK_INT(gauth_jwt_build(EMAIL, "kid-123", GAUTH_JWT_AUDIENCE, pem, now, &jwt, err,
	                          sizeof(err)),
	          0);
	CHECK(jwt != NULL);
	if (jwt)
		check_jwt(jwt, pkey, now, 256, GOOGLE_AUD);
	secbuf_free(jwt);
	secbuf_free(pem);
	EVP_PKEY_free(pkey);
}

static void test_jwt_signature_is_sized_from_a_larger_key(void)
{
	EVP_PKEY *pkey = EVP_RSA_gen(3072);
	struct secbuf *pem = pem_of(pkey), *jwt = NULL, *jwt2 = NULL;
	char err[200] = "";
	CHECK_INT(gauth_jwt_build(EMAIL, "kid-123", GAUTH_JWT_AUDIENCE, pem, 1000, &jwt, err,
	                          sizeof(err)),
	          0);
	if (jwt)
		check_jwt(jwt, pkey, 1000, 384, GOOGLE_AUD);
	/* Every refresh gets a new JWT with the time of that refresh. */
	CHECK_INT(gauth_jwt_build(EMAIL, "kid-123", GAUTH_JWT_AUDIENCE, pem, 2000, &jwt2, err,
	                          sizeof(err)),
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

static void test_a_key_file_open_to_every_user_is_refused(void)
{
	char *json = sa_json(NULL, pem_text(), "service_account");
	char *path = write_file("sa-open.json", json);
	char err[600] = "";
	CHECK_INT(chmod(path, 0644), 0);
	struct gauth *g = new_with(path, err, sizeof(err));
	CHECK(g == NULL);
	CHECK(strstr(err, "chmod o-rwx") != NULL);
	CHECK(!mentions_key(err));
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

/* ---- the token request of a service-account key ---- */

/* A one-shot token endpoint on a loopback port: a child process accepts one connection, hands
 * the request it read back through a pipe and answers with a token. */
struct one_shot {
	pid_t pid;
	int port;
	int pipe_rd;
};

#define ONE_SHOT_TOKEN "ya29.one-shot-unit-test"

static void one_shot_serve(int lfd, int out)
{
	static char req[65536];
	size_t n = 0;
	alarm(30);
	int c = accept(lfd, NULL, NULL);
	while (c >= 0 && n < sizeof(req) - 1) {
		ssize_t k = read(c, req + n, sizeof(req) - 1 - n);
		if (k <= 0)
			break;
		n += (size_t)k;
		req[n] = '\0';
		const char *end = strstr(req, "\r\n\r\n");
		const char *cl = strcasestr(req, "\r\nContent-Length:");
		if (end && n >= (size_t)(end + 4 - req) + (cl ? strtoul(cl + 17, NULL, 10) : 0))
			break;
	}
	if (write(out, req, n) < 0)
		_exit(1);
	close(out);
	static const char body[] = "{\"access_token\":\"" ONE_SHOT_TOKEN
	                           "\",\"expires_in\":3599,\"token_type\":\"Bearer\"}";
	char reply[512];
	int m = snprintf(reply, sizeof(reply),
	                 "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
	                 "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
	                 strlen(body), body);
	if (c < 0 || write(c, reply, (size_t)m) < 0)
		_exit(1);
	close(c);
	_exit(0);
}

static bool one_shot_start(struct one_shot *s)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t alen = sizeof(a);
	int p[2] = {-1, -1};
	int lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(lfd, 4) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&a, &alen) < 0 || pipe(p) < 0) {
		if (lfd >= 0)
			close(lfd);
		return false;
	}
	fflush(stdout);
	s->pid = fork();
	if (s->pid == 0) {
		close(p[0]);
		one_shot_serve(lfd, p[1]);
	}
	close(lfd);
	close(p[1]);
	if (s->pid < 0) {
		close(p[0]);
		return false;
	}
	s->port = ntohs(a.sin_port);
	s->pipe_rd = p[0];
	return true;
}

/* The request the child saw (malloc'ed, NUL-terminated); reaps the child. */
static char *one_shot_finish(struct one_shot *s)
{
	struct buf got = {0};
	char chunk[4096];
	ssize_t k;
	while ((k = read(s->pipe_rd, chunk, sizeof(chunk))) > 0)
		buf_append(&got, chunk, (size_t)k);
	close(s->pipe_rd);
	int status = 0;
	if (waitpid(s->pid, &status, 0) != s->pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		printf("# one-shot token endpoint: wait status %d\n", status);
	if (!got.data)
		buf_puts(&got, "");
	return got.data;
}

static void test_service_account_jwt_names_google_and_goes_to_token_uri(void)
{
	struct one_shot srv;
	if (!one_shot_start(&srv)) {
		CHECK(!"one-shot token endpoint started");
		return;
	}
	/* token_uri points at the one-shot server, on a path of its own. */
	char uri[80];
	snprintf(uri, sizeof(uri), "http://127.0.0.1:%d/custom/token", srv.port);
	char *text = sa_json(NULL, pem_text(), "service_account");
	json_t *o = json_loads(text, 0, NULL);
	free(text);
	json_object_set_new(o, "token_uri", json_string(uri));
	char *key = json_dumps(o, 0);
	json_decref(o);
	char *path = write_file("sa-aud.json", key);
	free(key);

	char err[300] = "";
	struct http_options ho = {.timeout_s = 10};
	struct http_client *http = http_client_new(&ho);
	struct http_policy pol = {.max_attempts = 1};
	struct gauth_options go = {.credentials = path, .http = http, .policy = &pol};
	struct gauth *g = gauth_new(&go, err, sizeof(err));
	CHECK(g != NULL);
	const struct secbuf *tok = NULL;
	int64_t before = util_wall_s();
	int r = g ? gauth_token(g, &tok) : -EINVAL;
	CHECK_INT(r, 0);
	CHECK(r == 0 && secbuf_len(tok) == strlen(ONE_SHOT_TOKEN) &&
	      memcmp(secbuf_expose(tok), ONE_SHOT_TOKEN, secbuf_len(tok)) == 0);
	gauth_free(g);
	http_client_free(http);
	char *req = one_shot_finish(&srv);

	/* Sent to token_uri... */
	CHECK(util_str_has_prefix(req, "POST /custom/token HTTP/1.1\r\n"));
	const char *body = strstr(req, "\r\n\r\n");
	body = body ? body + 4 : "";
	CHECK(strstr(body, "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer") !=
	      NULL);
	/* ...but signed for Google's token endpoint, not for token_uri. */
	const char *a = strstr(body, "assertion=");
	size_t alen = a ? strcspn(a + 10, "&") : 0;
	CHECK(a != NULL && alen > 0);
	if (a && alen > 0) {
		struct secbuf *jwt = secbuf_new(a + 10, alen);
		BIO *bio = BIO_new_mem_buf(pem_text(), -1);
		EVP_PKEY *pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
		BIO_free(bio);
		CHECK(pkey != NULL);
		if (pkey && jwt) {
			check_jwt(jwt, pkey, -1, 256, GOOGLE_AUD);
			/* iat is this machine's clock at the request. */
			const char *d1 = strchr(a + 10, '.');
			json_t *c = d1 ? segment_json(d1 + 1, strcspn(d1 + 1, ".")) : NULL;
			int64_t iat = json_integer_value(json_object_get(c, "iat"));
			CHECK(iat >= before && iat <= util_wall_s());
			const char *aud = json_string_value(json_object_get(c, "aud"));
			CHECK(aud && strcmp(aud, uri) != 0);
			json_decref(c);
		}
		EVP_PKEY_free(pkey);
		secbuf_free(jwt);
	}
	free(req);
	free(path);
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
	RUN(test_a_key_file_open_to_every_user_is_refused);
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
	RUN(test_service_account_jwt_names_google_and_goes_to_token_uri);
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
