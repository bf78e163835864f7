/* The orchestrator's resources and their request tables. */
#pragma once
#include "orch/http.h"
#include "orch/orch.h"
#include "proto/validate.h"

typedef struct api {
        fm_orch *o;
} api;

/* The request bodies' tables (also fuzzed: tests/fuzz). */
extern const fm_vfield fm_api_registration[];
extern const fm_vfield fm_api_subscription[];
extern const fm_vfield fm_api_migration[];

/* The handler for fm_http_start; data is an api. */
void fm_api_handle(void *data, const fm_http_req *rq, fm_http_resp *rs);
