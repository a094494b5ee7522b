"""The memory browser in a real headless browser (Chromium, driven by Playwright) against a
live server with the real embedding model: log in with a key, open an agent, find a memory
by a paraphrase, change its importance, forget it and undo, each change checked through
the REST API; a read-only key cannot edit; requests without the login cookie or the CSRF
token are refused; keyboard navigation; light and dark. No request leaves loopback and
no page raises a JavaScript error (the `pages` fixture fails the test otherwise)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.conftest import API_KEY, BrowserPages, LiveServer, server_command, target_env

AGENT = "ui-nora"
FACTS = [
    "My sister Ana moved to Lisbon last spring and works there as a night nurse.",
    "The quarterly billing report is due on the first Monday of each month.",
    "I prefer window seats on long flights and always bring noise-cancelling headphones.",
    "Our team standup moved to 9:30 because of the new timezone split.",
    "The garage door code was changed to 4471 after the break-in.",
    "Dad's birthday dinner is planned at the Thai place on Elm Street.",
]
PARAPHRASE = "In which city does my sibling live nowadays?"


@pytest.fixture(scope="module")
def stored(live_server: LiveServer) -> dict[str, str]:
    """The agent's memories, stored through the REST API: content -> id."""
    ids = {}
    with live_server.http() as http:
        for i, text in enumerate(FACTS):
            answer = http.post("/v1/memory/store", json={
                "agent_id": AGENT, "content": text, "importance": 0.5,
                "tags": ["family"] if i in (0, 5) else ["work"],
                "session_id": "sess-ui-1"})
            assert answer.status_code == 200, answer.text
            ids[text] = answer.json()["memory"]["id"]
    return ids


def rest_memory(live_server: LiveServer, memory_id: str) -> httpx.Response:
    with live_server.http() as http:
        return http.get(f"/v1/memory/get/{memory_id}", params={"agent_id": AGENT})


def log_in(page: Page, live_server: LiveServer, key: str, path: str) -> None:
    page.goto(live_server.url + path)
    expect(page).to_have_url(re.compile(r"/ui/login\?next="))
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(re.escape(path) + "$"))
    # the URL changes when the answer starts; styles apply once the page has loaded
    page.wait_for_load_state("load")


def cookies_of(page: Page) -> list[dict[str, Any]]:
    return list(page.context.cookies())


