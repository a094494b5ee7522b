"""`dakera keys`: the root key (DAKERA_API_KEY) manages API keys on a running server."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import click

from app.cli.main import main

EXIT_REFUSED, EXIT_UNREACHABLE = 1, 3


def _keys_url(url: str | None) -> str:
    if url:
        return url.rstrip("/")
    port = os.environ.get("DAKERA_PORT") or "7700"
    return f"http://127.0.0.1:{port}"


def _keys_call(ctx: click.Context, method: str, path: str, body: Any = None) -> Any:
    """One request to /admin/keys with the root key; exits 1 on a refusal (the server's
    message) and 3 when the server cannot be reached."""
    import httpx

    url, key = ctx.obj["url"], ctx.obj["key"]
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    try:
        response = httpx.request(method, url + path, json=body, headers=headers, timeout=30)
    except httpx.HTTPError as exc:
        click.echo(f"dakera: cannot reach the server at {url}: {exc} (start it with `dakera "
                   "serve`, or pass --url)", err=True)
        sys.exit(EXIT_UNREACHABLE)
    try:
        data = response.json() if response.content else {}
    except ValueError:
        data = {"error": response.text.strip()[:300]}
    if response.is_error:
        message = data.get("error") if isinstance(data, dict) else None
        code = data.get("code") if isinstance(data, dict) else None
        click.echo(f"dakera: {response.status_code} {code or ''}: {message or response.text}"
                   .replace("  ", " "), err=True)
        if response.status_code == 401 and not key:
            click.echo("dakera: set DAKERA_API_KEY to the server's root key", err=True)
        sys.exit(EXIT_REFUSED)
    return data


def _when(ts: Any) -> str:
    if not ts:
        return "-"
    import datetime as dt

    return dt.datetime.fromtimestamp(int(ts), dt.UTC).strftime("%Y-%m-%d %H:%M")


@main.group("keys")
@click.option("--url", envvar=["DAKERA_URL", "DAKERA_API_URL"], default=None,
              help="The running server [default: http://127.0.0.1:$DAKERA_PORT (7700); env "
                   "DAKERA_URL or DAKERA_API_URL]. The root key is read from DAKERA_API_KEY.")
@click.pass_context
def keys(ctx: click.Context, url: str | None) -> None:
    """Manage API keys on a running server with its root key (DAKERA_API_KEY).

    Exit codes: 0 done, 1 the server refused (its message is printed), 2 bad usage,
    3 the server could not be reached.
    """
    ctx.obj = {"url": _keys_url(url), "key": os.environ.get("DAKERA_API_KEY")
               or os.environ.get("DAKERA_ROOT_API_KEY")}


@keys.command("create")
@click.argument("name")
@click.option("--scope", type=click.Choice(["read", "write", "admin", "super_admin"]),
              default="read", show_default=True, help="What the key may do.")
@click.option("--agent", "-a", "agents", multiple=True, metavar="AGENT_ID",
              help="Limit the key to this agent's memories (repeatable; a trailing * is a "
                   "prefix: -a 'team-*').")
@click.option("--namespace", "-n", "namespaces", multiple=True, metavar="NS",
              help="Limit the key to this namespace or prefix* pattern (repeatable).")
@click.option("--expires-in-days", type=click.IntRange(1, 36_500), default=None,
              help="The key stops working after this many days [default: never].")
@click.option("--json", "as_json", is_flag=True, help="Print the server's whole answer as JSON.")
@click.pass_context
def keys_create(ctx: click.Context, name: str, scope: str, agents: tuple[str, ...],
                namespaces: tuple[str, ...], expires_in_days: int | None, as_json: bool) -> None:
    """Create a key named NAME; prints the key once (on stdout; the rest on stderr).

    Without --agent or --namespace the key reaches every namespace.
    """
    body: dict[str, Any] = {"name": name, "scope": scope}
    grants = [*namespaces, *(f"_dakera_agent_{a}" for a in agents)]
    if grants:
        body["namespaces"] = grants
    if expires_in_days is not None:
        body["expires_in_days"] = expires_in_days
    data = _keys_call(ctx, "POST", "/admin/keys", body)
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    click.echo(data["key"])
    where = ", ".join(data.get("namespaces") or []) if data.get("namespaces") is not None \
        else "every namespace"
    click.echo(f"created {data['key_id']} ({data['scope']}; {where or 'no namespace'}; expires "
               f"{_when(data.get('expires_at')) if data.get('expires_at') else 'never'}). "
               "Save the key now: it is not shown again.", err=True)


@keys.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the server's answer as JSON.")
@click.pass_context
def keys_list(ctx: click.Context, as_json: bool) -> None:
    """List the keys (never their secrets)."""
    data = _keys_call(ctx, "GET", "/admin/keys")
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    rows = data.get("keys", [])
    if not rows:
        click.echo("no keys (the root key is DAKERA_API_KEY)", err=True)
        return
    click.echo(f"{'KEY ID':<24} {'NAME':<20} {'SCOPE':<11} {'ACTIVE':<6} {'EXPIRES':<16} "
               f"{'LAST USED':<16} NAMESPACES")
    for k in rows:
        grants = "*" if k.get("namespaces") is None else ",".join(k["namespaces"]) or "(none)"
        click.echo(f"{k['key_id']:<24} {k['name'][:20]:<20} {k['scope']:<11} "
                   f"{'yes' if k.get('active') else 'no':<6} {_when(k.get('expires_at')):<16} "
                   f"{_when(k.get('last_used_at')):<16} {grants}")


@keys.command("revoke")
@click.argument("key_id")
@click.option("--delete", "remove", is_flag=True,
              help="Delete the key instead of deactivating it (it leaves the list).")
@click.pass_context
def keys_revoke(ctx: click.Context, key_id: str, remove: bool) -> None:
    """Stop KEY_ID from working at once (deactivated; --delete removes it)."""
    if remove:
        _keys_call(ctx, "DELETE", f"/admin/keys/{key_id}")
        click.echo(f"deleted {key_id}", err=True)
    else:
        _keys_call(ctx, "POST", f"/admin/keys/{key_id}/deactivate")
        click.echo(f"deactivated {key_id}", err=True)


@keys.command("rotate")
@click.argument("key_id")
@click.option("--grace-secs", type=click.IntRange(0, 604_800), default=0, show_default=True,
              help="How long the old key keeps working (at most 7 days); 0 stops it now.")
@click.option("--json", "as_json", is_flag=True, help="Print the server's answer as JSON.")
@click.pass_context
def keys_rotate(ctx: click.Context, key_id: str, grace_secs: int, as_json: bool) -> None:
    """Replace KEY_ID by a new key with the same name, scope and namespaces; prints the new
    key once (on stdout)."""
    data = _keys_call(ctx, "POST", f"/admin/keys/{key_id}/rotate", {"grace_secs": grace_secs})
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    click.echo(data["new_key"])
    old = data.get("old_key_expires_at")
    click.echo(f"new key {data['key_id']}; {key_id} "
               + (f"works until {_when(old)} UTC" if old else "stopped working") +
               ". Save the key now: it is not shown again.", err=True)
