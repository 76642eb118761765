"""Settings of the OpenAPI document (`/openapi.json`) and its browsable page (`/docs`).

The page is Swagger UI, served from `app/static/vendor/swagger-ui` (copied from the npm
package swagger-ui-dist by `tools/vendor-swagger-ui.sh`, licence beside it), so it works
without reaching any outside host.
"""

import functools

from app.api.schemas import Error

_RETRY_AFTER = {"Retry-After": {"description": "seconds to wait before trying again",
                                "schema": {"type": "integer", "minimum": 1}}}

TITLE = "Store Monitor"
VERSION = "1.0"
DESCRIPTION = (
    "Uptime and downtime of stores within their business hours. Trigger a report, poll it "
    "until it is Complete, download its CSV; feed new polls over HTTP. Every error is JSON "
    '`{"error": ..., "message": ...}`.'
)


def init_app(app):
    earlier = app.spec_callback  # APIFlask keeps one processor: keep any earlier one too
    app.spec_processor(lambda spec: drop_unused_tags(
        document_refusals(earlier(spec) if earlier else spec)))
    _readable_on_phones(app)
    vendor = f"{app.static_url_path}/vendor/swagger-ui"
    app.config.update(
        DESCRIPTION=DESCRIPTION,
        SWAGGER_UI_CSS=f"{vendor}/swagger-ui.css",
        SWAGGER_UI_BUNDLE_JS=f"{vendor}/swagger-ui-bundle.js",
        SWAGGER_UI_STANDALONE_PRESET_JS=f"{vendor}/swagger-ui-standalone-preset.js",
        DOCS_FAVICON=f"{vendor}/favicon-32x32.png",
        # No badge from the public validator: the page must not call outside hosts.
        SWAGGER_UI_CONFIG={"validatorUrl": None},
        # The seed's API answers bad input with 400, not APIFlask's default 422, and every
        # error, validation errors included, has one shape.
        VALIDATION_ERROR_STATUS_CODE=400,
        VALIDATION_ERROR_DESCRIPTION="Bad request: the input is missing or invalid",
        VALIDATION_ERROR_SCHEMA=Error,
        HTTP_ERROR_SCHEMA=Error,
    )


def drop_unused_tags(spec):
    """Leave out the tags of blueprints whose views are all hidden (the pages, sign-in), which
    Swagger UI would show as empty groups, and a tag named twice."""
    used = {tag for operations in spec.get("paths", {}).values()
            for operation in operations.values() if isinstance(operation, dict)
            for tag in operation.get("tags", ())}
    if "tags" in spec:
        kept, seen = [], set()
        for tag in spec["tags"]:  # two blueprints may share a tag: one group each
            if tag["name"] in used and tag["name"] not in seen:
                kept.append(tag)
                seen.add(tag["name"])
        spec["tags"] = kept
    return spec


def _readable_on_phones(app):
    """Swagger UI's page as APIFlask renders it has no viewport meta: a phone shows it at
    desktop width, unreadably small. Add one to the page the `openapi.docs` view answers."""
    docs = app.view_functions.get("openapi.docs")
    if docs is None:
        return

    @functools.wraps(docs)
    def docs_with_viewport(*args, **kwargs):
        page = docs(*args, **kwargs)
        if isinstance(page, str):
            page = page.replace("<head>", '<head>\n  <meta name="viewport" '
                                'content="width=device-width, initial-scale=1">', 1)
        return page

    app.view_functions["openapi.docs"] = docs_with_viewport


def document_refusals(spec):
    """Declare the answers no view returns itself but the checks around every view may:
    `429` (rate limit; for a trigger also a full queue), `503` (database unavailable), both
    with Retry-After, and `410` where a report is read (retention deleted it)."""
    from app.auth.guard import guarded_operations  # the operations a client needs a key for

    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for path, operation in guarded_operations(spec):
        answers = operation["responses"]
        busy = "Too many requests from this client (rate limit)"
        if operation.get("operationId") == "triggerReport":
            busy += ", or too many reports queued (MAX_QUEUED_REPORTS)"
        answers.setdefault("429", {"description": busy, "content": error,
                                   "headers": _RETRY_AFTER})
        answers.setdefault("503", {"description": "The database is unavailable for now",
                                   "content": error, "headers": _RETRY_AFTER})
        if path == "/get_report" or path.startswith("/api/v1/reports/{"):
            answers.setdefault("410", {
                "description": "The report's CSV was deleted (REPORT_RETENTION)",
                "content": error})
    return spec
