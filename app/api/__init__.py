"""API: the HTTP API and its schemas.

Owns the contract's endpoints (`trigger`: `POST /trigger_report`, `GET /get_report`), the
`/api/v1` report and data endpoints (`reports`, `data`), their request and response shapes
(`schemas`, `report_schemas`), JSON errors for every failure (`errors`) and the OpenAPI
document (`openapi`).

May import: every package below it; not `app.web` or `app.cli`.
"""
