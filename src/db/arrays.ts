/**
 * A Postgres array literal, so a list travels as one parameter: `where id = any(?::uuid[])`.
 * Preferred to `in (select jsonb_array_elements_text(?::jsonb))`: the planner knows an array's
 * length and reaches the rows through an index, whereas it guesses a set-returning function at 100
 * rows and, on a table whose statistics lag (one an import is filling), re-runs it once per row
 * of a scan.
 */
export function sqlArray(values: Iterable<string>): string {
  return `{${Array.from(values, (value) => `"${value.replace(/["\\]/g, '\\$&')}"`).join(',')}}`;
}
