/* `roastery forecast`: a saved model applied to a sales history for the days
 * after it, written as CSV for PostgreSQL's COPY. The contract (flags,
 * inputs, output, events, exit codes) is in docs/forecast.md. */
#ifndef ROASTERY_FORECAST_CLI_H
#define ROASTERY_FORECAST_CLI_H

/* Exit statuses (the trainer's). */
#define FORECAST_CLI_EXIT_OK 0
#define FORECAST_CLI_EXIT_FAILED 1
#define FORECAST_CLI_EXIT_USAGE 2
#define FORECAST_CLI_EXIT_DATA 3 /* the history is too short for the model's lags */

/* Runs "roastery forecast ..." (argv[0] is "forecast"; argv is borrowed) and
 * returns the process exit status; 128 + the signal number when SIGTERM or
 * SIGINT stopped it. Rows go to the --output file or stdout; JSON events go
 * to stdout, or to stderr when the rows do. */
int forecast_cli_main(int argc, char **argv);

#endif
