/* CSV cells the platform writes for people (canonical and quarantine files,
 * forecast exports): RFC 4180 quoting plus OWASP's neutralisation of cells a
 * spreadsheet would run as a formula. Readers of our own files undo it with
 * csvout_unguard, so every text reads back exactly as it was given. */
#ifndef ROASTERY_CSVOUT_H
#define ROASTERY_CSVOUT_H

#include <stddef.h>

#include "lib/util.h"

/* 1 when text must be guarded: it starts with = + - @ TAB or CR, possibly after
 * apostrophes (so that guarding stays reversible: "'=x" is written "''=x"),
 * and is not a plain decimal number such as "-2" (a number, not a formula). */
int csvout_needs_guard(const char *s, size_t n);

/* Writes s as one text cell into o, which has room for 2n + 3 bytes: guarded
 * cells get a leading apostrophe and are always quoted; others are quoted when
 * they hold a comma, quote, CR or LF or start or end with a space. Returns the
 * bytes written. Numbers we write ourselves are not text: don't pass them. */
size_t csvout_put_text(char *o, const char *s, size_t n);

/* Appends s as one text cell (as csvout_put_text). RST_OK or RST_ETOOBIG. */
int csvout_text(buf_t *b, const char *s, size_t n);

/* The same, never guarded: for files only our own code reads (daily totals,
 * the generator's output into COPY), where a cell must stay byte for byte. */
size_t csvout_put_plain(char *o, const char *s, size_t n);
int csvout_plain(buf_t *b, const char *s, size_t n);

/* The bytes to skip to read a cell back as it was before csvout_put_text
 * guarded it: 1 for an apostrophe (or several) followed by a trigger byte,
 * else 0. */
size_t csvout_unguard(const char *s, size_t n);

#endif
