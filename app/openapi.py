"""Settings of the OpenAPI document (`/openapi.json`) and its browsable page (`/docs`).

The page is Swagger UI, served from `app/static/vendor/swagger-ui` (copied from the npm
package swagger-ui-dist by `tools/vendor-swagger-ui.sh`, licence beside it), so it works
without reaching any outside host.
"""

from .schemas import Error

TITLE = "Store Monitor"
VERSION = "1.0"
DESCRIPTION = (
    "Uptime and downtime of stores within their business hours. Trigger a report, poll it "
    "until it is Complete, download its CSV; feed new polls over HTTP. Every error is JSON "
    '`{"error": ..., "message": ...}`.'
)


def init_app(app):
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
