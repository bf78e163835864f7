/* A client of the orchestrator's API (libcurl): FASTMIG_API_URL,
 * FASTMIG_API_TOKEN and FASTMIG_API_CA, as `fastmig testbed env orch'
 * prints them. The server's certificate is checked against that CA alone. */
#pragma once
#include <json-c/json.h>
#include <stdbool.h>
#include "util/util.h"

typedef struct fm_api_client {
        char url[256];
        char token[128];
        char ca[512];
} fm_api_client;

/* From the environment; false when FASTMIG_API_URL is not set. A set URL
 * without a token is an error in *e (then it returns true, e->code set). */
bool fm_api_client_from_env(fm_api_client *c, fm_error *e);

/* One request: method, path (from the URL's root, with its query), body
 * (NULL: none). *status gets the HTTP status and *reply the JSON answer
 * (NULL when it had none). A problem answer (4xx, 5xx) is put in *e as
 * "STATUS TITLE: DETAIL" and the call returns -code (ENOENT for 404, EBUSY
 * for 409, EACCES for 401, EINVAL else) with *reply NULL; transport errors
 * return -EIO. */
int fm_api_call(const fm_api_client *c, const char *method, const char *path, json_object *body, long *status,
                json_object **reply, fm_error *e);
