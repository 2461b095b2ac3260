#!/usr/bin/env python3
"""Turns the statements PostgreSQL logged for one database (log_statement = all) into a pgbench
script that repeats them: parameters are put in place, and every id, key and token the captured
run created is made unique per pgbench transaction, so each run inserts new rows as payment-ms does.

    pg_statements.py LOGFILE OFFSET DATABASE > script.sql
"""
import re
import sys

log_path, offset, database = sys.argv[1], int(sys.argv[2]), sys.argv[3]
with open(log_path, "rb") as f:
    f.seek(offset)
    text = f.read().decode("utf-8", "replace")

# One entry per log record: "<time> UTC [pid] user@db LOG:  ..." with continuation lines.
record = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ \w+ \[\d+\] (\S*)@(\S*) (\w+):  (.*)$")
entries = []
for line in text.splitlines():
    m = record.match(line)
    if m:
        entries.append([m.group(2), m.group(3), m.group(4)])
    elif entries and line.startswith("\t"):
        entries[-1][2] += "\n" + line[1:]

statements = []
for i, (db, level, message) in enumerate(entries):
    if db != database or level != "LOG":
        continue
    m = re.match(r"(?:statement|execute [^:]*): (.*)", message, re.S)
    if not m:
        continue
    sql = m.group(1).strip()
    params = {}
    if i + 1 < len(entries) and entries[i + 1][1] == "DETAIL" and entries[i + 1][2].startswith("parameters: "):
        # $1 = 'a', $2 = NULL, … (quotes doubled inside values)
        for name, value in re.findall(r"\$(\d+) = ('(?:[^']|'')*'|NULL)", entries[i + 1][2]):
            params[int(name)] = value
    for n in sorted(params, reverse=True):
        sql = sql.replace(f"${n}", params[n])
    statements.append(sql)

# Everything between the markers the benchmark logged around its one captured checkout.
start = next(i for i, s in enumerate(statements) if "bench-capture-start" in s)
end = next(i for i, s in enumerate(statements) if "bench-capture-end" in s)
statements = statements[start + 1:end]
if not statements:
    sys.exit("no statements captured")

# Ids (ord_…, pay_…), the Idempotency-Keys and the order number of the captured run become
# per-transaction values.
script = "\n".join(statements)
uniques = sorted(set(re.findall(r"'((?:ord|oli|osh|pay|evt|mcs|dlv|rsv)_[0-9a-f]{32})'", script)))
uniques += sorted(set(re.findall(r"'(capture-[a-z]+)'", script)))
# The order's number (unique): the counter row is still incremented as payment-ms does.
uniques += sorted(set(re.findall(r"'(ORD-[0-9]{4}-[0-9]{6,})'", script)))
lines = ["\\set n random(1, 9000000000000000)"]
for i, value in enumerate(uniques):
    prefix = value.split("_")[0] if "_" in value else "key"
    # Same length class as a real id, distinct per value and per transaction.
    script = script.replace(f"'{value}'", f"'{prefix}_{i:02d}:n'")
for sql in script.split("\n"):
    lines.append(sql.rstrip(";") + ";")
print("\n".join(lines))
print(f"-- {len(statements)} statements, {len(uniques)} unique values", file=sys.stderr)
