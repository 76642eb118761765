"""The OpenAPI document and the docs page, through the test client."""

import re


def _is_api(app, endpoint):
    view = app.view_functions[endpoint]
    return endpoint != "static" and not endpoint.startswith("openapi.") \
        and not getattr(view, "_spec", {}).get("hide")


def test_openapi_document_lists_every_route(app, client):
    response = client.get("/openapi.json")
    assert response.status_code == 200 and response.is_json
    spec = response.get_json()
    assert spec["openapi"].startswith("3.")
    documented = {(path, method.upper()) for path, ops in spec["paths"].items() for method in ops}
    # Every route the app serves, read from Flask's URL map rather than from a list, except
    # static files, the document and docs page themselves, and views hidden on purpose.
    served = {(re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule), method)
              for rule in app.url_map.iter_rules() if _is_api(app, rule.endpoint)
              for method in rule.methods - {"HEAD", "OPTIONS"}}
    assert ("/trigger_report", "POST") in served and ("/get_report", "GET") in served
    assert served <= documented, served - documented
    bad_input = spec["paths"]["/get_report"]["get"]["responses"]["400"]
    assert bad_input["content"]["application/json"]["schema"]["$ref"].endswith("/Error")


def test_docs_page_needs_no_outside_host(client):
    page = client.get("/docs")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert 'url: "/openapi.json"' in html and '"validatorUrl": null' in html
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert len(assets) == 4  # stylesheet, icon, Swagger UI bundle and preset
    for url in assets:
        assert url.startswith("/static/vendor/swagger-ui/"), url
        served = client.get(url)
        assert served.status_code == 200 and len(served.data) > 0, url
        served.close()


def test_refusals_are_declared_where_they_can_happen(client):
    """The key check, the rate limits, a database outage and retention answer outside the
    views: every operation they guard declares those answers, as JSON errors."""
    spec = client.get("/openapi.json").get_json()
    guarded = {(path, method): op for path, ops in spec["paths"].items()
               for method, op in ops.items() if path not in ("/health", "/healthz", "/readyz",
                                                             "/metrics")}
    assert len(guarded) >= 10
    for (path, method), operation in guarded.items():
        answers = operation["responses"]
        for status in ("401", "403", "429", "503"):
            schema = answers[status]["content"]["application/json"]["schema"]
            assert schema["$ref"].endswith("/Error"), (path, method, status)
        assert "Retry-After" in answers["429"]["headers"], (path, method)
        assert "Retry-After" in answers["503"]["headers"], (path, method)
        reads_a_report = path == "/get_report" or path.startswith("/api/v1/reports/{")
        assert ("410" in answers) == reads_a_report, (path, method)
    assert "MAX_QUEUED_REPORTS" in spec["paths"]["/trigger_report"]["post"]["responses"][
        "429"]["description"]
