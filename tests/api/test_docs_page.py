"""`/docs` works offline and with an API key: Swagger UI's files come from the installed
package, the page opens without the key (it holds none), and the key typed into the page is
sent with every request Swagger UI makes, starting with `/openapi.json`."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import subprocess

import pytest
from fastapi.testclient import TestClient

from api.main import create_app


@pytest.fixture
def client(settings):
    app = create_app(dataclasses.replace(settings, api_key="s3cret"), workers=False)
    with TestClient(app) as c:
        yield c


def _page_urls(html: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]+)"', html)


def test_docs_page_and_its_assets_are_served_locally(client) -> None:
    page = client.get("/docs")
    assert page.status_code == 200 and "s3cret" not in page.text
    urls = _page_urls(page.text)
    assert urls and all(u.startswith("/docs/assets/") for u in urls), urls  # no CDN
    for url in urls:
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert len(asset.content) > 100, url
    bundle = client.get("/docs/assets/swagger-ui-bundle.js").text
    assert "SwaggerUIBundle" in bundle
    assert client.get("/openapi.json").status_code == 401  # the schema still needs the key
    assert client.get("/redoc").status_code == 404  # it could only load from a CDN


PAGE_HARNESS = """
global.window = global;
const captured = [];
const store = {};
global.sessionStorage = {getItem: k => (k in store ? store[k] : null), setItem: (k, v) => { store[k] = v; }};
const elements = {};
global.document = {getElementById: id => (elements[id] ||= {
  textContent: "", value: "", listeners: {},
  addEventListener(kind, fn) { this.listeners[kind] = fn; },
})};
global.SwaggerUIBundle = Object.assign(cfg => { captured.push(cfg); return {}; }, {presets: {apis: {}}});
eval(process.argv[1]);
const spec = () => captured.at(-1).requestInterceptor({url: captured.at(-1).url, headers: {}});
const before = spec();
document.getElementById("key").value = "s3cret";
elements["key-bar"].listeners.submit({preventDefault() {}});
const after = spec();
const chosen = captured.at(-1).requestInterceptor({url: "/runs", headers: {Authorization: "Bearer other"}});
console.log(JSON.stringify({url: captured.at(-1).url, before: before.headers, after: after.headers,
  chosen: chosen.headers, field: elements["key"].value}));
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node to run the page's script")
def test_a_key_typed_into_the_page_is_sent_with_swaggers_requests(client) -> None:
    html = client.get("/docs").text
    script = html.split("<script>")[1].split("</script>")[0]
    out = subprocess.run(
        ["node", "-e", PAGE_HARNESS, script], capture_output=True, text=True, check=True
    )
    seen = json.loads(out.stdout)
    assert seen["url"] == "/openapi.json"
    assert seen["before"] == {}  # no key typed yet: nothing is sent
    assert seen["after"] == {"Authorization": "Bearer s3cret"}
    assert seen["chosen"] == {"Authorization": "Bearer other"}  # Swagger's Authorize wins
    assert seen["field"] == ""  # the key does not stay visible in the form
    with_key = client.get("/openapi.json", headers={"Authorization": "Bearer s3cret"})
    assert with_key.status_code == 200 and "/runs" in with_key.json()["paths"]