def test_log_in_find_edit_forget_and_undo(live_server: LiveServer, stored: dict[str, str],
                                          pages: BrowserPages) -> None:
    page: Page = pages.new()  # type: ignore[assignment]
    log_in(page, live_server, API_KEY, f"/ui/agents/{AGENT}")
    # the session cookie is not the key, and scripts cannot read it
    [cookie] = [c for c in cookies_of(page) if c["name"] == "dakera_ui"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert API_KEY not in cookie["value"] and cookie["path"] == "/ui"
    assert page.evaluate("document.cookie") == ""
    expect(page.get_by_role("heading", name=AGENT)).to_be_visible()
    expect(page.locator("table.memories tbody tr")).to_have_count(len(FACTS))

    # find the memory by a paraphrase: the real model's recall, with its score parts
    page.get_by_label("Search this agent's memories").fill(PARAPHRASE)
    page.keyboard.press("Enter")
    first = page.locator("ol.hits > li").first
    expect(first).to_contain_text("Lisbon")
    expect(first.locator("dl.score")).to_contain_text("vector")
    expect(first.locator("dl.score")).to_contain_text("importance")

    # open it and raise its importance
    first.get_by_role("link").click()
    memory_id = stored[FACTS[0]]
    expect(page).to_have_url(re.compile(f"/ui/memories/{memory_id}"))
    page.get_by_label("Importance (0 to 1)").fill("0.93")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_contain_text("Saved")
    before = rest_memory(live_server, memory_id).json()
    assert before["importance"] == pytest.approx(0.93)

    # bad input: the API's validation, next to the field
    page.get_by_label("Importance (0 to 1)").fill("1.7")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#err-importance")).to_contain_text("between 0 and 1")
    assert rest_memory(live_server, memory_id).json()["importance"] == pytest.approx(0.93)

    # forget it, then undo: it comes back as it was
    page.get_by_role("button", name="Forget this memory").click()
    expect(page.get_by_role("status").first).to_contain_text(f"Forgotten {memory_id}")
    assert rest_memory(live_server, memory_id).status_code == 404
    page.get_by_role("button", name="Undo").click()
    expect(page.get_by_role("status").first).to_contain_text(f"Restored {memory_id}")
    after = rest_memory(live_server, memory_id)
    assert after.status_code == 200
    restored = after.json()
    for field in ("content", "importance", "tags", "created_at", "session_id"):
        assert restored[field] == before[field], field
    # and recall finds it again (its vector is back in the index)
    with live_server.http() as http:
        hits = http.post("/v1/memory/recall", json={"agent_id": AGENT, "query": PARAPHRASE,
                                                     "top_k": 1}).json()["memories"]
    assert hits[0]["memory"]["id"] == memory_id


def test_forget_in_the_list_and_undo_in_place(live_server: LiveServer,
                                              stored: dict[str, str],
                                              pages: BrowserPages) -> None:
    """htmx: the row turns into "Forgotten · Undo" without leaving the page."""
    page: Page = pages.new()  # type: ignore[assignment]
    log_in(page, live_server, API_KEY, f"/ui/agents/{AGENT}")
    memory_id = stored[FACTS[4]]
    row = page.locator(f"#row-{memory_id}")
    row.get_by_role("button", name="Forget this memory").click()
    expect(row).to_contain_text("Forgotten")
    assert rest_memory(live_server, memory_id).status_code == 404
    assert page.url.endswith(f"/ui/agents/{AGENT}")  # no navigation
    row.get_by_role("button", name="Undo").click()
    expect(row).to_contain_text("garage door")
    assert rest_memory(live_server, memory_id).status_code == 200


def test_a_read_only_key_sees_no_edit_and_cannot_edit(live_server: LiveServer,
                                                      stored: dict[str, str],
                                                      pages: BrowserPages) -> None:
    with live_server.http() as http:
        made = http.post("/admin/keys", json={"name": "ui-reader", "scope": "read",
                                              "namespaces": [f"_dakera_agent_{AGENT}"]})
    assert made.status_code == 201, made.text
    page: Page = pages.new()  # type: ignore[assignment]
    memory_id = stored[FACTS[1]]
    path = f"/ui/memories/{memory_id}?agent_id={AGENT}"
    page.goto(live_server.url + path)
    page.get_by_label("API key").fill(made.json()["key"])
    page.get_by_role("button", name="Log in").click()
    expect(page.locator(".content-full")).to_contain_text("billing report")
    expect(page.get_by_text("(read-only)")).to_be_visible()
    assert page.get_by_role("button", name="Save").count() == 0
    assert page.get_by_role("button", name="Forget this memory").count() == 0
    # a form sent anyway (with a valid token) is refused by the server
    token = page.locator("input[name=csrf]").first.get_attribute("value")
    refused = page.request.post(
        f"{live_server.url}/ui/memories/{memory_id}/edit?agent_id={AGENT}",
        form={"csrf": token or "", "content": "changed", "importance": "0.1", "tags": ""},
        max_redirects=0)
    assert refused.status == 403 and "INSUFFICIENT_SCOPE" in refused.text()
    forget = page.request.post(
        f"{live_server.url}/ui/memories/{memory_id}/forget?agent_id={AGENT}",
        form={"csrf": token or ""}, max_redirects=0)
    assert forget.status == 403
    memory = rest_memory(live_server, memory_id).json()
    assert memory["content"] == FACTS[1] and memory["importance"] == pytest.approx(0.5)
    # another agent's pages are outside its namespaces
    other = page.goto(live_server.url + "/ui/agents/someone-else")
    assert other is not None and other.status == 403


def test_requests_without_the_cookie_or_the_token_are_refused(
        live_server: LiveServer, stored: dict[str, str], pages: BrowserPages) -> None:
    memory_id = stored[FACTS[2]]
    target = f"{live_server.url}/ui/memories/{memory_id}/forget?agent_id={AGENT}"
    # no login cookie at all: not logged in
    bare = httpx.post(target, data={"csrf": "x"})
    assert bare.status_code == 401
    # logged in, but without the token, or with a wrong one
    page: Page = pages.new()  # type: ignore[assignment]
    log_in(page, live_server, API_KEY, f"/ui/agents/{AGENT}")
    for form in ({}, {"csrf": "0" * 64}):
        refused = page.request.post(target, form=form, max_redirects=0)
        assert refused.status == 403 and "CSRF_TOKEN_INVALID" in refused.text()
    # the token of another browser's session does not fit this one
    other: Page = pages.new()  # type: ignore[assignment]
    log_in(other, live_server, API_KEY, f"/ui/agents/{AGENT}")
    foreign = other.locator("input[name=csrf]").first.get_attribute("value")
    refused = page.request.post(target, form={"csrf": foreign or ""}, max_redirects=0)
    assert refused.status == 403
    assert rest_memory(live_server, memory_id).status_code == 200
    # the raw key as a cookie is no login
    as_cookie = httpx.post(target, data={"csrf": "x"}, cookies={"dakera_ui": API_KEY})
    assert as_cookie.status_code == 401
    # logging out ends the session on the server: the old cookie no longer works
    [cookie] = [c for c in cookies_of(page) if c["name"] == "dakera_ui"]
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile("/ui/login"))
    stale = httpx.get(f"{live_server.url}/ui/agents/{AGENT}",
                      cookies={"dakera_ui": cookie["value"]})
    assert stale.status_code == 303 and "/ui/login" in stale.headers["location"]


