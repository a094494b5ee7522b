"""build/compose: the docker-compose example (two servers on PostgreSQL behind nginx) agrees
with the server it runs. No Docker engine runs here, so this checks what can drift: the
settings it passes, the image it builds, the database URL, and nginx's upstreams."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from app.config import FIELDS, Settings

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "build" / "compose"


def _compose() -> dict[str, Any]:
    return dict(yaml.safe_load((COMPOSE / "docker-compose.yml").read_text()))


def _dakera_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: s for name, s in compose["services"].items() if "DAKERA_API_KEY"
            in s.get("environment", {})}


def test_every_setting_it_passes_is_a_setting() -> None:
    known = {env for f in FIELDS for env in f.env}
    services = _dakera_services(_compose())
    assert len(services) >= 2
    for name, service in services.items():
        names = set(service["environment"])
        assert names <= known, f"{name}: {names - known} are not settings"
        assert {"DAKERA_API_KEY", "DAKERA_DATABASE_URL"} <= names
        # the values parse as the server would read them (placeholders filled in)
        env = {k: re.sub(r"\$\{[^}]*\}", "x", str(v))
               for k, v in service["environment"].items()}
        Settings.from_env(env={**env, "DAKERA_HOST": "0.0.0.0"})


def test_servers_share_the_postgres_service_and_build_the_image() -> None:
    compose = _compose()
    pg = compose["services"]["postgres"]
    assert "pgvector" in pg["image"]
    user, db = pg["environment"]["POSTGRES_USER"], pg["environment"]["POSTGRES_DB"]
    for service in _dakera_services(compose).values():
        url = service["environment"]["DAKERA_DATABASE_URL"]
        assert re.fullmatch(rf"postgresql://{user}:\$\{{POSTGRES_PASSWORD\}}@postgres:5432/{db}",
                            url), url
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
        dockerfile = (COMPOSE / service["build"]["context"] / service["build"]["dockerfile"])
        assert dockerfile.resolve() == (ROOT / "build" / "Dockerfile").resolve()


def test_nginx_sends_to_every_server_on_the_image_port() -> None:
    compose = _compose()
    dockerfile = (ROOT / "build" / "Dockerfile").read_text()
    port = re.search(r"DAKERA_PORT=(\d+)", dockerfile)
    assert port is not None
    conf = (COMPOSE / "nginx.conf").read_text()
    upstream = re.search(r"upstream dakera \{(.*?)\}", conf, re.S)
    assert upstream is not None
    servers = set(re.findall(r"server ([\w.-]+):(\d+)", upstream.group(1)))
    assert servers == {(name, port.group(1)) for name in _dakera_services(compose)}
    lb = compose["services"]["lb"]
    assert "./nginx.conf:/etc/nginx/nginx.conf:ro" in lb["volumes"]
    assert set(lb["depends_on"]) == set(_dakera_services(compose))
    # streams: SSE and MCP responses and imports go through unbuffered
    for directive in ("proxy_buffering off", "proxy_request_buffering off",
                      "client_max_body_size 0"):
        assert directive in conf
