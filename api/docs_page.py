"""The API's docs: `/openapi.json` behind the key, and a Swagger UI page served offline.

Swagger UI's files come from the installed `swagger-ui-bundle` package (the service runs without
internet, so no CDN). The page itself holds no data and no key, so it opens without one; when
the API has a key, the person types it into the page, which keeps it in the tab's session
storage and adds `Authorization: Bearer <key>` to every request Swagger UI makes (the schema
fetch and "Try it out"). The key is never written into the HTML the server sends.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

from api.deps import AuthDep

ASSETS_URL = "/docs/assets"

PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>{title}</title>
  <link rel="stylesheet" href="{assets}/swagger-ui.css">
  <link rel="icon" type="image/png" href="{assets}/favicon-32x32.png">
  <style>
    #key-bar {{ font: 14px sans-serif; padding: 8px 20px; background: #f3f3f3; }}
    #key-bar input {{ width: 22em; }}
  </style>
</head>
<body>
  <form id="key-bar">
    <label>API key <input id="key" type="password" autocomplete="off"
      placeholder="FINETUNE_AGENT_API_KEY (if the server has one)"></label>
    <button type="submit">Use key</button> <span id="key-state"></span>
  </form>
  <div id="swagger-ui"></div>
  <script src="{assets}/swagger-ui-bundle.js"></script>
  <script>
    const STORED = "finetune-agent-api-key";
    function start() {{
      const key = sessionStorage.getItem(STORED);
      document.getElementById("key-state").textContent = key ? "key set for this tab" : "";
      window.ui = SwaggerUIBundle({{
        url: "{openapi_url}",
        dom_id: "#swagger-ui",
        deepLinking: true,
        presets: [SwaggerUIBundle.presets.apis],
        requestInterceptor: (request) => {{
          if (key && !request.headers.Authorization) {{
            request.headers.Authorization = "Bearer " + key;
          }}
          return request;
        }},
      }});
    }}
    document.getElementById("key-bar").addEventListener("submit", (event) => {{
      event.preventDefault();
      const field = document.getElementById("key");
      sessionStorage.setItem(STORED, field.value);
      field.value = "";
      start();
    }});
    start();
  </script>
</body>
</html>
"""


def add_docs(app: FastAPI) -> None:
    """`/openapi.json` (needs the key when one is set: it lists every route and parameter),
    `/docs` (the Swagger UI page) and its files under `/docs/assets`."""

    @app.get("/openapi.json", include_in_schema=False, dependencies=[AuthDep])
    async def openapi_schema() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return HTMLResponse(docs_html(title=f"{app.title} - docs"))

    app.mount(ASSETS_URL, StaticFiles(directory=str(swagger_ui_path)), name="docs-assets")


def docs_html(*, title: str, openapi_url: str = "/openapi.json") -> str:
    """The Swagger UI page: local assets, the key typed in by the reader, never by the server."""
    return PAGE.format(title=title, assets=ASSETS_URL, openapi_url=openapi_url)
