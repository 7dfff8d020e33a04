/* schema-internal.h - what schema.c (rows as jansson trees) and schema-text.c
 * (rows as JSON text) share, so that both apply one set of coercion rules. */
#ifndef STBQ_SCHEMA_INTERNAL_H
#define STBQ_SCHEMA_INTERNAL_H

#include <stdbool.h>

#define SCHEMA_EXACT_INT_MAX 9007199254740992LL /* 2^53: doubles are exact up to here */

bool schema_is_space(char c); /* the C locale's isspace() */
/* Narrow [*b, *e) to its text without surrounding whitespace. */
void schema_trim(const char **b, const char **e);
/* Whether a finite double has no fraction, without libm (the build does not link it). */
bool schema_is_integral(double d);
/* The shortest "%.*g" that reads back as d; integral values within 2^53 without a fraction. */
void schema_format_real(double d, char out[40]);
/* Parse [+-]?[0-9]+(\.0*)? exactly. 0, -EINVAL (not an integer), -ERANGE (beyond int64). */
int schema_parse_integer(const char *b, const char *e, long long *out);

#endif
