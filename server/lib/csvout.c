/* Spreadsheet-safe CSV cells. A product named =HYPERLINK(...) reached store
 * managers' forecast downloads verbatim (security review 2026-12, finding 6):
 * Excel and LibreOffice run a cell that starts with = + - @ TAB or CR. OWASP's
 * remedy: prefix such cells with an apostrophe (shown as text, not stored by
 * the spreadsheet) and quote them. */
#include "lib/csvout.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int trigger(char c)
{
    return c == '=' || c == '+' || c == '-' || c == '@' || c == '\t' || c == '\r';
}

/* A plain decimal number ("-2", "+1.5", "-3e4"): a spreadsheet reads it as
 * that number and nothing else, so it is left as it is. */
static int plain_number(const char *s, size_t n)
{
    size_t i = 0, digits = 0;
    if (i < n && (s[i] == '+' || s[i] == '-'))
        i++;
    for (; i < n && s[i] >= '0' && s[i] <= '9'; i++)
        digits++;
    if (i < n && s[i] == '.')
        for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++)
            digits++;
    if (!digits)
        return 0;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        size_t e = ++i;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            e = ++i;
        for (; i < n && s[i] >= '0' && s[i] <= '9'; i++)
            ;
        if (i == e)
            return 0;
    }
    return i == n;
}

int csvout_needs_guard(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && s[i] == '\'')
        i++;
    return i < n && trigger(s[i]) && (i > 0 || !plain_number(s, n));
}

size_t csvout_unguard(const char *s, size_t n)
{
    return n > 1 && s[0] == '\'' && csvout_needs_guard(s + 1, n - 1) ? 1 : 0;
}

static int needs_quotes(const char *s, size_t n)
{
    if (n && (s[0] == ' ' || s[n - 1] == ' '))
        return 1;
    for (size_t i = 0; i < n; i++)
        if (s[i] == ',' || s[i] == '"' || s[i] == '\n' || s[i] == '\r')
            return 1;
    return 0;
}

/* One cell: quoted when needed, and with a leading apostrophe when guard. */
static size_t put_cell(char *o, const char *s, size_t n, int guard)
{
    if (!guard && !needs_quotes(s, n)) {
        memcpy(o, s, n);
        return n;
    }
    size_t k = 0;
    o[k++] = '"';
    if (guard)
        o[k++] = '\'';
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"')
            o[k++] = '"';
        o[k++] = s[i];
    }
    o[k++] = '"';
    return k;
}

size_t csvout_put_text(char *o, const char *s, size_t n)
{
    return put_cell(o, s, n, csvout_needs_guard(s, n));
}

size_t csvout_put_plain(char *o, const char *s, size_t n)
{
    return put_cell(o, s, n, 0);
}

static int append_cell(buf_t *b, const char *s, size_t n, int guard)
{
    if (!guard && !needs_quotes(s, n))
        return buf_append(b, s, n);
    if (n > (SIZE_MAX - 3) / 2)
        return RST_ETOOBIG;
    char *tmp = xmalloc(2 * n + 3);
    size_t k = put_cell(tmp, s, n, guard);
    int rc = buf_append(b, tmp, k);
    free(tmp);
    return rc;
}

int csvout_text(buf_t *b, const char *s, size_t n)
{
    return append_cell(b, s, n, csvout_needs_guard(s, n));
}

int csvout_plain(buf_t *b, const char *s, size_t n)
{
    return append_cell(b, s, n, 0);
}
