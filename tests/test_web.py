"""The memory browser in process: its reads (keyset pages, the scan budget of filters, the
overview's counts), forget with undo, the decay forecast against real decay passes, login
sessions on the injectable clock, and the pages through the real app (gate, scopes,
cookies, CSRF, errors as pages). The browser itself: tests/test_web_browser.py."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from app.api import create_app
from app.errors import AuthenticationError, NotFoundError, ValidationError
from app.models import RecallHit
from app.service import Service
from app.service.keys import ROOT
from app.service.logins import LoginRequired
from app.web import pages_router
from app.web.static import ASSET_VERSION
from tests.conftest import API_KEY, Clock, MakeService

HOST = "http://127.0.0.1:7700"


def fill(service: Service, clock: Clock, n: int, agent: str = "a") -> list[str]:
    """n memories, one a minute (importance and tags vary); their ids, oldest first."""
    ids = []
    for i in range(n):
        clock.now += 60
        result = service.memories.store(
            agent, f"memory {i} about topic {i % 5}", importance=round((i * 37 % 100) / 100, 2),
            tags=["rare"] if i % 7 == 3 else ["common"], session_id=f"s{i // 10}")
        ids.append(result.memory.id)
    return ids


def walk(service: Service, agent: str, **options: Any) -> tuple[list[str], list[str]]:
    """Every page forward from the first, then back from the last: the ids of each way."""
    forward, pages = [], []
    page = service.browse.page(agent, limit=4, **options)
    while True:
        pages.append(page)
        forward += [m.id for m in page["memories"]]
        if page["next"] is None:
            break
        page = service.browse.page(agent, limit=4, after=page["next"], **options)
    backward: list[str] = []
    page = pages[-1]
    while True:
        backward = [m.id for m in page["memories"]] + backward
        if page["prev"] is None:
            break
        page = service.browse.page(agent, limit=4, before=page["prev"], **options)
    return forward, backward


def test_keyset_pages_walk_every_memory_once_in_each_order(make_service: MakeService,
                                                           clock: Clock) -> None:
    service = make_service()
    ids = fill(service, clock, 23)
    everything = service.memories.batch_recall("a", limit=100)["memories"]
    expected = {
        "recent": list(reversed(ids)), "oldest": ids,
        "importance": [m.id for m in sorted(everything, key=lambda m: (-m.importance,
                                                                       -m.rowid))],
    }
    for sort, order in expected.items():
        forward, backward = walk(service, "a", sort=sort)
        assert forward == order, sort
        assert backward == order, sort
    # last recalled first: a recall touches some, they come first
    clock.now += 60
    service.recall.recall("a", "topic 3", top_k=3)
    service.flush_access()
    forward, _ = walk(service, "a", sort="accessed")
    assert len(forward) == 23 and len(set(forward)) == 23
    recalled = sorted(forward[:3])
    assert all(service.memories.get(i, "a").access_count == 1 for i in recalled)
    # a filter keeps the order and pages on (the recall raised some importances)
    everything = service.memories.batch_recall("a", limit=100)["memories"]
    forward, backward = walk(service, "a", sort="importance", min_importance="0.5")
    assert forward == backward == [m.id for m in sorted(everything, key=lambda m: (
        -m.importance, -m.rowid)) if m.importance >= 0.5]
    with pytest.raises(ValidationError, match="'sort'"):
        service.browse.page("a", sort="random")
    with pytest.raises(ValidationError, match="'after'"):
        service.browse.page("a", after="yesterday")
    with pytest.raises(ValidationError, match="'min_importance'"):
        service.browse.page("a", min_importance="lots")


def test_a_rare_filter_reads_a_bounded_stretch_per_page(make_service: MakeService,
                                                        clock: Clock,
                                                        monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    """A filter few memories pass looks through SCAN memories per page and says where it
    stopped; following the pages finds every match, none twice."""
    import app.service.browse as browse

    monkeypatch.setattr(browse, "SCAN", 6)
    service = make_service()
    ids = fill(service, clock, 40)
    rare = [i for n, i in enumerate(ids) if n % 7 == 3][::-1]  # newest first
    found, partial_pages = [], 0
    page = service.browse.page("a", tag="rare", limit=4)
    while True:
        found += [m.id for m in page["memories"]]
        partial_pages += page["partial"]
        if page["next"] is None:
            break
        page = service.browse.page("a", tag="rare", limit=4, after=page["next"])
    assert found == rare
    assert partial_pages >= 5  # 40 memories, 6 a page: the budget stopped most pages
    # a common filter fills its pages without stopping early
    common = service.browse.page("a", tag="common", limit=4)
    assert len(common["memories"]) == 4 and not common["partial"]


def test_forget_keeps_the_memory_restorable_as_it_was(make_service: MakeService,
                                                     clock: Clock) -> None:
    service = make_service()
    kept = service.memories.store("a", "the spare key is under the blue flowerpot",
                                  importance=0.8, tags=["home"], metadata={"room": "porch"},
                                  session_id="s1", event_time=1_700_000_000).memory
    service.memories.store("a", "an unrelated memory about the weather")
    service.recall.recall("a", "spare key flowerpot")
    service.flush_access()
    clock.now += 3600
    before = service.memories.get(kept.id, "a")
    state = service.parts().store.decay.state(before.rowid)
    done = service.memories.discard("a", kept.id)
    assert done["restorable"] and done["restorable_until"] == int(clock.now) + 720 * 3600
    with pytest.raises(NotFoundError):
        service.memories.get(kept.id, "a")
    [trashed] = [t for t in service.browse.trash("a") if t["id"] == kept.id]
    assert trashed["kind"] == "forgotten" and "flowerpot" in trashed["content"]
    assert service.recall.search("a", "spare key flowerpot").hits[0].memory.id != kept.id

    clock.now += 600
    back = service.memories.restore_deduplicated("a", kept.id)
    again = service.memories.get(kept.id, "a")
    for field in ("content", "importance", "tags", "metadata", "session_id", "created_at",
                  "updated_at", "last_accessed_at", "access_count", "event_time"):
        assert getattr(again, field) == getattr(before, field), field
    assert back.id == kept.id
    assert service.parts().store.decay.state(again.rowid) == state  # decays from where it was
    assert service.recall.search("a", "spare key flowerpot").hits[0].memory.id == kept.id
    assert not [t for t in service.browse.trash("a") if t["id"] == kept.id]
    with pytest.raises(NotFoundError):
        service.memories.restore_deduplicated("a", kept.id + "x")


def test_forget_without_a_trash_says_so(make_service: MakeService, clock: Clock) -> None:
    service = make_service(dedup_retention_hours=0)
    memory = service.memories.store("a", "gone for good").memory
    assert service.memories.discard("a", memory.id)["restorable"] is False
    with pytest.raises(NotFoundError):
        service.memories.restore_deduplicated("a", memory.id)


def test_the_decay_forecast_is_what_decay_passes_do(make_service: MakeService,
                                                   clock: Clock) -> None:
    """A memory never recalled falls below the floor when the forecast says: a pass an
    hour before leaves it, a pass an hour after deletes it."""
    for strategy in ("exponential", "linear", "step"):
        service = make_service(decay_strategy=strategy)
        memory = service.memories.store(f"d-{strategy}", "a fading memory",
                                        importance=0.5, memory_type="semantic").memory
        forecast = service.decay.forecast(memory)
        when = forecast["below_floor_at"]
        assert when is not None and when > clock.now
        assert forecast["points"][0] == (memory.created_at, 0.5)
        clock.now = when - 3600
        service.decay.run()
        assert service.memories.get(memory.id, memory.agent_id).importance >= 0.01
        clock.now = when + 3600
        service.decay.run()
        with pytest.raises(NotFoundError):
            service.memories.get(memory.id, memory.agent_id)
        service.close()


def test_recall_hits_carry_their_score_parts(make_service: MakeService) -> None:
    service = make_service()
    service.memories.store("a", "Caroline: I went hiking in the Alps", importance=0.9)
    service.memories.store("a", "what did Caroline do in the Alps?")
    hits = service.recall.search("a", "Caroline hiking Alps").hits
    parts = hits[0].factors
    assert parts is not None and set(parts) == {"importance", "recency", "speaker",
                                                "question", "context"}
    assert parts["importance"] == pytest.approx(1.2) and parts["speaker"] > 1
    product = (parts["importance"] * parts["recency"] * parts["speaker"]
               * parts["question"])
    assert hits[0].rank_score == pytest.approx(hits[0].score * product, rel=1e-6) or \
        hits[0].score == 1.0
    assert "factors" not in RecallHit(hits[0].memory, 0.5, 0.5, factors={"x": 1}).to_dict()


def test_overview_counts_come_from_indexes(make_service: MakeService, clock: Clock) -> None:
    service = make_service()
    fill(service, clock, 30)
    service.memories.store("b", "another agent", memory_type="semantic", importance=1.0)
    mine = service.browse.overview("a")
    assert mine["by_type"] == {"episodic": 30}
    assert sum(mine["importance"]) == 30 and len(mine["importance"]) == 20
    assert sum(mine["created"]["counts"]) == 30
    everyone = service.browse.overview()
    assert everyone["by_type"] == {"episodic": 30, "semantic": 1}
    assert everyone["importance"][-1] >= 1  # importance 1.0 lands in the last range
    assert everyone["agents"] == 2 and everyone["indexes"]["vectors"] == 31


def test_login_sessions(make_service: MakeService, clock: Clock) -> None:
    service = make_service(api_key=API_KEY, ui_session_hours=2)
    logins = service.logins
    session_id, who, expires = logins.open(f"  {API_KEY} ")
    assert who is ROOT and expires == int(clock.now) + 7200
    assert API_KEY not in session_id and logins.principal(session_id) is ROOT
    token = logins.csrf_token(session_id)
    assert logins.csrf_ok(session_id, token) and not logins.csrf_ok("other", token)
    assert not logins.csrf_ok(session_id, None) and not logins.csrf_ok(None, token)
    clock.now += 7200
    with pytest.raises(LoginRequired):
        logins.principal(session_id)
    # a key's login ends when the key stops working, and never outlives the key
    made = service.keys.create(ROOT, name="ui", scope="read", expires_in_days=1)
    session_id, who, expires = logins.open(made["key"])
    assert who.key_id == made["key_id"] and who.scope == "read"
    service.keys.deactivate(made["key_id"])
    with pytest.raises(LoginRequired, match="deactivated"):
        logins.principal(session_id)
    with pytest.raises(LoginRequired):  # and the session is gone
        logins.principal(session_id)
    with pytest.raises(AuthenticationError):
        logins.open("dk_" + "0" * 32)
    with pytest.raises(ValidationError, match="'api_key'"):
        logins.open("")
    logins.close(session_id)
    assert logins.active() == 0


@pytest.fixture
def app_client(make_service: MakeService, clock: Clock) -> Iterator[tuple[TestClient[Any],
                                                                        Service]]:
    service = make_service(api_key=API_KEY)
    fill(service, clock, 12)
    app = create_app(service, routers=[pages_router(service)], manage_lifecycle=False)
    with TestClient(app, base_url=HOST) as client:
        yield client, service


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert found, "no CSRF token on the page"
    return found.group(1)


def log_in(client: TestClient[Any], key: str = API_KEY) -> None:
    form = client.get("/ui/login")
    assert form.status_code == 200
    done = client.post("/ui/login", data={"csrf": csrf_of(form.text), "api_key": key,
                                          "next": "/ui/agents/a"}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/ui/agents/a", done.text


def test_pages_through_the_app(app_client: tuple[TestClient[Any], Service]) -> None:
    client, _ = app_client
    # without a login: to the form, coming back afterwards
    first = client.get("/ui/agents/a?sort=importance", follow_redirects=False)
    assert first.status_code == 303
    assert first.headers["location"] == "/ui/login?next=%2Fui%2Fagents%2Fa%3Fsort%3Dimportance"
    # a wrong key: the message next to the field
    form = client.get("/ui/login")
    wrong = client.post("/ui/login", data={"csrf": csrf_of(form.text), "api_key": "dk_nope"})
    assert wrong.status_code == 401 and 'id="err-api_key"' in wrong.text
    log_in(client)
    cookie = client.cookies.get("dakera_ui")
    assert cookie and API_KEY not in cookie
    for path in ("/ui", "/ui/agents/a", "/ui/agents/a?q=topic+3", "/ui/agents/a/sessions",
                 "/ui/agents/a/sessions/s0", "/ui/agents/a/overview", "/ui/overview",
                 "/ui/agents/a/trash"):
        page = client.get(path)
        assert page.status_code == 200, (path, page.text[:500])
        assert page.headers["server-timing"].startswith("app;dur=")
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert page.headers["cache-control"] == "no-store"
        assert "cdn" not in page.text.lower() and "https://" not in page.text
    memory_id = re.search(r'/ui/memories/([^"?]+)\?agent_id=a', client.get("/ui/agents/a")
                          .text).group(1)  # type: ignore[union-attr]
    detail = client.get(f"/ui/memories/{memory_id}?agent_id=a")
    assert detail.status_code == 200 and "Decay forecast" in detail.text
    # the API's key works on the pages too (curl, the page benchmark)
    with TestClient(client.app, base_url=HOST) as bare:  # no login cookie
        keyed = bare.get("/ui/agents/a", headers={"Authorization": f"Bearer {API_KEY}"})
    assert keyed.status_code == 200
    # errors are pages
    missing = client.get("/ui/memories/mem_nothing?agent_id=a")
    assert missing.status_code == 404 and "text/html" in missing.headers["content-type"]
    # the page knows no open redirects
    form = client.get("/ui/login")
    log = client.post("/ui/login", data={"csrf": csrf_of(form.text), "api_key": API_KEY,
                                         "next": "https://evil.example/"},
                      follow_redirects=False)
    assert log.headers["location"] == "/ui/"


def test_forms_show_the_api_validation_next_to_the_field(
        app_client: tuple[TestClient[Any], Service]) -> None:
    client, service = app_client
    log_in(client)
    for query, field in (("type=bogus", "memory_type"), ("min_importance=2", "min_importance"),
                         ("sort=sideways", "sort"), ("after=nonsense", "_form"),
                         ("q=+", "_form")):
        page = client.get(f"/ui/agents/a?{query}")
        if query == "q=+":  # an empty query is no search: the listing
            assert page.status_code == 200
            continue
        assert page.status_code == 400, query
        assert f'id="err-{field}"' in page.text, query
    memory = service.memories.batch_recall("a", limit=1)["memories"][0]
    page = client.get(f"/ui/memories/{memory.id}?agent_id=a")
    token = csrf_of(page.text)
    url = f"/ui/memories/{memory.id}/edit?agent_id=a"
    bad = client.post(url, data={"csrf": token, "content": " ", "importance": "0.5",
                                 "tags": ""})
    assert bad.status_code == 400 and 'id="err-content"' in bad.text
    assert "must not be empty" in bad.text
    bad = client.post(url, data={"csrf": token, "content": memory.content,
                                 "importance": "high", "tags": ""})
    assert bad.status_code == 400 and 'id="err-importance"' in bad.text
    assert service.memories.get(memory.id, "a").importance == memory.importance
    good = client.post(url, data={"csrf": token, "content": memory.content,
                                  "importance": "0.25", "tags": "x, y ,, z"},
                       follow_redirects=False)
    assert good.status_code == 303 and good.headers["location"].endswith("&saved=1")
    changed = service.memories.get(memory.id, "a")
    assert changed.importance == 0.25 and changed.tags == ["x", "y", "z"]
    assert changed.rowid == memory.rowid  # same content: not embedded again


def test_htmx_forget_and_undo_swap_one_row(app_client: tuple[TestClient[Any], Service]
                                           ) -> None:
    client, service = app_client
    log_in(client)
    memory = service.memories.batch_recall("a", limit=1)["memories"][0]
    token = csrf_of(client.get("/ui/agents/a").text)
    gone = client.post(f"/ui/memories/{memory.id}/forget?agent_id=a", data={"csrf": token},
                       headers={"HX-Request": "true"})
    assert gone.status_code == 200 and gone.text.lstrip().startswith('<tr class="forgotten"')
    back = client.post(f"/ui/agents/a/trash/{memory.id}/restore", data={"csrf": token},
                       headers={"HX-Request": "true"})
    assert back.status_code == 200 and f'id="row-{memory.id}"' in back.text
    assert service.memories.get(memory.id, "a").content == memory.content
    # a script's request may carry the token as a header instead
    again = client.post(f"/ui/memories/{memory.id}/forget?agent_id=a",
                        headers={"X-CSRF-Token": token}, follow_redirects=False)
    assert again.status_code == 303


def test_a_key_less_server_needs_no_login_but_tokens_all_the_same(
        make_service: MakeService, clock: Clock) -> None:
    service = make_service()
    fill(service, clock, 3)
    app = create_app(service, routers=[pages_router(service)], manage_lifecycle=False)
    memory = service.memories.batch_recall("a", limit=1)["memories"][0]
    with TestClient(app, base_url=HOST) as client:
        page = client.get("/ui/agents/a")
        assert page.status_code == 200 and "no login" in page.text
        assert "HttpOnly" in page.headers["set-cookie"]
        assert "SameSite=Strict" in page.headers["set-cookie"]
        assert client.get("/ui/login", follow_redirects=False).status_code == 303
        token = csrf_of(page.text)
        target = f"/ui/memories/{memory.id}/forget?agent_id=a"
        assert client.post(target, data={"csrf": "bad"}).status_code == 403
        with TestClient(app, base_url=HOST) as stranger:  # no cookie: the token is no use
            assert stranger.post(target, data={"csrf": token}).status_code == 403
        # a page elsewhere posting here is refused by its Origin before anything else
        cross = client.post(target, data={"csrf": token},
                            headers={"Origin": "http://evil.example"})
        assert cross.status_code == 403 and "CROSS_ORIGIN" in cross.text
        assert service.memories.get(memory.id, "a")
        done = client.post(target, data={"csrf": token}, follow_redirects=False)
        assert done.status_code == 303
    with TestClient(app, base_url="http://evil.example") as rebound:
        refused = rebound.get("/ui")
        assert refused.status_code == 421 and "text/html" in refused.headers["content-type"]


def test_static_files_and_the_switch(make_service: MakeService) -> None:
    service = make_service()
    app = create_app(service, routers=[pages_router(service)], manage_lifecycle=False)
    with TestClient(app, base_url=HOST) as client:
        css = client.get(f"/ui/static/style.css?v={ASSET_VERSION}")
        assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
        assert "immutable" in css.headers["cache-control"]
        assert "no-cache" in client.get("/ui/static/htmx.min.js").headers["cache-control"]
        assert client.get("/ui/static/nothing.js").status_code == 404
    service.close()
    off = make_service(ui=False)
    from app.cli.server import _app

    with TestClient(_app(off), base_url=HOST) as client:
        assert client.get("/ui").status_code == 404


def test_the_search_page_shows_the_score_parts_the_engine_returns(
        make_service: MakeService) -> None:
    """Known parts under the page's names, neutral optional ones left out, a part the page
    does not know under the engine's own name (the engine may grow or rename parts)."""
    from app.web.pages import TIMES as X
    from app.web.pages import score_parts

    memory = make_service().memories.store("a", "something").memory
    hit = RecallHit(memory, 0.5, 0.6, vector_score=0.7, text_score=None,
                    factors={"importance": 1.2, "recency": 1.0, "speaker": 1.0,
                             "question": 0.5, "context": 0.0, "novelty": 0.25})
    assert score_parts(hit) == [
        ("score", "0.600"), ("fused", "0.500"), ("vector", "0.700"), ("BM25", "-"),
        ("importance", X + "1.200"), ("recency", X + "1.000"), ("neighbourhood", "-"),
        ("question", X + "0.500"), ("novelty", "0.250")]
    assert score_parts(RecallHit(memory, 0.5, 0.5))[:2] == [("score", "0.500"),
                                                            ("fused", "0.500")]
