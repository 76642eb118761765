"""Ingest: store data in, every row accounted for (loaded, duplicate or rejected).

Owns finding the files of an input (`sources`), the checked byte stream parsing reads
(`inputstream`), parsing and validating rows (`parse`), bulk writes per database (`bulk`),
loading one input in one transaction (`load`), removing polls (`remove`), receiving an
upload (`uploads`) and what has been loaded (`inventory`).

May import: `app.storage`, `app.engine`, `app.config`, `app.extensions`.
"""