def test_keyboard_navigation(live_server: LiveServer, stored: dict[str, str],
                             pages: BrowserPages) -> None:
    page: Page = pages.new()  # type: ignore[assignment]
    log_in(page, live_server, API_KEY, f"/ui/agents/{AGENT}")
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.keyboard.press("/")
    expect(page.locator("#q")).to_be_focused()
    page.keyboard.press("Escape")
    page.keyboard.press("j")
    page.keyboard.press("j")
    focused = page.evaluate("document.activeElement.closest('[data-row]').id")
    rows = page.locator("table.memories tbody tr")
    assert focused == rows.nth(1).get_attribute("id")
    outline = page.evaluate("getComputedStyle(document.activeElement.closest('[data-row]'))"
                            ".outlineStyle")
    assert outline != "none"  # the focused row is visible
    page.keyboard.press("k")
    assert page.evaluate("document.activeElement.closest('[data-row]').id") == \
        rows.nth(0).get_attribute("id")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile("/ui/memories/"))
    page.wait_for_load_state("load")  # the page's key handlers are attached by then
    page.keyboard.press("e")
    expect(page.locator("#content")).to_be_focused()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_light_and_dark(live_server: LiveServer, stored: dict[str, str],
                        pages: BrowserPages, scheme: str) -> None:
    page: Page = pages.new(color_scheme=scheme)  # type: ignore[assignment]
    log_in(page, live_server, API_KEY, f"/ui/agents/{AGENT}/overview")
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    text = page.evaluate("getComputedStyle(document.body).color")
    assert (background == "rgb(255, 255, 255)") == (scheme == "light")
    assert background != text
    expect(page.locator("svg.plot").first).to_be_visible()
    csp = page.request.get(f"{live_server.url}/ui/agents/{AGENT}").headers[
        "content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp


@pytest.fixture(scope="module")
def binary_server(tmp_path_factory: pytest.TempPathFactory,
                  binary_cache_dir: Path) -> Iterator[LiveServer]:
    """The frozen binary (DAKERA_TEST_BINARY, set by `make test`) serving on loopback."""
    command = (server_command("binary"), target_env("binary", binary_cache_dir))
    server = LiveServer(tmp_path_factory.mktemp("ui-binary") / "data", command=command).start()
    yield server
    if server.proc and server.proc.poll() is None:
        server.stop()


def test_the_binary_serves_the_same_pages(binary_server: LiveServer,
                                          pages: BrowserPages) -> None:
    """Templates, CSS, htmx and the page script are bundled: log in, search by a
    paraphrase with the bundled model, forget in the list and undo in place."""
    with binary_server.http() as http:
        ids = [http.post("/v1/memory/store", json={"agent_id": AGENT, "content": text})
               .json()["memory"]["id"] for text in FACTS[:4]]
    page: Page = pages.new()  # type: ignore[assignment]
    log_in(page, binary_server, API_KEY, f"/ui/agents/{AGENT}")
    assert page.evaluate("typeof htmx") == "object"  # the vendored htmx came with it
    assert page.evaluate("getComputedStyle(document.querySelector('table.memories'))"
                         ".borderCollapse") == "collapse"  # and the stylesheet
    expect(page.locator("table.memories tbody tr")).to_have_count(4)
    row = page.locator(f"#row-{ids[2]}")
    row.get_by_role("button", name="Forget this memory").click()
    expect(row).to_contain_text("Forgotten")
    assert rest_memory(binary_server, ids[2]).status_code == 404
    row.get_by_role("button", name="Undo").click()
    expect(row).to_contain_text("window seats")
    assert rest_memory(binary_server, ids[2]).status_code == 200
    page.get_by_label("Search this agent's memories").fill(PARAPHRASE)
    page.keyboard.press("Enter")
    expect(page.locator("ol.hits > li").first).to_contain_text("Lisbon")
