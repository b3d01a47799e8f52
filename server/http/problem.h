/* The problem+json type URIs (RFC 9457) of every answer, shared by http/http.c and
 * http/conn_limits.c (which answers before a request exists and so includes no http.h). */
#ifndef ROASTERY_PROBLEM_H
#define ROASTERY_PROBLEM_H

#define HTTP_PROBLEM_BASE "https://roastery.dev/problems/"

#endif
