/* The orchestrator's resources and their request tables. */
#pragma once
#include "orch/http.h"
#include "orch/orch.h"

typedef struct fm_api {
        fm_orch *o;
} fm_api;

/* The handler for fm_http_start; data is an api. */
void fm_api_handle(void *data, const fm_http_req *rq, fm_http_resp *rs);
