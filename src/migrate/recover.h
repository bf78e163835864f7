/* Recovery of a migration the source agent could not end: it died (the
 * journal survives it) or the target did not confirm a rollback. One rule,
 * docs/RECOVERY.md:
 *   planned    the target never ran it: ask it to drop what it prepared
 *              (once; it cannot thaw a copy that was never dumped), done;
 *   frozen     no commit was recorded: roll back. The source copy is
 *              thawed only after the target said it holds no copy;
 *              until it says so the source stays frozen;
 *   committed  the target runs it with all its memory: traffic to the
 *              target, the source copy destroyed, the target told.
 * Each step is idempotent: recovery may itself be cut and run again. */
#pragma once
#include "migrate/journal.h"
#include "migrate/migrate.h"

/* 0: the migration has ended (journal removed); -EAGAIN: the target, the
 * steering or a leftover dump did not let it end yet, call again later;
 * another error: it cannot be ended without an operator (logged). The
 * journal stays unless 0. */
int fm_recover_one(const fm_host_paths *p, const fm_journal_rec *r, fm_error *e);

/* Waits (up to wait_ms) for the checkpoint programs a dead agent left on
 * the container's images directory (lxc-checkpoint, CRIU) to end; none is
 * killed. Returns how many still run. */
int fm_recover_reap(const char *images_dir, int wait_ms);
/* Kills them (a target's restore, never a source's dump). */
void fm_recover_kill(const char *images_dir);

#define FM_RECOVER_REAP_MS 30000

/* At an agent's start, nothing in its images tmpfs belongs to a live
 * migration (they ended with the agent that served them): removes it all
 * but the entries of the containers in keep (the journal's, which their
 * recovery handles), NAME and .NAME.*. Returns how many entries went. */
int fm_recover_sweep_images(const fm_host_paths *p, char (*keep)[FM_NAME_MAX + 1], int nkeep);
