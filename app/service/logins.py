"""Logins of the memory browser: an API key typed once into a form opens a login session,
which the browser then names by a random session id (its cookie) instead of the key.

The server keeps, per session, only what identifies the key again (the SHA-256 it is stored
under, or "the root key") and when the session ends: each request re-checks that key, so a
key deactivated, rotated out or expired ends its sessions at once. The session id itself is
kept hashed. Sessions live in this process: a restart logs everyone out.

A CSRF token is an HMAC of the session id under a per-process secret: forms carry it, and a
request whose token does not match its cookie's session id is refused (so a page elsewhere
that cannot read the cookie cannot forge it). Browsers of a key-less server get a session
id too, for the tokens, with no login behind it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from app.config import Settings
from app.errors import AuthenticationError, ValidationError
from app.service.keys import ROOT, Keys, Principal, hash_key, is_root

MAX_SESSIONS = 10_000  # the oldest are dropped beyond this
ROOT_REF = "root"


class LoginRequired(AuthenticationError):
    """No login session (or an ended one): the browser is sent to the login form."""

    code = "LOGIN_REQUIRED"


@dataclass
class Login:
    key_ref: str  # ROOT_REF, or the SHA-256 of the key
    key_id: str
    started_at: int
    expires_at: int


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8", "surrogatepass")).hexdigest()


class Logins:
    def __init__(self, keys: Keys, settings: Settings, now: Callable[[], int]) -> None:
        self.keys = keys
        self.settings = settings
        self.now = now
        self.lifetime = settings.ui_session_hours * 3600
        self._secret = secrets.token_bytes(32)
        self._sessions: OrderedDict[str, Login] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def new_id() -> str:
        return secrets.token_urlsafe(32)

    def open(self, raw_key: object) -> tuple[str, Principal, int]:
        """Check a key typed into the login form; a new session id, who it is, and when the
        session ends (AuthenticationError for a wrong, inactive or expired key)."""
        if not isinstance(raw_key, str) or not raw_key.strip():
            raise ValidationError("'api_key' is required: paste an API key")
        raw = raw_key.strip()
        if is_root(raw, self.settings):
            ref, principal = ROOT_REF, ROOT
        else:
            ref = hash_key(raw)
            principal = self.keys.authenticate_digest(ref)
        now = self.now()
        expires = now + self.lifetime
        if principal.expires_at is not None:
            expires = min(expires, principal.expires_at)
        session_id = self.new_id()
        with self._lock:
            self._sessions[_digest(session_id)] = Login(ref, principal.key_id, now, expires)
            while len(self._sessions) > MAX_SESSIONS:
                self._sessions.popitem(last=False)
        return session_id, principal, expires

    def principal(self, session_id: str | None) -> Principal:
        """Who a session is logged in as, checked again now; LoginRequired when there is
        no such session, it has ended, or its key no longer works."""
        if not session_id:
            raise LoginRequired("log in with an API key")
        digest = _digest(session_id)
        with self._lock:
            login = self._sessions.get(digest)
        if login is None:
            raise LoginRequired("log in with an API key (the session ended or the server "
                                "restarted)")
        if login.expires_at <= self.now():
            self.close(session_id)
            raise LoginRequired("the session expired: log in again")
        if login.key_ref == ROOT_REF:
            if not self.settings.api_key:
                raise LoginRequired("log in with an API key")
            return ROOT
        try:
            return self.keys.authenticate_digest(login.key_ref)
        except AuthenticationError as exc:
            self.close(session_id)
            raise LoginRequired(f"{exc.message}: log in again") from None

    def close(self, session_id: str | None) -> None:
        if session_id:
            with self._lock:
                self._sessions.pop(_digest(session_id), None)

    def active(self) -> int:
        now = self.now()
        with self._lock:
            return sum(1 for s in self._sessions.values() if s.expires_at > now)

    def csrf_token(self, session_id: str) -> str:
        return hmac.new(self._secret, session_id.encode("utf-8", "surrogatepass"),
                        hashlib.sha256).hexdigest()

    def csrf_ok(self, session_id: str | None, token: object) -> bool:
        if not session_id or not isinstance(token, str) or not token:
            return False
        return hmac.compare_digest(self.csrf_token(session_id), token)


__all__ = ["Login", "LoginRequired", "Logins"]
