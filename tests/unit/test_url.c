/* Unit tests for url.c: the https/loopback policy, host extraction and escaping. */
#include "autoconfig.h"

#include <errno.h>

#include "tap.h"
#include "url.h"

static void test_https_urls_are_allowed(void)
{
	CHECK(url_allowed("https://clients-api.seetickets.com/v1"));
	CHECK(url_allowed("https://bigquery.googleapis.com"));
	CHECK(url_allowed("https://example.com:8443/a?b=c#d"));
	CHECK(url_allowed("HTTPS://Example.COM/"));
	CHECK(url_allowed("https://[2001:db8::1]:443/x"));
}

static void test_plain_http_to_loopback_is_allowed(void)
{
	CHECK(url_allowed("http://127.0.0.1:8080/x"));
	CHECK(url_allowed("http://127.1.2.3/"));
	CHECK(url_allowed("http://localhost"));
	CHECK(url_allowed("http://LOCALHOST:9/"));
	CHECK(url_allowed("http://[::1]:9/"));
	CHECK(url_allowed("http://[::1]"));
	CHECK(url_allowed("http://[::ffff:127.0.0.1]:80/"));
}

static void test_plain_http_elsewhere_is_refused(void)
{
	CHECK(!url_allowed("http://example.com"));
	CHECK(!url_allowed("http://example.com/127.0.0.1"));
	CHECK(!url_allowed("http://127.0.0.1.evil.com"));
	CHECK(!url_allowed("http://127.0.0.1.evil.com/"));
	CHECK(!url_allowed("http://localhost.evil.com/"));
	CHECK(!url_allowed("http://10.0.0.1"));
	CHECK(!url_allowed("http://0.0.0.0/"));
	CHECK(!url_allowed("http://[::2]/"));
	CHECK(!url_allowed("http://[::ffff:10.0.0.1]/"));
	/* Userinfo makes a remote host look local. */
	CHECK(!url_allowed("http://127.0.0.1@evil.com/"));
	CHECK(!url_allowed("http://localhost:80@evil.com"));
	CHECK(!url_allowed("https://user@example.com/"));
}

static void test_malformed_urls_are_refused(void)
{
	CHECK(!url_allowed("ftp://example.com/"));
	CHECK(!url_allowed("file:///etc/passwd"));
	CHECK(!url_allowed("example.com"));
	CHECK(!url_allowed("//example.com"));
	CHECK(!url_allowed("://example.com"));
	CHECK(!url_allowed("https://"));
	CHECK(!url_allowed("https:///path"));
	CHECK(!url_allowed("https://:443/"));
	CHECK(!url_allowed("https://example.com:/"));
	CHECK(!url_allowed("https://example.com:0/"));
	CHECK(!url_allowed("https://example.com:65536/"));
	CHECK(!url_allowed("https://example.com:8x/"));
	CHECK(!url_allowed("https://exa mple.com/"));
	CHECK(!url_allowed("https://example.com/\n"));
	CHECK(!url_allowed("https://[::1/"));
	CHECK(!url_allowed("https://[nothex]/"));
	CHECK(!url_allowed("https://[::1]x/"));
	CHECK(!url_allowed(""));
	CHECK(!url_allowed(NULL));
}

static void test_loopback_hosts(void)
{
	CHECK(url_host_is_loopback("localhost"));
	CHECK(url_host_is_loopback("127.0.0.1"));
	CHECK(url_host_is_loopback("127.255.255.254"));
	CHECK(url_host_is_loopback("::1"));
	CHECK(!url_host_is_loopback("128.0.0.1"));
	CHECK(!url_host_is_loopback("127.1"));
	CHECK(!url_host_is_loopback("127.0.0.1.nip.io"));
	CHECK(!url_host_is_loopback("[::1]"));
	CHECK(!url_host_is_loopback(""));
	CHECK(!url_host_is_loopback(NULL));
}

static void test_host_is_extracted_without_port_or_brackets(void)
{
	char h[64];
	CHECK_INT(url_host("https://bigquery.googleapis.com/bigquery/v2", h, sizeof(h)), 0);
	CHECK_STR(h, "bigquery.googleapis.com");
	CHECK_INT(url_host("http://127.0.0.1:8080/x", h, sizeof(h)), 0);
	CHECK_STR(h, "127.0.0.1");
	CHECK_INT(url_host("http://[::1]:9/", h, sizeof(h)), 0);
	CHECK_STR(h, "::1");
	CHECK_INT(url_host("https://example.com?q=1", h, sizeof(h)), 0);
	CHECK_STR(h, "example.com");
	CHECK_INT(url_host("https://example.com#frag", h, sizeof(h)), 0);
	CHECK_STR(h, "example.com");
	CHECK_INT(url_host("example.com/x", h, sizeof(h)), -EINVAL);
	CHECK_INT(url_host("https://", h, sizeof(h)), -EINVAL);
	CHECK_INT(url_host("https://example.com", h, 5), -ERANGE);
	CHECK_INT(url_host("https://example.com", h, 12), 0);
	CHECK_STR(h, "example.com");
}

static void test_escape_keeps_unreserved_and_encodes_the_rest(void)
{
	char *e = url_escape("sales$2026");
	CHECK_STR(e, "sales%242026");
	free(e);
	e = url_escape("AZaz09-._~");
	CHECK_STR(e, "AZaz09-._~");
	free(e);
	e = url_escape("a b/c?d&e=f%g+h");
	CHECK_STR(e, "a%20b%2Fc%3Fd%26e%3Df%25g%2Bh");
	free(e);
	e = url_escape("\xc3\xa9\xff");
	CHECK_STR(e, "%C3%A9%FF");
	free(e);
	e = url_escape("");
	CHECK_STR(e, "");
	free(e);
	CHECK(url_escape(NULL) == NULL);
}

int main(void)
{
	RUN(test_https_urls_are_allowed);
	RUN(test_plain_http_to_loopback_is_allowed);
	RUN(test_plain_http_elsewhere_is_refused);
	RUN(test_malformed_urls_are_refused);
	RUN(test_loopback_hosts);
	RUN(test_host_is_extracted_without_port_or_brackets);
	RUN(test_escape_keeps_unreserved_and_encodes_the_rest);
	return tap_done();
}
