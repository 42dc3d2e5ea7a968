"""Camera sites: the owner names where each camera is (Home, Farm); cameras are listed by site and alarms filtered
by it, in the API, downloads and the web UI; a sub-user sees only the sites of their own cameras."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.conftest import PASSWORD  # type: ignore[import-not-found]


def test_cameras_by_site_and_alarms_filtered_by_it(api: Any, clip: Path) -> None:
    owner = api().register("two-places@example.com")
    barn = owner.camera("Barn", site="  Farm   North ")
    gate = owner.camera("Gate", site="Home")
    shed = owner.camera("Shed")
    assert (barn["site"], gate["site"], shed["site"]) == ("Farm North", "Home", None)
    events = {c["name"]: owner.upload_analysed(owner.upload_credentials(c["id"]), clip)["id"]
              for c in (barn, gate, shed)}

    def ids(query: str) -> list[str]:
        r = owner.get("/api/v1/events" + query)
        assert r.status_code == 200, r.text
        return [e["id"] for e in r.json()["items"]]

    assert ids("?site=Farm%20North") == [events["Barn"]]
    assert ids("?site=Home") == [events["Gate"]]
    assert ids("?site=Nowhere") == []
    r = owner.post("/api/v1/events/download", json={"site": "Home", "count_only": True})
    assert r.status_code == 200 and r.json()["count"] == 1

    # moving a camera to another site, or to none; the field is checked
    r = owner.patch(f"/api/v1/cameras/{shed['id']}", json={"site": "Home"})
    assert r.status_code == 200 and r.json()["site"] == "Home"
    assert sorted(ids("?site=Home")) == sorted([events["Gate"], events["Shed"]])
    assert owner.patch(f"/api/v1/cameras/{shed['id']}", json={"site": ""}).json()["site"] is None
    assert owner.patch(f"/api/v1/cameras/{shed['id']}", json={"name": "Shed 2"}).json()["site"] is None
    for bad in ({"site": "x" * 61}, {"site": 3}, {"site": ["Home"]}):
        r = owner.patch(f"/api/v1/cameras/{gate['id']}", json=bad)
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_field", bad
    assert owner.get(f"/api/v1/cameras/{gate['id']}").json()["site"] == "Home"  # unchanged

    # the cameras page lists them by site, the cameras without one last; the timeline offers the sites
    page = owner.get("/cameras").text
    heads = [page.index(f'data-site="{s}"') for s in ("Farm North", "Home", "")]
    assert heads == sorted(heads)
    assert heads[0] < page.index(">Barn<") < heads[1] < page.index(">Gate<") < heads[2] < page.index(">Shed 2<")
    timeline = owner.get("/?site=Home").text
    assert '<option selected>Home</option>' in timeline and "<option>Farm North</option>" in timeline
    assert f'data-event-id="{events["Gate"]}"' in timeline and f'data-event-id="{events["Barn"]}"' not in timeline

    # a sub-user with the gate only: its site, never the farm's name or clips
    r = owner.post("/api/v1/subusers", json={"email": "neighbour@example.com", "password": PASSWORD,
                                             "rights": {gate["id"]: "view"}})
    assert r.status_code == 201, r.text
    sub = api().login("neighbour@example.com")
    assert [e["id"] for e in sub.get("/api/v1/events?site=Farm%20North").json()["items"]] == []
    assert [e["id"] for e in sub.get("/api/v1/events?site=Home").json()["items"]] == [events["Gate"]]
    for path in ("/", "/cameras", f"/cameras/{gate['id']}"):
        assert "Farm North" not in sub.get(path).text, path
    # another account's sites are its own
    other = api().register("elsewhere@example.com")
    other.camera("Barn", site="Farm North")
    assert [e["id"] for e in other.get("/api/v1/events?site=Farm%20North").json()["items"]] == []
