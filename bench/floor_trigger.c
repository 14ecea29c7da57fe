/* Row triggers written in C, for bench/crosstable_floor.py only: what keeping a txn_count-style
 * column in step costs when the trigger is not PL/pgSQL. Never installed; the benchmark compiles
 * this file against the server's headers and declares the functions by the .so's absolute path.
 *
 *   floor_noop     AFTER INSERT ... FOR EACH ROW, returns at once
 *   floor_delta    runs a saved plan: UPDATE account SET c = c + 1 WHERE id = NEW.account_id
 *   floor_recount  runs a saved plan: UPDATE account SET c = (SELECT count(*) FROM txn t
 *                  WHERE t.account_id = $1) WHERE id = $1
 *
 * Neither of the last two is exact under concurrent writers (no key lock); they are lower bounds
 * for a design that writes the seed row inside the writer's transaction. */
// postgres.h must come first
// clang-format off
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/rel.h"
// clang-format on

PG_MODULE_MAGIC;

PG_FUNCTION_INFO_V1(floor_noop);
PG_FUNCTION_INFO_V1(floor_delta);
PG_FUNCTION_INFO_V1(floor_recount);

static SPIPlanPtr delta_plan = NULL;
static SPIPlanPtr recount_plan = NULL;

Datum floor_noop(PG_FUNCTION_ARGS) {
  if (!CALLED_AS_TRIGGER(fcinfo)) elog(ERROR, "floor_noop: not called as a trigger");
  return PointerGetDatum(NULL);
}

/* Runs `sql` (one int4 parameter: NEW.account_id) through a plan kept for the backend's life. */
static Datum run_with_key(FunctionCallInfo fcinfo, const char* sql, SPIPlanPtr* plan) {
  TriggerData* trigger = (TriggerData*)fcinfo->context;
  TupleDesc desc;
  int column;
  bool isnull;
  Datum key;
  Oid types[1] = {INT4OID};

  if (!CALLED_AS_TRIGGER(fcinfo)) elog(ERROR, "floor trigger: not called as a trigger");
  desc = RelationGetDescr(trigger->tg_relation);
  column = SPI_fnumber(desc, "account_id");
  if (column <= 0) elog(ERROR, "floor trigger: the table has no account_id column");
  key = heap_getattr(trigger->tg_trigtuple, column, desc, &isnull);
  if (isnull) return PointerGetDatum(NULL);
  if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "floor trigger: SPI_connect failed");
  if (*plan == NULL) {
    SPIPlanPtr prepared = SPI_prepare(sql, 1, types);
    if (prepared == NULL || SPI_keepplan(prepared) != 0)
      elog(ERROR, "floor trigger: preparing \"%s\" failed", sql);
    *plan = prepared;
  }
  if (SPI_execute_plan(*plan, &key, NULL, false, 0) != SPI_OK_UPDATE)
    elog(ERROR, "floor trigger: the update failed");
  SPI_finish();
  return PointerGetDatum(NULL);
}

Datum floor_delta(PG_FUNCTION_ARGS) {
  return run_with_key(fcinfo, "UPDATE account SET c = c + 1 WHERE id = $1", &delta_plan);
}

Datum floor_recount(PG_FUNCTION_ARGS) {
  return run_with_key(fcinfo,
                      "UPDATE account SET c = (SELECT count(*) FROM txn t WHERE t.account_id = $1) "
                      "WHERE id = $1",
                      &recount_plan);
}
