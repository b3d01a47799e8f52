/* The public holidays the trainer and the forecaster observe (and the demo's generator models):
 * the calendars of the USA, Canada and Mexico, rule by rule with the years each rule held.
 * Pure: no I/O, no state. */
#ifndef ROASTERY_HOLIDAYS_H
#define ROASTERY_HOLIDAYS_H

/* The holiday observed in country ("USA", "Canada" or "Mexico") on that date, e.g.
 * "Thanksgiving"; NULL when none (or an unknown country or invalid date). Static string. */
const char *holidays_name(const char *country, int year, int month, int day);

/* The same day as a level: 0 no holiday, 1 a holiday, 2 a major one (stores see far fewer
 * customers: New Year's Day, Christmas Day and the USA's Thanksgiving). */
int holidays_level(const char *country, int year, int month, int day);

/* Western (Gregorian) Easter Sunday of year (anonymous computus). */
void holidays_easter(int year, int *month, int *day);

#endif
