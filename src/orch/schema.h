/* The orchestrator API's request bodies (docs/openapi.json): a table per
 * body for fm_validate, and the rules a table cannot say. */
#pragma once
#include <json-c/json.h>
#include <stdint.h>
#include "proto/validate.h"

#define FM_API_ID_MAX 64 /* an id in a path or a body: [A-Za-z0-9_.-], 1 to 64 */

extern const fm_vfield fm_api_registration[];  /* RegistrationInfo with fastmig's extension */
extern const fm_vfield fm_api_subscription[];  /* MobilityProcedureSubscription */
extern const fm_vfield fm_api_migration[];     /* a migration request (fastmig's own) */
extern const fm_vfield fm_api_cell_change[];   /* a user's new cell: associateId, cell, timeStamp? */
extern const fm_vfield fm_api_image_placement[]; /* an image to place on a host: image (name or digest), from */
extern const fm_vfield fm_api_trajectory[];    /* a user's known path: the service, the trace (text or points) */
extern const fm_vfield fm_api_position[];      /* a user's position: associateId, x, y, timeStamp? */
extern const fm_vfield fm_api_cell_change_notification[]; /* ETSI MEC 012 RNIS CellChangeNotification */

/* hoStatus given by its name (as some RNIS versions write it) becomes its
 * number (1 IN_PREPARATION ... 5 CANCELLED), before validation */
void fm_api_ho_status_normalize(json_object *b);

/* serviceConsumerId holds exactly one id; an associate id of an address
 * type is that address; the container is a valid name */
int fm_api_registration_check(json_object *b, fm_error *e);
/* the callback is an http(s) URI of URI characters; no websockets; the
 * expiry deadline, if any, is after now_ms */
int fm_api_subscription_check(json_object *b, int64_t now_ms, fm_error *e);
/* a subscription's expiryDeadline in ms since the epoch, 0 without one */
int64_t fm_api_deadline_ms(json_object *b);
/* a TimeStamp object (checked by its table) in ms since the epoch; dflt
 * when ts is NULL */
int64_t fm_api_time_ms(json_object *ts, int64_t dflt);
