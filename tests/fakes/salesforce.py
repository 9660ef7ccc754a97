"""A stateful Salesforce fake for tests, served over HTTPS on 127.0.0.1 with a ``trustme`` CA, that
the real ``simple-salesforce`` talks to. State and rules live in
:mod:`tests.fakes.salesforce_store`; this module adds the wire: the login endpoints of the three
flows simple-salesforce uses, the REST, sObject Collections and Bulk API 2.0 routes Flywheel needs,
sessions, the daily API request limit with ``Sforce-Limit-Info``, faults on a schedule and
expectations checked at teardown (the same shape as tests/fakes/hubspot.py).

simple-salesforce builds its login URLs as ``https://{domain}.salesforce.com/...``, so ``domain``
cannot name 127.0.0.1. :meth:`SalesforceFake.session` returns a ``requests.Session`` that trusts the
fake's CA and sends any ``*.salesforce.com`` request to the fake; handed to simple-salesforce as
``session=``, every flow works unchanged::

    with SalesforceFake() as fake:
        sf = Salesforce(username=FAKE_USERNAME, password=FAKE_PASSWORD,
                        security_token=FAKE_SECURITY_TOKEN, session=fake.session())   # SOAP login()
        sf = Salesforce(username=FAKE_USERNAME, consumer_key=FAKE_CONSUMER_KEY,
                        privatekey=fake.generate_jwt_key(), session=fake.session())   # JWT bearer
        sf = Salesforce(consumer_key=FAKE_CONSUMER_KEY, consumer_secret=FAKE_CONSUMER_SECRET,
                        domain="flywheel-dev.my", session=fake.session())             # client credentials
        sf = Salesforce(instance_url=fake.instance_url, session_id=fake.issue_session(),
                        session=fake.session())                                       # a session id

Routes are counted by (method, template) with the API version written ``vXX.X`` and the sObject
type filled in, e.g. ``("PATCH", "/services/data/vXX.X/composite/sobjects/Contact/{field}")``.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import re
import shutil
import ssl
import tempfile
import threading
import xml.etree.ElementTree as ElementTree
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Self
from urllib.parse import urlsplit, urlunsplit
from xml.sax.saxutils import escape

import pytest
import requests
import trustme
from requests.adapters import HTTPAdapter
from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler
from werkzeug.wrappers import Request, Response

from tests.fakes.salesforce_store import (
    API_VERSION,
    AuthFailure,
    AuthRegistry,
    ConnectedApp,
    Record,
    SalesforceError,
    SalesforceStore,
)

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment
    from simple_salesforce.api import Salesforce

log = logging.getLogger(__name__)

FAKE_USERNAME = "sync@flywheel.example"
FAKE_PASSWORD = "fake-password"  # test credentials of the fake, not secrets
FAKE_SECURITY_TOKEN = "FAKETOKEN0123456789"
FAKE_CONSUMER_KEY = "3MVG9fake.flywheel.consumer"
FAKE_CONSUMER_SECRET = "fake-consumer-secret"
DAILY_API_LIMIT = 15_000  # the fake's default daily total of API requests
LOGIN_HOST_HEADER = "X-Fake-Login-Host"  # set by LoginHostAdapter: the host the client aimed at

_JSON = "application/json;charset=UTF-8"
_SESSION_EXPIRED = SalesforceError(401, "INVALID_SESSION_ID", "Session expired or invalid")
# Categories and wording for injected server errors are the fake's own: the REST docs describe
# 500 and 503 (errorcodes.htm) without giving a body. UNKNOWN_EXCEPTION is Salesforce's code for
# its own failures.
_SERVER_ERRORS = {
    500: (
        "UNKNOWN_EXCEPTION",
        "An unexpected error occurred. Please include this ErrorId if you contact support.",
    ),
    502: ("SERVER_UNAVAILABLE", "Bad Gateway"),
    503: ("SERVER_UNAVAILABLE", "Service Unavailable"),
    504: ("SERVER_UNAVAILABLE", "Gateway Timeout"),
}


@dataclass(frozen=True)
class Reply:
    """An answer: status, body (JSON-ready, or text with ``content_type``) and extra headers."""

    status: int
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    content_type: str = _JSON


@dataclass(frozen=True)
class Call:
    """One request as the fake counts it: ``route`` is the route template (``vXX.X``, the sObject
    type filled in)."""

    method: str
    route: str
    path: str


@dataclass(frozen=True)
class CallRecord:
    method: str
    route: str
    path: str
    status: int


# -- limits ---------------------------------------------------------------------------------------


# The Limit Info header: https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/headers_api_usage.htm
class ApiLimits:
    """The org's daily total of API requests (a UTC day here), reported on every REST response as
    ``Sforce-Limit-Info: api-usage=used/max``. Past the total a call is refused with 403
    REQUEST_LIMIT_EXCEEDED and not counted."""

    def __init__(self, daily_max: int, now: Callable[[], datetime]) -> None:
        self.daily_max = daily_max
        self._now = now
        self._lock = threading.Lock()
        self._day: date = now().astimezone(UTC).date()
        self._used = 0

    def _roll(self) -> None:
        today = self._now().astimezone(UTC).date()
        if today != self._day:
            self._day, self._used = today, 0

    def admit(self) -> bool:
        with self._lock:
            self._roll()
            if self._used >= self.daily_max:
                return False
            self._used += 1
            return True

    @property
    def used(self) -> int:
        with self._lock:
            self._roll()
            return self._used

    def set_used(self, used: int) -> None:
        with self._lock:
            self._roll()
            self._used = used

    def header(self) -> dict[str, str]:
        return {"Sforce-Limit-Info": f"api-usage={self.used}/{self.daily_max}"}


def limit_exceeded() -> SalesforceError:
    # Wording as quoted in github.com/SalesforceLabs/OrgCheck/issues/181 and jetstream#868
    return SalesforceError(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")


# -- faults and expectations ------------------------------------------------------------------


@dataclass(frozen=True)
class Fault:
    """What an affected call gets. ``status``: that status with Salesforce's array body.
    ``limit``: 403 REQUEST_LIMIT_EXCEEDED. ``slow``: the handler waits ``seconds`` and then answers
    normally (so the write still lands, as it can on a real timeout)."""

    kind: Literal["status", "limit", "slow"]
    status: int = 503
    seconds: float = 0.0
    error_code: str | None = None
    message: str | None = None


@dataclass
class _Rule:
    method: str
    route: str
    fault: Fault
    first: int  # the first matching call affected, counted from 1 when the rule was added
    times: int
    seen: int = 0

    def hit(self, call: Call) -> bool:
        if self.method not in ("*", call.method) or self.route not in ("*", call.route):
            return False
        self.seen += 1
        return self.first <= self.seen < self.first + self.times


@dataclass(frozen=True)
class _Expectation:
    method: str
    route: str
    at_least: int


# -- pointing simple-salesforce at the fake ---------------------------------------------------


class LoginHostAdapter(HTTPAdapter):
    """A transport adapter that sends ``https://*.salesforce.com/...`` (where simple-salesforce
    logs in: ``https://{domain}.salesforce.com``) to the fake at ``netloc``, and every other URL
    as it is. The aimed-at host travels in ``X-Fake-Login-Host`` for the identity URL.

    Requests to the fake are verified against ``ca_bundle`` whatever ``verify`` arrives: requests
    lets ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` override a session's ``verify``."""

    def __init__(self, netloc: str, ca_bundle: str) -> None:
        super().__init__()
        self._netloc = netloc
        self._ca_bundle = ca_bundle

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        parts = urlsplit(request.url or "")
        host = parts.hostname or ""
        if host == "salesforce.com" or host.endswith(".salesforce.com"):
            request.url = urlunsplit(parts._replace(netloc=self._netloc))
            request.headers[LOGIN_HOST_HEADER] = host
            parts = urlsplit(request.url)
        if parts.netloc == self._netloc:
            kwargs["verify"] = self._ca_bundle
        return super().send(request, *args, **kwargs)


# -- the server ---------------------------------------------------------------------------------


class _Handler(WSGIRequestHandler):
    # One request per connection: an idle keep-alive connection would hold a handler thread that
    # close() could not end.
    protocol_version = "HTTP/1.0"

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        log.debug("%s %s", self.requestline, code)


class _Server(ThreadedWSGIServer):
    daemon_threads = False  # server_close() joins the handler threads: none outlives the fake


RouteHandler = Callable[[Request, dict[str, str]], Reply]


@dataclass(frozen=True)
class _Route:
    method: str
    pattern: re.Pattern[str]
    template: str
    handler: RouteHandler
    rest: bool  # a data API route: session required, counted against the daily limit


def _compile(template: str) -> re.Pattern[str]:
    def group(found: re.Match[str]) -> str:
        name = found.group(1)
        return rf"(?P<{name}>\d+\.\d+)" if name == "version" else rf"(?P<{name}>[^/]+)"

    return re.compile("^" + re.sub(r"\{(\w+)\}", group, template) + "$")


class SalesforceFake:
    """A Salesforce org on ``https://127.0.0.1:<port>`` from :meth:`start` (or ``with``) to
    :meth:`close`, with faults and expectations for tests.

    ``daily_api_limit``: the org's daily API request total (15,000 unless given).
    ``query_batch_size``: records per query page (Salesforce's default is 2,000; set it small to
    exercise ``nextRecordsUrl`` paging with a few records).
    ``bulk_polls_to_complete``: GETs of a closed Bulk API 2.0 job before it is JobComplete.
    ``now``: the clock (UTC-aware) for timestamps, session expiry and the daily limit.

    A user (:data:`FAKE_USERNAME`, :data:`FAKE_PASSWORD`, :data:`FAKE_SECURITY_TOKEN`) and a
    connected app (:data:`FAKE_CONSUMER_KEY`, :data:`FAKE_CONSUMER_SECRET`, running as that user;
    :meth:`generate_jwt_key` gives it a JWT signing key) exist from the start; the instance
    carries them as ``username``, ``password``, ``security_token``, ``consumer_key`` and
    ``consumer_secret``.
    """

    def __init__(
        self,
        *,
        daily_api_limit: int = DAILY_API_LIMIT,
        query_batch_size: int = 2000,
        bulk_polls_to_complete: int = 2,
        host: str = "127.0.0.1",
        port: int = 0,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._now = now
        self.store = SalesforceStore(
            now=now, query_batch_size=query_batch_size, bulk_polls_to_complete=bulk_polls_to_complete
        )
        self.auth = AuthRegistry(self.store.org_id, now)
        self.limits = ApiLimits(daily_api_limit, now)
        self.username, self.password, self.security_token = FAKE_USERNAME, FAKE_PASSWORD, FAKE_SECURITY_TOKEN
        self.consumer_key, self.consumer_secret = FAKE_CONSUMER_KEY, FAKE_CONSUMER_SECRET
        self.auth.add_user(FAKE_USERNAME, FAKE_PASSWORD, FAKE_SECURITY_TOKEN, self.store.user_id)
        self.auth.add_app(ConnectedApp(FAKE_CONSUMER_KEY, FAKE_CONSUMER_SECRET, run_as=FAKE_USERNAME))
        self._host, self._port = host, port
        self._ca = trustme.CA(organization_name="Flywheel Salesforce fake")
        self._tls = self._ca.issue_cert(host, "localhost")
        self._tmp: Path | None = None
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._closing = threading.Event()
        self._lock = threading.Lock()
        self._calls: Counter[tuple[str, str]] = Counter()
        self._log: list[CallRecord] = []
        self._rules: list[_Rule] = []
        self._expected: list[_Expectation] = []
        self._routes = [
            _Route(method, _compile(template), template, handler, rest)
            for method, template, handler, rest in self._table()
        ]

    # -- lifecycle -----------------------------------------------------------------------------

    @property
    def netloc(self) -> str:
        if self._server is None:
            raise RuntimeError("the Salesforce fake is not running; use start() or a with block")
        return f"{self._host}:{self._server.port}"

    @property
    def instance_url(self) -> str:
        """``https://127.0.0.1:<port>``: what ``Salesforce(instance_url=...)`` takes."""
        return f"https://{self.netloc}"

    base_url = instance_url

    @property
    def ca_bundle(self) -> str:
        """Path of the CA certificate (PEM) the fake's server certificate chains to."""
        if self._tmp is None:
            raise RuntimeError("the Salesforce fake is not running; use start() or a with block")
        return str(self._tmp / "ca.pem")

    def start(self) -> Self:
        if self._server is not None:
            return self
        self._tmp = Path(tempfile.mkdtemp(prefix="salesforce-fake-"))
        self._ca.cert_pem.write_to_path(str(self._tmp / "ca.pem"))
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._tls.configure_cert(context)
        try:
            self._server = _Server(self._host, self._port, self._wsgi, handler=_Handler, ssl_context=context)
        except SystemExit as exc:  # werkzeug exits when it cannot bind; a test helper must raise
            raise OSError(f"the Salesforce fake cannot listen on {self._host}:{self._port}") from exc
        self._closing.clear()
        server = self._server
        self._thread = threading.Thread(
            target=lambda: server.serve_forever(poll_interval=0.05), name="salesforce-fake", daemon=True
        )
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving: wake calls paused by :meth:`slow`, then wait for every handler thread."""
        if self._server is None:
            return
        self._closing.set()
        self._server.shutdown()
        if self._thread is not None:
            self._thread.join()
        self._server.server_close()
        self._server, self._thread = None, None
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def pause(self, seconds: float) -> None:
        """Sleep inside a handler, cut short when the fake closes."""
        self._closing.wait(seconds)

    # -- clients ---------------------------------------------------------------------------------

    def session(self) -> requests.Session:
        """A ``requests.Session`` for simple-salesforce's ``session=``: it trusts the fake's CA and
        sends login requests for ``*.salesforce.com`` to the fake (see :class:`LoginHostAdapter`)."""
        session = requests.Session()
        session.trust_env = False  # no proxy or CA bundle from the environment: the fake is local
        session.verify = self.ca_bundle
        session.mount("https://", LoginHostAdapter(self.netloc, self.ca_bundle))
        return session

    def client(self, username: str = FAKE_USERNAME, version: str = API_VERSION) -> Salesforce:
        """A simple-salesforce client on a fresh session id (no login round trip)."""
        from simple_salesforce.api import Salesforce

        return Salesforce(
            instance_url=self.instance_url,
            session_id=self.issue_session(username),
            session=self.session(),
            version=version,
        )

    # -- credentials and sessions --------------------------------------------------------------

    def add_user(self, username: str, password: str, security_token: str = "") -> str:
        """Another user who can log in; returns the user id."""
        return self.auth.add_user(username, password, security_token, self.store.new_id("User")).user_id

    def add_connected_app(
        self,
        consumer_key: str,
        *,
        consumer_secret: str | None = None,
        certificate: str | None = None,
        run_as: str | None = None,
    ) -> None:
        """A connected app. ``certificate``: the PEM certificate or public key its JWTs are checked
        against. ``run_as``: the username the client-credentials flow runs as."""
        self.auth.add_app(ConnectedApp(consumer_key, consumer_secret, certificate, run_as))

    def generate_jwt_key(self, consumer_key: str = FAKE_CONSUMER_KEY) -> str:
        """Give the app a fresh RSA key pair: its public key is registered for JWT checks and the
        private key is returned as PEM (what ``Salesforce(privatekey=...)`` takes)."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        app = self.auth.app(consumer_key) or ConnectedApp(consumer_key)
        self.auth.add_app(dataclasses.replace(app, public_key_pem=public.decode()))
        private = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return private.decode()

    def issue_session(self, username: str = FAKE_USERNAME) -> str:
        """A live session id for the user, as a completed login would give."""
        user = self.auth.user(username)
        if user is None:
            raise KeyError(f"no such user: {username}")
        return self.auth.issue(user.user_id).session_id

    def expire_sessions(self) -> None:
        """End every session: the next REST call with any of them gets 401 INVALID_SESSION_ID."""
        self.auth.expire_all()

    # -- limits ----------------------------------------------------------------------------------

    @property
    def daily_api_limit(self) -> int:
        return self.limits.daily_max

    @daily_api_limit.setter
    def daily_api_limit(self, value: int) -> None:
        self.limits.daily_max = value

    @property
    def api_usage(self) -> tuple[int, int]:
        """(requests used today, daily total), as ``Sforce-Limit-Info`` reports them."""
        return self.limits.used, self.limits.daily_max

    def set_api_usage(self, used: int) -> None:
        """Pretend ``used`` requests were already made today (e.g. one short of the limit)."""
        self.limits.set_used(used)

    # -- org state (no HTTP, no API request counted) ---------------------------------------------

    def add_field(
        self,
        sobject: str,
        name: str,
        *,
        type: str = "string",
        external_id: bool = False,
        unique: bool = False,
    ) -> None:
        """Create a custom field, e.g. ``add_field("Contact", "Flywheel_Member_Id__c",
        external_id=True)``; describe lists it and writes may use it from then on."""
        self.store.add_field(sobject, name, type=type, external_id=external_id, unique=unique)

    def remove_field(self, sobject: str, name: str) -> None:
        self.store.remove_field(sobject, name)

    def enable_duplicate_rule(self, sobject: str, field_name: str = "Email") -> None:
        """Creating a record whose ``field_name`` matches another's then fails DUPLICATES_DETECTED."""
        self.store.enable_duplicate_rule(sobject, field_name)

    def disable_duplicate_rule(self, sobject: str) -> None:
        self.store.disable_duplicate_rule(sobject)

    def convert_lead(self, lead_id: str, *, account_id: str | None = None) -> str:
        """Convert a Lead to a Contact (returned); writing the Lead then fails
        CANNOT_UPDATE_CONVERTED_LEAD."""
        return self.store.convert_lead(lead_id, account_id=account_id)

    def insert(self, sobject: str, **values: Any) -> str:
        """Seed a record through the org's rules; returns its id."""
        return self.store.create(sobject, values)

    def records(self, sobject: str) -> list[Record]:
        return self.store.records(sobject)

    def record(self, sobject: str, record_id: str) -> Record:
        return self.store.get(sobject, record_id)

    def find(self, sobject: str, field_name: str, value: Any) -> list[Record]:
        return self.store.find(sobject, field_name, value)

    # -- faults ----------------------------------------------------------------------------------

    def inject(self, method: str, route: str, fault: Fault, *, nth: int = 1, times: int = 1) -> None:
        """Give ``fault`` to matching calls number ``nth`` .. ``nth + times - 1`` from now on."""
        with self._lock:
            self._rules.append(_Rule(method.upper() if method != "*" else "*", route, fault, nth, times))

    def fail(
        self,
        method: str,
        route: str,
        status: int = 503,
        *,
        nth: int = 1,
        times: int = 1,
        error_code: str | None = None,
        message: str | None = None,
    ) -> None:
        """A 5xx (or any status) with Salesforce's array body."""
        self.inject(
            method,
            route,
            Fault("status", status, error_code=error_code, message=message),
            nth=nth,
            times=times,
        )

    def rate_limit(self, method: str, route: str, *, nth: int = 1, times: int = 1) -> None:
        """403 REQUEST_LIMIT_EXCEEDED on demand, whatever today's usage."""
        self.inject(method, route, Fault("limit", 403), nth=nth, times=times)

    def slow(self, method: str, route: str, seconds: float, *, nth: int = 1, times: int = 1) -> None:
        """The handler waits ``seconds`` before answering: longer than the client's timeout, and the
        client sees a read timeout while the call still takes effect."""
        self.inject(method, route, Fault("slow", seconds=seconds), nth=nth, times=times)

    def _fault_for(self, call: Call) -> Fault | None:
        with self._lock:
            return next((rule.fault for rule in self._rules if rule.hit(call)), None)

    # -- expectations and counts -----------------------------------------------------------------

    def expect(self, method: str, route: str, at_least: int = 1) -> None:
        """This call must come at least ``at_least`` times before the test ends."""
        with self._lock:
            self._expected.append(_Expectation(method.upper(), route, at_least))

    def unmet(self) -> list[str]:
        """One line per expectation not met so far."""
        with self._lock:
            expected = list(self._expected)
        out = []
        for e in expected:
            got = self.call_count(e.method, e.route)
            if got < e.at_least:
                out.append(f"expected {e.method} {e.route} at least {e.at_least} time(s), got {got}")
        return out

    def verify(self) -> None:
        """Raise AssertionError naming every unmet expectation (and the calls that did come)."""
        missing = self.unmet()
        if missing:
            seen = ", ".join(f"{m} {r} x{n}" for (m, r), n in sorted(self.calls.items())) or "none"
            raise AssertionError("Salesforce fake: " + "; ".join(missing) + f" (calls received: {seen})")

    @property
    def calls(self) -> Counter[tuple[str, str]]:
        """Calls received so far by (method, route template)."""
        with self._lock:
            return Counter(self._calls)

    def call_count(self, method: str, route: str) -> int:
        with self._lock:
            return self._calls[(method.upper(), route)]

    count = call_count

    @property
    def call_log(self) -> list[CallRecord]:
        """Every answered call in order, with the status it got."""
        with self._lock:
            return list(self._log)

    # -- the WSGI side -----------------------------------------------------------------------------

    def _wsgi(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ)
        method = request.method.upper()
        path = request.path.rstrip("/") or "/"
        matched = self._match(method, path)
        route = matched[1] if matched else path
        with self._lock:
            self._calls[(method, route)] += 1
        call = Call(method, route, path)
        try:
            reply = self._answer(request, call, matched)
        except SalesforceError as exc:  # raised before a session was checked
            reply = Reply(exc.status, exc.body())
        except Exception:  # a bug in the fake: answered as Salesforce answers its own failures
            log.exception("Salesforce fake failed on %s %s", method, path)
            reply = Reply(500, SalesforceError(500, *_SERVER_ERRORS[500]).body())
        with self._lock:
            self._log.append(CallRecord(method, route, path, reply.status))
        return _response(reply)(environ, start_response)

    def _match(self, method: str, path: str) -> tuple[_Route, str, dict[str, str]] | None:
        for route in self._routes:
            found = route.pattern.match(path)
            if route.method == method and found:
                params = found.groupdict()
                template = route.template.replace("v{version}", "vXX.X").replace("u/{version}", "u/XX.X")
                if "sobject" in params:
                    params["sobject"] = self.store.canonical(params["sobject"])
                    template = template.replace("{sobject}", params["sobject"])
                return route, template, params
        return None

    def _answer(
        self, request: Request, call: Call, matched: tuple[_Route, str, dict[str, str]] | None
    ) -> Reply:
        if matched is None:
            return Reply(
                404, SalesforceError(404, "NOT_FOUND", "The requested resource does not exist").body()
            )
        route, _, params = matched
        fault = self._fault_for(call)
        if fault is not None and fault.kind == "slow":
            self.pause(fault.seconds)
        elif fault is not None and fault.kind == "limit":
            return Reply(403, limit_exceeded().body(), self.limits.header())
        elif fault is not None:
            code, message = _SERVER_ERRORS.get(fault.status, ("UNKNOWN_EXCEPTION", f"error {fault.status}"))
            error = SalesforceError(fault.status, fault.error_code or code, fault.message or message)
            return _fault_reply(call, error)
        if not route.rest:
            return route.handler(request, params)
        if self.auth.check(_bearer(request)) is None:
            return Reply(401, _SESSION_EXPIRED.body())
        if not self.limits.admit():
            return Reply(403, limit_exceeded().body(), self.limits.header())
        try:
            reply = route.handler(request, params)
        except SalesforceError as exc:
            reply = Reply(exc.status, exc.body())
        return dataclasses.replace(reply, headers={**self.limits.header(), **reply.headers})

    # -- routes ------------------------------------------------------------------------------------

    def _table(self) -> list[tuple[str, str, RouteHandler, bool]]:
        data = "/services/data/v{version}"
        sobject = data + "/sobjects/{sobject}"
        collections = data + "/composite/sobjects"
        ingest = data + "/jobs/ingest"
        st = self.store
        return [
            # OAuth 2.0 token endpoint, all three flows:
            # https://help.salesforce.com/s/articleView?id=sf.remoteaccess_oauth_jwt_flow.htm (JWT bearer),
            # https://help.salesforce.com/s/articleView?id=sf.remoteaccess_oauth_client_credentials_flow.htm,
            # https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/intro_understanding_username_password_oauth_flow.htm
            ("POST", "/services/oauth2/token", self._token, False),
            # SOAP login(), simple-salesforce's username + password + token flow:
            # https://developer.salesforce.com/docs/atlas.en-us.api.meta/api/sforce_api_calls_login.htm
            ("POST", "/services/Soap/u/{version}", self._soap_login, False),
            # Describe: https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/dome_sobject_describe.htm
            ("GET", data + "/sobjects", lambda r, p: Reply(200, st.describe_global(p["version"])), True),
            (
                "GET",
                sobject + "/describe",
                lambda r, p: Reply(200, st.describe(p["sobject"], p["version"])),
                True,
            ),
            # Records: https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/dome_sobject_create.htm,
            # .../dome_get_field_values.htm, .../dome_update_fields.htm, .../dome_upsert.htm
            ("POST", sobject, self._create, True),
            ("GET", sobject + "/{id}", self._get, True),
            ("PATCH", sobject + "/{id}", self._update, True),
            ("DELETE", sobject + "/{id}", self._delete, True),
            ("GET", sobject + "/{field}/{value}", self._get_by_external_id, True),
            ("PATCH", sobject + "/{field}/{value}", self._upsert, True),
            # Query: https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_query.htm
            # and .../resources_query_more_results.htm
            ("GET", data + "/query", self._query, True),
            (
                "GET",
                data + "/query/{locator}",
                lambda r, p: Reply(200, st.query_more(p["locator"], p["version"])),
                True,
            ),
            ("GET", data + "/queryAll", self._query, True),
            (
                "GET",
                data + "/queryAll/{locator}",
                lambda r, p: Reply(200, st.query_more(p["locator"], p["version"])),
                True,
            ),
            # sObject Collections: https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/
            # resources_composite_sobjects_collections_create.htm, ..._update.htm, ..._upsert.htm
            ("POST", collections, self._create_many, True),
            ("PATCH", collections, self._update_many, True),
            ("PATCH", collections + "/{sobject}/{field}", self._upsert_many, True),
            # Bulk API 2.0 ingest: https://developer.salesforce.com/docs/atlas.en-us.api_asynch.meta/api_asynch/
            # create_job.htm, upload_job_data.htm, close_job.htm, get_job_info.htm,
            # get_job_successful_results.htm, get_job_failed_results.htm, get_job_unprocessed_results.htm
            ("POST", ingest, lambda r, p: Reply(200, st.create_job(_body(r), p["version"])), True),
            ("GET", ingest, lambda r, p: Reply(200, {"done": True, "records": st.jobs()}), True),
            ("PUT", ingest + "/{jobId}/batches", self._upload, True),
            ("PATCH", ingest + "/{jobId}", self._set_job_state, True),
            ("GET", ingest + "/{jobId}", lambda r, p: Reply(200, st.job_info(p["jobId"])), True),
            ("DELETE", ingest + "/{jobId}", self._delete_job, True),
            ("GET", ingest + "/{jobId}/successfulResults", self._results("successfulResults"), True),
            ("GET", ingest + "/{jobId}/failedResults", self._results("failedResults"), True),
            ("GET", ingest + "/{jobId}/unprocessedrecords", self._results("unprocessedrecords"), True),
            ("GET", ingest + "/{jobId}/unprocessedRecords", self._results("unprocessedrecords"), True),
        ]

    # -- login -------------------------------------------------------------------------------------

    def _token(self, request: Request, params: dict[str, str]) -> Reply:
        """The token endpoint: a JSON token or ``{"error", "error_description"}`` with 400."""
        form = request.form
        grant = form.get("grant_type", "")
        login_host = request.headers.get(LOGIN_HOST_HEADER) or request.host
        client_id = form.get("client_id")
        try:
            if grant == "password":
                session = self.auth.oauth_password(
                    client_id or "",
                    form.get("client_secret", ""),
                    form.get("username", ""),
                    form.get("password", ""),
                )
            elif grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
                session = self.auth.jwt_bearer(form.get("assertion", ""), login_host)
            elif grant == "client_credentials":
                client_id, secret = _basic(request) or (client_id or "", form.get("client_secret", ""))
                session = self.auth.client_credentials(client_id, secret)
            else:
                raise AuthFailure("unsupported_grant_type", "grant type not supported")
        except AuthFailure as exc:
            return Reply(400, {"error": exc.error, "error_description": exc.description})
        identity = f"https://{login_host}/id/{self.store.org_id}/{session.user_id}"
        issued_at = str(int(session.issued_at.timestamp() * 1000))
        body: Record = {
            "access_token": session.session_id,
            "instance_url": self.instance_url,
            "id": identity,
            "token_type": "Bearer",
            "issued_at": issued_at,
        }
        signature = self.auth.signature(client_id, identity, issued_at)
        if signature:
            body["signature"] = signature
        return Reply(200, body)

    def _soap_login(self, request: Request, params: dict[str, str]) -> Reply:
        """``login()``: a LoginResult, or a LoginFault (HTTP 500) with INVALID_LOGIN, in the form
        simple-salesforce's own tests use for Salesforce's answers."""
        version = params["version"]
        try:
            root = ElementTree.fromstring(request.get_data())
            found = {el.tag.rsplit("}", 1)[-1]: (el.text or "") for el in root.iter()}
            session = self.auth.password_login(found["username"], found["password"])
        except (ElementTree.ParseError, KeyError, AuthFailure):
            return Reply(500, _login_fault(), content_type="text/xml;charset=UTF-8")
        server = f"{self.instance_url}/services/Soap/u/{version}/{self.store.org_id[:15]}"
        metadata = f"{self.instance_url}/services/Soap/m/{version}/{self.store.org_id[:15]}"
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
            'xmlns="urn:partner.soap.sforce.com" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
            "<soapenv:Body><loginResponse><result>"
            f"<metadataServerUrl>{escape(metadata)}</metadataServerUrl>"
            "<passwordExpired>false</passwordExpired><sandbox>true</sandbox>"
            f"<serverUrl>{escape(server)}</serverUrl>"
            f"<sessionId>{escape(session.session_id)}</sessionId>"
            f"<userId>{session.user_id}</userId>"
            "<userInfo>"
            f"<organizationId>{self.store.org_id}</organizationId>"
            f"<sessionSecondsValid>{self.auth.session_seconds}</sessionSecondsValid>"
            f"<userId>{session.user_id}</userId>"
            f"<userName>{escape(found['username'])}</userName>"
            "</userInfo>"
            "</result></loginResponse></soapenv:Body></soapenv:Envelope>"
        )
        return Reply(200, body, content_type="text/xml;charset=UTF-8")

    # -- records -----------------------------------------------------------------------------------

    def _create(self, request: Request, params: dict[str, str]) -> Reply:
        record_id = self.store.create(params["sobject"], _body(request))
        return Reply(201, {"id": record_id, "success": True, "errors": []})

    def _get(self, request: Request, params: dict[str, str]) -> Reply:
        names = [n.strip() for n in request.args.get("fields", "").split(",") if n.strip()] or None
        return Reply(200, self.store.get(params["sobject"], params["id"], names, params["version"]))

    def _update(self, request: Request, params: dict[str, str]) -> Reply:
        self.store.update(params["sobject"], params["id"], _body(request))
        return Reply(204)

    def _delete(self, request: Request, params: dict[str, str]) -> Reply:
        self.store.delete(params["sobject"], params["id"])
        return Reply(204)

    def _get_by_external_id(self, request: Request, params: dict[str, str]) -> Reply:
        found = self.store.by_external_id(
            params["sobject"], params["field"], params["value"], params["version"]
        )
        if not found:
            return Reply(
                404, SalesforceError(404, "NOT_FOUND", "The requested resource does not exist").body()
            )
        if len(found) > 1:
            return Reply(300, [r["attributes"]["url"] for r in found])
        return Reply(200, found[0])

    def _upsert(self, request: Request, params: dict[str, str]) -> Reply:
        """201 with ``created: true`` for a new record. For an update, 200 with ``created: false``
        from API version 46.0 (when ``created`` was added), 204 before."""
        record_id, created = self.store.upsert(
            params["sobject"], params["field"], params["value"], _body(request)
        )
        body: Record = {"id": record_id, "success": True, "errors": []}
        if float(params["version"]) >= 46.0:
            return Reply(201 if created else 200, {**body, "created": created})
        return Reply(201, body) if created else Reply(204)

    def _query(self, request: Request, params: dict[str, str]) -> Reply:
        soql = request.args.get("q")
        if not soql:
            raise SalesforceError(400, "MALFORMED_QUERY", "A query string has to be specified")
        options = request.headers.get("Sforce-Query-Options", "")
        size = re.search(r"batchSize\s*=\s*(\d+)", options)
        batch = int(size.group(1)) if size else None
        return Reply(200, self.store.query(soql, params["version"], batch))

    # -- collections ---------------------------------------------------------------------------------

    def _create_many(self, request: Request, params: dict[str, str]) -> Reply:
        records, all_or_none = _collection(request)
        return Reply(200, self.store.create_many(records, all_or_none))

    def _update_many(self, request: Request, params: dict[str, str]) -> Reply:
        records, all_or_none = _collection(request)
        return Reply(200, self.store.update_many(records, all_or_none))

    def _upsert_many(self, request: Request, params: dict[str, str]) -> Reply:
        records, all_or_none = _collection(request)
        return Reply(200, self.store.upsert_many(params["sobject"], params["field"], records, all_or_none))

    # -- bulk ----------------------------------------------------------------------------------------

    def _upload(self, request: Request, params: dict[str, str]) -> Reply:
        self.store.upload(params["jobId"], request.get_data(as_text=True))
        return Reply(201)

    def _set_job_state(self, request: Request, params: dict[str, str]) -> Reply:
        return Reply(200, self.store.set_job_state(params["jobId"], str(_body(request).get("state") or "")))

    def _delete_job(self, request: Request, params: dict[str, str]) -> Reply:
        self.store.delete_job(params["jobId"])
        return Reply(204)

    def _results(self, kind: str) -> RouteHandler:
        def handler(request: Request, params: dict[str, str]) -> Reply:
            return Reply(200, self.store.job_results(params["jobId"], kind), content_type="text/csv")

        return handler


# -- helpers -----------------------------------------------------------------------------------------


def _bearer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() in ("bearer", "oauth") else None


def _basic(request: Request) -> tuple[str, str] | None:
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        client_id, _, secret = base64.b64decode(encoded).decode().partition(":")
    except ValueError:
        return None
    return client_id, secret


def _json(request: Request) -> Any:
    raw = request.get_data(cache=True)
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError as exc:  # the code is Salesforce's; the wording the fake's own
        raise SalesforceError(400, "JSON_PARSER_ERROR", f"Unexpected character in JSON body: {exc}") from exc


def _body(request: Request) -> Record:
    data = _json(request)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SalesforceError(400, "JSON_PARSER_ERROR", "The body must be a JSON object")
    return data


def _collection(request: Request) -> tuple[list[Any], bool]:
    body = _body(request)
    records = body.get("records")
    if not isinstance(records, list):
        raise SalesforceError(400, "JSON_PARSER_ERROR", "The body needs a records array")
    return records, bool(body.get("allOrNone", False))


def _fault_reply(call: Call, error: SalesforceError) -> Reply:
    """An injected failure in the shape of the route's answers: Salesforce's array for REST, an
    OAuth error for the token endpoint ("unknown_error"/"retry your request", as the token endpoint
    answers when it fails on its side: github.com/salto-io/salto/pull/2834), a SOAP fault for
    ``login()``."""
    if call.route == "/services/oauth2/token":
        body = {"error": "unknown_error", "error_description": error.message or "retry your request"}
        return Reply(error.status, body)
    if call.route.startswith("/services/Soap/"):
        fault = (
            '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope '
            'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
            'xmlns:sf="urn:fault.partner.soap.sforce.com"><soapenv:Body><soapenv:Fault>'
            f"<faultcode>{error.code}</faultcode><faultstring>{escape(error.code)}: {escape(error.message)}"
            "</faultstring><detail><sf:UnexpectedErrorFault>"
            f"<sf:exceptionCode>{error.code}</sf:exceptionCode>"
            f"<sf:exceptionMessage>{escape(error.message)}</sf:exceptionMessage>"
            "</sf:UnexpectedErrorFault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>"
        )
        return Reply(error.status, fault, content_type="text/xml;charset=UTF-8")
    return Reply(error.status, error.body())


def _login_fault() -> str:
    # The LoginFault body quoted in simple-salesforce's tests (simple_salesforce/tests/test_login.py)
    return (
        '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope '
        'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:sf="urn:fault.partner.soap.sforce.com" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><soapenv:Fault>'
        "<faultcode>INVALID_LOGIN</faultcode><faultstring>INVALID_LOGIN: Invalid username, password, "
        'security token; or user locked out.</faultstring><detail><sf:LoginFault xsi:type="sf:LoginFault">'
        "<sf:exceptionCode>INVALID_LOGIN</sf:exceptionCode><sf:exceptionMessage>Invalid username, password, "
        "security token; or user locked out.</sf:exceptionMessage></sf:LoginFault></detail></soapenv:Fault>"
        "</soapenv:Body></soapenv:Envelope>"
    )


def _response(reply: Reply) -> Response:
    if reply.body is None:
        return Response(b"", reply.status, dict(reply.headers))
    if isinstance(reply.body, str):
        return Response(reply.body, reply.status, dict(reply.headers), content_type=reply.content_type)
    data = json.dumps(reply.body, separators=(",", ":"))
    return Response(data, reply.status, dict(reply.headers), content_type=reply.content_type)


@pytest.fixture
def salesforce_fake() -> Iterator[SalesforceFake]:
    """A running fake with the default user and app; at teardown, unmet expectations fail the test."""
    with SalesforceFake() as fake:
        yield fake
        fake.verify()
