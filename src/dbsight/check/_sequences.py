"""Sequences running out, after PgHero's lib/pghero/methods/sequences.rb: the last value of
each sequence feeding a column (serial, identity, or a DEFAULT nextval(...)) against the range
of the column's type and of the sequence itself, whichever ends first (a bigint sequence
feeding an integer column fails at 2^31 - 1)."""

from __future__ import annotations

from ._base import Check, Context, Finding, Outcome, count, plural

__all__ = ["SEQUENCES"]

_TYPE_MAX = {"smallint": 32_767, "integer": 2_147_483_647, "bigint": 9_223_372_036_854_775_807}

# Which sequence feeds which column: a serial's sequence is OWNED BY its column (pg_depend
# deptype 'a'), an identity column's is internal to it ('i'), and a column DEFAULT calling
# nextval() depends on the sequence it names ('n', from pg_attrdef) -- PgHero reads the last
# from the default's text. Temporary tables are left out (another session's), and so is the
# last value of an unlogged sequence on a standby (it cannot be read there).
_SEQUENCES = """
WITH feeds AS (
    SELECT d.objid AS seq, d.refobjid AS rel, d.refobjsubid AS attnum
    FROM pg_depend d
    WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
      AND d.deptype IN ('a', 'i') AND d.refobjsubid > 0
    UNION
    SELECT d.refobjid, ad.adrelid, ad.adnum
    FROM pg_attrdef ad
    JOIN pg_depend d ON d.classid = 'pg_attrdef'::regclass AND d.objid = ad.oid
     AND d.refclassid = 'pg_class'::regclass AND d.deptype = 'n'
)
SELECT sn.nspname AS sequence_schema, s.relname AS sequence,
       format('%%I.%%I', sn.nspname, s.relname) AS qualified_sequence,
       n.nspname AS schema, c.relname AS table, a.attname AS column,
       format('%%I.%%I', n.nspname, c.relname) AS qualified_table,
       format('%%I', a.attname) AS quoted_column,
       format_type(a.atttypid, NULL) AS column_type,
       format_type(ps.seqtypid, NULL) AS sequence_type,
       ps.seqmax AS sequence_max, ps.seqincrement AS increment,
       has_sequence_privilege(s.oid, 'SELECT,USAGE')
         AND (s.relpersistence <> 'u' OR NOT pg_is_in_recovery()) AS readable,
       CASE WHEN has_sequence_privilege(s.oid, 'SELECT,USAGE')
             AND (s.relpersistence <> 'u' OR NOT pg_is_in_recovery())
            THEN (SELECT coalesce(q.last_value, ps.seqstart) FROM pg_sequences q
                  WHERE q.schemaname = sn.nspname AND q.sequencename = s.relname) END
         AS last_value,
       a.attidentity <> '' AS identity
FROM feeds f
JOIN pg_class s ON s.oid = f.seq AND s.relkind = 'S'
JOIN pg_namespace sn ON sn.oid = s.relnamespace
JOIN pg_sequence ps ON ps.seqrelid = s.oid
JOIN pg_class c ON c.oid = f.rel AND c.relpersistence <> 't'
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = f.rel AND a.attnum = f.attnum AND NOT a.attisdropped
ORDER BY sn.nspname, s.relname, n.nspname, c.relname, a.attname
"""


def _sequences(ctx: Context) -> Outcome:
    ratio = ctx.thresholds.sequence_ratio
    rows = ctx.session.rows(_SEQUENCES)
    unreadable = [r for r in rows if not r["readable"]]
    findings = []
    for row in rows:
        if row["last_value"] is None or row["increment"] <= 0:
            continue  # no privilege to read it, or counting down (rare: not judged)
        column_max = _TYPE_MAX.get(row["column_type"], row["sequence_max"])
        limit = min(column_max, row["sequence_max"])
        used = row["last_value"] / limit
        if used <= ratio:
            continue
        by = "column" if column_max <= row["sequence_max"] else "sequence"
        item = {
            "sequence": f"{row['sequence_schema']}.{row['sequence']}",
            "schema": row["schema"], "table": row["table"], "column": row["column"],
            "column_type": row["column_type"], "sequence_type": row["sequence_type"],
            "last_value": row["last_value"], "max_value": limit, "limited_by": by,
            "percent_used": round(100 * used, 2), "values_left": limit - row["last_value"],
            "identity": row["identity"],
            "_fix": _fix(row, by),
        }  # fmt: skip
        findings.append(Finding(f"{row['schema']}.{row['table']}.{row['column']}", item))
    findings.sort(key=lambda f: f.item["values_left"])
    skipped = (
        f"; {plural(len(unreadable), 'sequence')} not readable by this user" if unreadable else ""
    )
    if not findings:
        return Outcome(
            f"{plural(len(rows), 'column')} fed by a sequence, none past "
            f"{ratio:.0%} of its range{skipped}"
        )
    fixes = [f.item.pop("_fix") for f in findings]
    worst = findings[0].item
    return Outcome(
        f"{plural(len(findings), 'column')} past {ratio:.0%} of the range their sequence can "
        f"fill (worst: {worst['schema']}.{worst['table']}.{worst['column']} at "
        f"{worst['percent_used']}%, {count(worst['values_left'])} values left){skipped}",
        findings,
        hint="Widen to bigint before inserts fail (ALTER COLUMN TYPE rewrites the table under "
        "an exclusive lock: plan it):\n" + "\n".join(line for fix in fixes for line in fix),
    )


def _fix(row: dict[str, object], by: str) -> list[str]:
    lines = []
    if row["column_type"] in ("smallint", "integer"):
        lines.append(
            f"ALTER TABLE {row['qualified_table']} ALTER COLUMN {row['quoted_column']} TYPE bigint;"
        )
    if row["sequence_type"] != "bigint":
        if row["identity"]:
            # an identity column's sequence follows its column's type on ALTER COLUMN TYPE
            if not lines:
                lines.append(f"ALTER SEQUENCE {row['qualified_sequence']} AS bigint;")
        else:
            lines.append(f"ALTER SEQUENCE {row['qualified_sequence']} AS bigint;")
    elif by == "sequence":
        lines.append(f"ALTER SEQUENCE {row['qualified_sequence']} NO MAXVALUE;")
    return lines


SEQUENCES = Check("sequences", "Sequences near their limit", "critical", _sequences)
