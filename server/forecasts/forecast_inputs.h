/* The known future inputs of a forecast: planned promotions and a weather outlook, each read from
 * a small CSV of named columns (moved whole from forecast_gen.c, which reads them). */
#ifndef ROASTERY_FORECAST_INPUTS_H
#define ROASTERY_FORECAST_INPUTS_H

#include <stddef.h>
#include <stdint.h>

#define FORECAST_INPUTS_MAX_PROMOTIONS 1000000 /* rows of a promotions file */
#define FORECAST_INPUTS_MAX_OUTLOOK 10000000   /* rows of a weather outlook file */

typedef struct {
    char *store, *product; /* NULL = every one */
    int32_t first, last;   /* days, inclusive */
} forecast_inputs_promotion;

typedef struct {
    char *city;
    int32_t day;
    uint8_t weather;
} forecast_inputs_outlook;

/* Written only by forecast_inputs.c; read by the generator (forecast_gen.c, ext_build). */
typedef struct forecast_inputs {
    forecast_inputs_promotion *promos;
    size_t npromos, cap_promos;
    forecast_inputs_outlook *outlook;
    size_t noutlook, cap_outlook;
} forecast_inputs;

/* new: no promotions and no outlook; caller frees with forecast_inputs_free. */
forecast_inputs *forecast_inputs_new(void);

/* NULL-safe. */
void forecast_inputs_free(forecast_inputs *in);

/* Adds the promotions of a CSV `store_id,product,start_date,end_date` (a
 * store_id or product of `*` is every one; dates inclusive). data is borrowed.
 * RST_OK, RST_EINVAL with "line N: ..." in err, RST_ETOOBIG past
 * FORECAST_INPUTS_MAX_PROMOTIONS. */
int forecast_inputs_promotions(forecast_inputs *in, const char *data, size_t len, char *err,
                               size_t errlen);

/* Adds a weather outlook: CSV `city,date,weather` with the trainer's weather
 * levels (Sunny, Rainy, Snowy, Cloudy, Hot, Cold; any case). A city and date
 * given twice is an error. Same statuses as above. */
int forecast_inputs_weather(forecast_inputs *in, const char *data, size_t len, char *err,
                            size_t errlen);

#endif
