"""The web UI can be added to a phone's home screen: every page links a web app manifest whose icons exist, have the
size they claim, and are served from this server (nothing from elsewhere)."""

from __future__ import annotations

import json
import struct
from typing import Any

import httpx


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_every_page_links_a_manifest_whose_icons_are_served(server: Any) -> None:
    for page in ("/login", "/signup", "/api-docs"):
        html = httpx.get(server.url + page).text
        assert '<link rel="manifest" href="/static/manifest.webmanifest">' in html, page
        assert '<meta name="theme-color"' in html and 'rel="apple-touch-icon" href="/static/icon-192.png"' in html
    r = httpx.get(server.url + "/static/manifest.webmanifest")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/manifest+json")
    manifest = json.loads(r.text)
    assert manifest["start_url"] == "/" and manifest["scope"] == "/" and manifest["display"] == "standalone"
    assert manifest["name"] == "alarmcloud"
    sizes = set()
    for icon in manifest["icons"]:
        assert icon["src"].startswith("/static/")  # from this server
        got = httpx.get(server.url + icon["src"])
        assert got.status_code == 200 and got.headers["content-type"] == icon["type"], icon
        if icon["type"] == "image/png":
            w, h = _png_size(got.content)
            assert icon["sizes"] == f"{w}x{h}", icon
            sizes.add(w)
    assert {192, 512} <= sizes  # what phones ask for to install an app
