"""Screenshots of the memory browser, light and dark, for the README (`make screenshots`).

    .venv/bin/python scripts/screenshots.py --out docs

Starts a server (the source tree, the real model) on a throwaway data dir, stores a small
demo agent through the REST API (two sessions, types, tags, importances, a recall so that
something has been recalled), then drives Debian's Chromium with Playwright (the browser
tests' set-up: `make browser-deps`) over the main pages in both colour schemes and writes
docs/ui-<page>-<scheme>.png.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.harness import KEY, Server  # noqa: E402
from tests.conftest import CHROMIUM_ARGS, chromium_path  # noqa: E402

AGENT = "nora"
MEMORIES = [
    ("My sister Ana moved to Lisbon last spring and works there as a night nurse.",
     "semantic", 0.8, ["family"], "chat-0412"),
    ("Ana's birthday is on the 3rd of June; she likes fado records.", "semantic", 0.7,
     ["family", "dates"], "chat-0412"),
    ("I prefer window seats on long flights and always bring noise-cancelling headphones.",
     "semantic", 0.6, ["travel"], "chat-0412"),
    ("Booked the flight to Lisbon for the 2nd of June, seat 14A.", "episodic", 0.9,
     ["travel", "family"], "chat-0419"),
    ("The quarterly billing report is due on the first Monday of each month.", "procedural",
     0.5, ["work"], "chat-0419"),
    ("Our team standup moved to 9:30 because of the new timezone split.", "episodic", 0.3,
     ["work"], "chat-0419"),
    ("The garage door code was changed to 4471 after the break-in.", "semantic", 0.85,
     ["home"], None),
    ("Dad's birthday dinner is planned at the Thai place on Elm Street.", "episodic", 0.4,
     ["family"], None),
    ("Asked for a vegetarian menu suggestion for Friday.", "working", 0.2, [], None),
]
PAGES = [
    ("agents", "/ui"),
    ("agent", f"/ui/agents/{AGENT}"),
    ("search", f"/ui/agents/{AGENT}?q=where+does+my+sibling+live"),
    ("memory", None),  # the first memory's page
    ("session", f"/ui/agents/{AGENT}/sessions/chat-0412"),
    ("overview", "/ui/overview"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    parser.add_argument("--width", type=int, default=1100)
    parser.add_argument("--height", type=int, default=760)
    args = parser.parse_args()
    path = chromium_path()
    if path is None:
        sys.exit("no Chromium: `make browser-deps` installs Debian's chromium")
    from playwright.sync_api import sync_playwright

    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="dakera-shots-") as tmp:
        server = Server(Path(tmp) / "data").start()
        try:
            import httpx

            with httpx.Client(base_url=server.url, timeout=60,
                              headers={"Authorization": f"Bearer {KEY}"}) as http:
                ids = []
                for content, kind, importance, tags, session in MEMORIES:
                    body = {"agent_id": AGENT, "content": content, "memory_type": kind,
                            "importance": importance, "tags": tags}
                    if session:
                        body["session_id"] = session
                    answer = http.post("/v1/memory/store", json=body)
                    answer.raise_for_status()
                    ids.append(answer.json()["memory"]["id"])
                http.post("/v1/memory/store", json={"agent_id": "support-bot",
                                                   "content": "The customer prefers email."})
                for query in ("Where does Ana live?", "flight seat", "garage code"):
                    http.post("/v1/memory/recall", json={"agent_id": AGENT, "query": query})
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
                for scheme in ("light", "dark"):
                    ctx = browser.new_context(
                        viewport={"width": args.width, "height": args.height},
                        color_scheme=scheme, locale="en-GB", timezone_id="UTC")
                    page = ctx.new_page()
                    page.goto(server.url + "/ui/login")
                    page.get_by_label("API key").fill(KEY)
                    page.get_by_role("button", name="Log in").click()
                    page.wait_for_url("**/ui/**")
                    for name, url in PAGES:
                        url = url or f"/ui/memories/{ids[0]}?agent_id={AGENT}"
                        page.goto(server.url + url)
                        shot = args.out / f"ui-{name}-{scheme}.png"
                        page.screenshot(path=str(shot), full_page=False)
                        print(shot)
                    ctx.close()
                browser.close()
        finally:
            server.stop()


if __name__ == "__main__":
    main()
