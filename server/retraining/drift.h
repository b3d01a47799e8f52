/* Data drift between a reference dataset version (what the production model
 * was trained on) and a new one: the population stability index of each
 * feature, with bins fixed from the reference, and the shift in mean daily
 * quantity of every store x product. Streams canonical CSVs from the artifact
 * store in bounded memory (three passes: reference sample, reference bins,
 * current window). */
#ifndef ROASTERY_DRIFT_H
#define ROASTERY_DRIFT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "artifacts/artifacts.h"

#define DRIFT_DEFAULT_PSI_THRESHOLD 0.2
#define DRIFT_DEFAULT_SHIFT_THRESHOLD 0.25
#define DRIFT_DEFAULT_TOP 10
#define DRIFT_PSI_FLOOR 1e-4    /* a bin's share never counts below this (empty bins) */
#define DRIFT_SAMPLE 50000      /* reference values kept per numeric feature for its bins */
#define DRIFT_MAX_SERIES 500000 /* store x product pairs followed; beyond, counted only */
#define DRIFT_MAX_LEVELS 20000  /* stores or products followed for the mix features */

typedef struct {
    /* Dates as days since 1970-01-01 (the versions' profiles give them). */
    int32_t ref_first, ref_last, cur_first, cur_last;
    double psi_threshold;   /* the verdict: drifted when max PSI exceeds it (0 = default) */
    double shift_threshold; /* |relative change| of a series flagged as shifted (0 = default) */
    size_t top;             /* shifted series listed (0 = default) */
} drift_options;

/* The current window compared: the days of the new version after the
 * reference ends when there are at least 28 of them (at most a year), else
 * its last 90 days. Exposed for tests. */
void drift_window(const drift_options *o, int32_t *first, int32_t *last);

/* Population stability index of two histograms over the same n bins (raw
 * counts; each side is normalised, shares floored at DRIFT_PSI_FLOOR):
 * sum (cur - ref) * ln(cur / ref). 0 when either side is empty. */
double drift_psi(const double *ref, const double *cur, size_t n);

/* Bin edges from sorted values (n > 0): the upper edges of `bins` equal-
 * frequency bins, duplicates dropped; a value v falls in the first bin whose
 * edge is >= v, or the last bin (edges_n + 1 bins in all). Returns edges_n
 * (at most bins - 1). */
size_t drift_edges(const double *sorted, size_t n, size_t bins, double *edges);

/* Compares the canonical CSVs under ref_key and cur_key. RST_OK with *report
 * (new: json_decref) and *max_psi; RST_ENOTFOUND when a file is missing,
 * RST_EIO/RST_EINVAL when unreadable, with err. Report shape:
 *   {"window": {"first_date", "last_date", "days"},
 *    "reference": {"first_date", "last_date", "rows"}, "current": {..., "rows"},
 *    "features": [{"feature", "kind": numeric|categorical, "psi",
 *                  "bins": [{"bin", "reference", "current"}]}],      shares, 4 decimals
 *    "max_psi", "max_psi_feature", "threshold", "drifted",
 *    "level_shift": {"baseline": "same_window_last_year"|"whole_reference",
 *                    "threshold", "series", "shifted", "new_series", "missing_series",
 *                    "truncated", "top": [{"store_id", "product", "reference_mean_daily",
 *                    "current_mean_daily", "relative_change"}]}} */
int drift_compare(artifact_store *store, const char *ref_key, const char *cur_key,
                  const drift_options *o, json_t **report, double *max_psi, char *err,
                  size_t errlen);

#endif
