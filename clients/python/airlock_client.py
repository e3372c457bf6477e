"""A small client for the Airlock daemon (`airlock serve`), standard library only.

The daemon's API is plain HTTP/1.1 with JSON bodies, on a Unix socket under ``AIRLOCK_HOME`` (mode 0600) and,
with ``airlock serve --listen 127.0.0.1:PORT``, on a loopback port (HTTPS with client certificates when the daemon
has mutual TLS on). ``docs/openapi.json`` describes every operation; ``docs/daemon.md`` shows this module in use.

    from airlock_client import Airlock, AirlockError

    al = Airlock()                          # $AIRLOCK_HOME/airlock.sock, token from $AIRLOCK_TOKEN
    al = Airlock(url="http://127.0.0.1:7878", token="alk_...")
    al = Airlock(url="https://airlock.internal:7878", token="alk_...",     # mutual TLS
                 cafile="ca.pem", certfile="client.pem", keyfile="client.key")
    report = al.scan(tool_output, classifier=False)
    if report["verdict"] == "block":
        ...

Every method returns the answer's JSON body as a ``dict`` (``metrics()``: the exposition text;
``start_run()``: the run's events as they come). An answer that is not 2xx raises :class:`AirlockError`, built
from the RFC 9457 problem document the daemon sends; branch on ``err.kind`` (``forbidden``, ``rate-limited``,
...: the last segment of the problem's ``type`` URI), not on the prose. A daemon that cannot be reached raises
:class:`AirlockUnreachable` (an ``OSError``).

The token is a credential: it is kept out of ``repr()``, out of every exception this module raises, and is
only ever sent in the ``Authorization`` header of requests that need it.
"""

import base64
import collections
import http.client
import json
import os
import re
import socket
import ssl
import subprocess
import urllib.parse

__all__ = [
    "Airlock",
    "AirlockError",
    "AirlockUnreachable",
    "ToolRun",
    "default_home",
    "default_socket",
    "guarded_tool_output",
    "run_tool",
    "scan_long",
]

#: Seconds a request may take (connect, send, and each read) before it fails.
DEFAULT_TIMEOUT = 30.0

#: Where problem types are documented; ``AirlockError.kind`` is the part after it.
PROBLEM_BASE = "https://airlock.invalid/problems/"

_VERDICT_RANK = {"allow": 0, "flag": 1, "block": 2}

# How the daemon names providers and capabilities, and tools.
_CAPABILITY_NAME = re.compile(r"\A[a-z0-9][a-z0-9-]{0,62}\Z")
_TOOL_NAME = re.compile(r"\A[A-Za-z0-9._-]{1,64}\Z")
# "No body": ``body=None`` sends a JSON null.
_UNSET = object()


def default_home():
    """The state directory, resolved as the ``airlock`` binary does it.

    ``$AIRLOCK_HOME``, else ``$XDG_DATA_HOME/airlock``, else ``~/.local/share/airlock`` (an empty variable
    counts as unset).
    """
    home = os.environ.get("AIRLOCK_HOME")
    if home:
        return home
    xdg = os.environ.get("XDG_DATA_HOME")
    if xdg:
        return os.path.join(xdg, "airlock")
    user_home = os.environ.get("HOME")
    if not user_home:
        raise RuntimeError("cannot find Airlock's state directory: set AIRLOCK_HOME")
    return os.path.join(user_home, ".local", "share", "airlock")


def default_socket():
    """The daemon's default Unix socket: ``airlock.sock`` in :func:`default_home`."""
    return os.path.join(default_home(), "airlock.sock")


class AirlockError(Exception):
    """A non-2xx answer from the daemon, from its RFC 9457 problem document.

    ``status`` is the HTTP status; ``type`` the problem type URI (``https://airlock.invalid/problems/forbidden``),
    and ``kind`` its last segment (``forbidden``); ``title`` and ``detail`` the daemon's words; ``instance`` the
    request path; ``retry_after`` the seconds from a ``Retry-After`` header (429, 503), else ``None``.
    """

    def __init__(self, status, type, title, detail, instance=None, retry_after=None):
        self.status = status
        self.type = type
        self.title = title
        self.detail = detail
        self.instance = instance
        self.retry_after = retry_after
        super().__init__(status, type, title, detail)

    @property
    def kind(self):
        """The problem type's last segment: ``unauthorized``, ``forbidden``, ``rate-limited``, ..."""
        if self.type and self.type.startswith(PROBLEM_BASE):
            return self.type[len(PROBLEM_BASE):]
        return self.type

    def __str__(self):
        text = "%s %s" % (self.status, self.title or "error")
        if self.detail:
            text += ": %s" % self.detail
        if self.type:
            text += " [%s]" % self.type
        return text

    def __repr__(self):
        return "AirlockError(status=%r, type=%r, title=%r, detail=%r)" % (
            self.status,
            self.type,
            self.title,
            self.detail,
        )


class AirlockUnreachable(OSError):
    """The daemon could not be reached (no socket, nothing listening, a timeout, a dropped connection)."""


class _UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP/1.1 over a Unix stream socket: ``HTTPConnection`` with a ``connect`` that opens ``AF_UNIX``."""

    def __init__(self, path, timeout=DEFAULT_TIMEOUT):
        # The host only fills the Host header; the daemon does not route on it.
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(self.socket_path)
        except BaseException:
            sock.close()
            raise
        self.sock = sock


def _media_type(content_type):
    return (content_type or "").split(";")[0].strip().lower()


def _decode(content_type, raw):
    """The body as JSON for JSON media types (when it parses), else as text."""
    text = raw.decode("utf-8", errors="replace")
    media = _media_type(content_type)
    if media == "application/json" or media.endswith("+json"):
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text


def _valid_token(token):
    # http.client would reject a header value with CR/LF, but its error message quotes the value: check first,
    # and say what is wrong without repeating the token.
    return isinstance(token, str) and token != "" and all("\x21" <= c <= "\x7e" for c in token)


class Airlock:
    """A client for one daemon, over its Unix socket (the default) or a loopback URL.

    ``Airlock()`` talks to ``$AIRLOCK_HOME/airlock.sock``; ``Airlock(socket_path=...)`` to another socket;
    ``Airlock(url="http://127.0.0.1:7878")`` to a daemon started with ``--listen``. ``token`` is an agent's
    bearer token (``airlock agent add``); without one, ``$AIRLOCK_TOKEN`` is used, and without that only
    ``health()``, ``ready()`` and ``openapi()`` work.

    A daemon with mutual TLS (``--tls-cert``, ``--tls-key``, ``--client-ca``) takes ``https://HOST:PORT``:
    ``cafile`` is the CA that signed the daemon's certificate (default: the system's), ``certfile`` and
    ``keyfile`` this client's certificate and key (PEM; ``keyfile`` may be left out if ``certfile`` holds both).
    Or pass a ready ``ssl_context``. The token is still needed.

    Each request opens its own connection, so one client may be shared between threads.
    """

    def __init__(self, socket_path=None, url=None, token=None, timeout=DEFAULT_TIMEOUT, cafile=None,
                 certfile=None, keyfile=None, ssl_context=None):
        if socket_path is not None and url is not None:
            raise ValueError("give socket_path or url, not both")
        tls_options = (cafile, certfile, keyfile, ssl_context)
        if token is None:
            token = os.environ.get("AIRLOCK_TOKEN") or None
        if token is not None and not _valid_token(token):
            raise ValueError("the token is not a valid bearer token (printable ASCII, no spaces)")
        self._token = token
        self.timeout = timeout
        self.url = None
        self.socket_path = None
        self._ssl = None
        if url is not None:
            parts = urllib.parse.urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError("url must be http://HOST:PORT (loopback) or https://HOST:PORT (mutual TLS)")
            if parts.username or parts.password or parts.query or parts.fragment:
                raise ValueError("url must be http(s)://HOST:PORT[/PREFIX], without credentials, query or fragment")
            if parts.scheme == "https":
                if ssl_context is not None and (cafile or certfile or keyfile):
                    raise ValueError("give ssl_context or cafile/certfile/keyfile, not both")
                if ssl_context is None:
                    # Verifies the daemon's certificate and name; TLS 1.2 at least.
                    ssl_context = ssl.create_default_context(cafile=cafile)
                    ssl_context.minimum_version = ssl.TLSVersion.TLSv1_2
                    if certfile:
                        ssl_context.load_cert_chain(certfile, keyfile)
                    elif keyfile:
                        raise ValueError("keyfile needs certfile")
                self._ssl = ssl_context
            elif any(o is not None for o in tls_options):
                raise ValueError("cafile, certfile, keyfile and ssl_context need an https:// url")
            self.url = url.rstrip("/")
            self._host = parts.hostname
            self._port = parts.port or (443 if self._ssl is not None else 80)
            self._prefix = parts.path.rstrip("/")
        else:
            if any(o is not None for o in tls_options):
                raise ValueError("cafile, certfile, keyfile and ssl_context need an https:// url")
            self.socket_path = os.fspath(socket_path) if socket_path is not None else default_socket()
            self._prefix = ""

    def __repr__(self):
        where = "url=%r" % self.url if self.url is not None else "socket_path=%r" % self.socket_path
        return "Airlock(%s, token=%s)" % (where, "<set>" if self._token else "None")

    # -- plumbing ------------------------------------------------------------------------------------------

    def _connection(self):
        if self._ssl is not None:
            return http.client.HTTPSConnection(self._host, self._port, timeout=self.timeout, context=self._ssl)
        if self.url is not None:
            return http.client.HTTPConnection(self._host, self._port, timeout=self.timeout)
        return _UnixHTTPConnection(self.socket_path, timeout=self.timeout)

    def _where(self):
        return self.url if self.url is not None else self.socket_path

    def _scrub(self, text):
        # The daemon never echoes a token; this is belt and braces for anything quoted back.
        if isinstance(text, str) and self._token and self._token in text:
            return text.replace(self._token, "[token]")
        return text

    def request(self, method, path, body=None, auth=True, accept_statuses=(), headers=None, problems_only=False):
        """Sends one request and returns ``(status, content_type, payload)``.

        ``body`` (any JSON value) is sent as ``application/json``; ``headers`` are added to the request.
        ``payload`` is the decoded JSON for JSON answers, else the text. A non-2xx answer raises
        :class:`AirlockError` unless its status is in ``accept_statuses`` or, with ``problems_only``, it is not a
        problem document (an upstream's own answer to a capability call); a transport failure raises
        :class:`AirlockUnreachable`.
        """
        data = None if body is None else json.dumps(body, ensure_ascii=False).encode("utf-8")
        extra = headers
        headers = self._headers(json_body=body is not None, auth=auth)
        headers.update(extra or {})
        conn = self._connection()
        try:
            try:
                conn.request(method, self._prefix + path, body=data, headers=headers)
            except (BrokenPipeError, ConnectionResetError):
                # The daemon may answer before reading the whole body (413 on a Content-Length over its limit)
                # and close: the answer is still there to read. If it is not, the error below is raised.
                pass
            resp = conn.getresponse()
            raw = resp.read()
            status = resp.status
            reason = resp.reason
            content_type = resp.getheader("Content-Type")
            retry_after = resp.getheader("Retry-After")
        except (OSError, http.client.HTTPException) as e:
            # Neither carries request headers; name the daemon and the failure only.
            raise AirlockUnreachable("cannot reach the Airlock daemon at %s: %s" % (self._where(), e)) from None
        finally:
            conn.close()
        if 200 <= status < 300 or status in accept_statuses or (
            problems_only and _media_type(content_type) != "application/problem+json"
        ):
            return status, _media_type(content_type), _decode(content_type, raw)
        self._raise(status, reason, content_type, retry_after, raw)

    def _headers(self, json_body=False, auth=True):
        headers = {"Accept": "application/json, application/problem+json, application/x-ndjson, text/plain"}
        if json_body:
            headers["Content-Type"] = "application/json"
        if auth and self._token:
            headers["Authorization"] = "Bearer " + self._token
        return headers

    def _raise(self, status, reason, content_type, retry_after, raw):
        payload = _decode(content_type, raw)
        if isinstance(payload, dict):
            problem = payload
        else:
            problem = {"title": reason, "detail": str(payload)[:500]}
        try:
            retry = int(retry_after) if retry_after is not None else None
        except ValueError:
            retry = None
        raise AirlockError(
            status,
            self._scrub(problem.get("type")),
            self._scrub(problem.get("title", reason)),
            self._scrub(problem.get("detail", "")),
            instance=self._scrub(problem.get("instance")),
            retry_after=retry,
        ) from None

    def _json(self, method, path, body=None, auth=True):
        return self.request(method, path, body=body, auth=auth)[2]

    @staticmethod
    def _run_path(run_id, verb=None):
        if not isinstance(run_id, str) or not run_id:
            raise ValueError("a run id is a non-empty string (16 lower-case hex digits)")
        path = "/v1/runs/" + urllib.parse.quote(run_id, safe="")
        return path + "/" + verb if verb else path

    # -- the API ---------------------------------------------------------------------------------------------

    def health(self):
        """``GET /v1/health``: ``{"status": "ok", "version": ...}``. No token needed."""
        return self._json("GET", "/v1/health", auth=False)

    def ready(self):
        """``GET /v1/ready``: ``{"ready", "policy_generation", "audit", "lockdown"}``. No token needed.

        A daemon that is not ready answers 503 with the same body; that body is returned (``ready`` false)
        rather than raised.
        """
        status, _, payload = self.request("GET", "/v1/ready", auth=False, accept_statuses=(503,))
        if status == 503 and not (isinstance(payload, dict) and "ready" in payload):
            raise AirlockError(503, None, "Service Unavailable", str(payload)[:500])
        return payload

    def openapi(self):
        """``GET /v1/openapi.json``: the API's OpenAPI 3.1 document. No token needed."""
        return self._json("GET", "/v1/openapi.json", auth=False)

    def whoami(self):
        """``GET /v1/whoami``: ``{"name", "role", "parent"}`` of the token's agent."""
        return self._json("GET", "/v1/whoami")

    def scan(self, text, profile=None, classifier=True):
        """``POST /v1/guard/scan``: prompt-injection assessment of ``text``.

        ``{"risk": 0..1, "verdict": "allow"|"flag"|"block", "layers", "evidence", "tricks", ...}``. ``profile``
        is ``strict``, ``default`` or ``permissive``; ``classifier=False`` runs the heuristics alone. Quoted text
        in the report comes back with credentials masked.
        """
        body = {"text": text, "classifier": bool(classifier)}
        if profile is not None:
            body["profile"] = profile
        return self._json("POST", "/v1/guard/scan", body)

    def spotlight(self, text, mode, session=None):
        """``POST /v1/guard/spotlight``: ``{"mode", "system_prompt", "text"}``.

        ``mode`` is ``delimit``, ``datamark`` or ``encode``. With ``session`` (1 to 128 characters) every call
        of one session uses the same marker, so one system prompt covers them all.
        """
        body = {"text": text, "mode": mode}
        if session is not None:
            body["session"] = session
        return self._json("POST", "/v1/guard/spotlight", body)

    def redact(self, text, mask=None):
        """``POST /v1/redact``: ``{"text": masked, "findings": [...]}`` (findings never carry the values).

        ``mask`` is ``label`` (the default: ``[REDACTED:rule]``) or ``shape``.
        """
        body = {"text": text}
        if mask is not None:
            body["mask"] = mask
        return self._json("POST", "/v1/redact", body)

    def lockdown(self):
        """``GET /v1/lockdown``: ``{"lockdown": null}`` or ``{"lockdown": {"since_unix_ms", "reason", "by"}}``."""
        return self._json("GET", "/v1/lockdown")

    def set_lockdown(self, engaged, reason=None):
        """``PUT /v1/lockdown`` (admins): engage (every run is killed) or lift the global kill switch.

        ``{"lockdown", "changed", "killed"?}``.
        """
        body = {"engaged": bool(engaged)}
        if reason is not None:
            body["reason"] = reason
        return self._json("PUT", "/v1/lockdown", body)

    def runs(self):
        """``GET /v1/runs``: ``{"runs": [...]}``, the runs this agent may see (its own and its sub-agents')."""
        return self._json("GET", "/v1/runs")

    def run(self, id):
        """``GET /v1/runs/{id}``: one run (``run``, ``agent``, ``tool``, ``parent``, ``depth``, ``command``, ...)."""
        return self._json("GET", self._run_path(id))

    def run_tree(self, id):
        """``GET /v1/runs/{id}/tree``: the run and the live runs below it, nested: each as :meth:`run` returns it,
        with ``children`` (oldest first). Only runs this agent may see; one it may not is left out with everything
        below it, and a root it may not see raises :class:`AirlockError` 404. At most 32 levels and 1000 runs: a run
        whose children were cut has ``truncated: True``."""
        return self._json("GET", self._run_path(id, "tree"))

    def kill(self, id):
        """``POST /v1/runs/{id}/kill``: ``{"run", "action": "kill", "outcome"}``."""
        return self._json("POST", self._run_path(id, "kill"))

    def pause(self, id):
        """``POST /v1/runs/{id}/pause``: freeze a run. ``{"run", "action": "pause", "outcome"}``."""
        return self._json("POST", self._run_path(id, "pause"))

    def resume(self, id):
        """``POST /v1/runs/{id}/resume``: thaw a paused run. ``{"run", "action": "resume", "outcome"}``."""
        return self._json("POST", self._run_path(id, "resume"))

    def start_run(self, tool, command, agent=None, parent=None, stdin=None, workspace=None, timeout=None):
        """``POST /v1/runs``: starts ``command`` (a list; run directly, never through a shell) as tool ``tool`` in a
        sandbox, exactly as ``airlock run`` would, and yields its events as they come (dicts):

        ``{"event": "queued"}`` (only while it waits for a slot), ``{"event": "started", "run": ID}``,
        ``{"event": "stdout"|"stderr", "data": TEXT}`` (already redacted), and last
        ``{"event": "exit", "run": ID, "code": N, "signal": S}`` (or ``{"event": "error", "message": ...}``).

        ``agent`` is the caller (default) or one of its sub-agents; ``workspace`` is ``${WORKSPACE}`` for the run
        (a directory as the daemon sees it; default: the daemon's working directory, so pass your own).
        ``timeout`` bounds each wait for the next event (default: none, as runs may be quiet for long). The
        request is made at the first ``next()``. Closing the generator early closes the connection, and the daemon
        kills a run whose client went away (for now, only once the run next prints something). A refusal raises
        :class:`AirlockError` before any event.
        """
        if isinstance(command, (str, bytes)):
            raise TypeError("command is a list of arguments (it is run directly, never through a shell)")
        body = {"tool": tool, "command": [os.fspath(a) for a in command]}
        for key, value in (("agent", agent), ("parent", parent), ("stdin", stdin), ("workspace", workspace)):
            if value is not None:
                body[key] = os.fspath(value) if key == "workspace" else value
        conn = self._connection()
        conn.timeout = timeout
        try:
            try:
                data = json.dumps(body, ensure_ascii=False).encode("utf-8")
                conn.request("POST", self._prefix + "/v1/runs", body=data, headers=self._headers(json_body=True))
                resp = conn.getresponse()
            except (OSError, http.client.HTTPException) as e:
                raise AirlockUnreachable("cannot reach the Airlock daemon at %s: %s" % (self._where(), e)) from None
            if not 200 <= resp.status < 300:
                raw = resp.read()
                self._raise(resp.status, resp.reason, resp.getheader("Content-Type"), resp.getheader("Retry-After"),
                            raw)
            while True:
                try:
                    line = resp.readline()
                except (OSError, http.client.HTTPException) as e:
                    raise AirlockUnreachable("the run's stream from %s broke: %s" % (self._where(), e)) from None
                if not line:
                    return
                line = line.strip()
                if line:
                    yield json.loads(line.decode("utf-8"))
        finally:
            conn.close()

    def run_command(self, tool, command, agent=None, parent=None, stdin=None, workspace=None, timeout=None):
        """``POST /v1/runs``, collected: ``{"run", "exit_code", "signal", "stdout", "stderr"}`` once the run ends.

        ``exit_code`` is as for ``airlock run`` (the tool's own; 9 policy refused the run, 11 protections missing,
        12 the sandbox could not be set up) and ``None`` when a signal ended it. A run that could not be started
        at all (an ``error`` event) raises :class:`AirlockError` with status 0 and type ``None``.
        """
        out = {"run": None, "exit_code": None, "signal": None, "stdout": "", "stderr": ""}
        stdout, stderr = [], []
        for ev in self.start_run(tool, command, agent=agent, parent=parent, stdin=stdin, workspace=workspace,
                                 timeout=timeout):
            kind = ev.get("event")
            if kind == "started":
                out["run"] = ev.get("run")
            elif kind == "stdout":
                stdout.append(ev.get("data", ""))
            elif kind == "stderr":
                stderr.append(ev.get("data", ""))
            elif kind == "exit":
                out["exit_code"], out["signal"] = ev.get("code"), ev.get("signal")
            elif kind == "error":
                raise AirlockError(0, None, "The run failed", ev.get("message", ""), instance="/v1/runs")
        out["stdout"], out["stderr"] = "".join(stdout), "".join(stderr)
        return out

    def validate_output(self, text, schema=None, allow_hosts=None, input_len=None, max_ratio=None):
        """``POST /v1/guard/validate-output``: checks a model's output before it acts or renders.

        ``{"verdict": "allow"|"flag"|"block", ...}`` with the findings (masked): exfiltration URLs (markdown and
        HTML images, links) to hosts not in ``allow_hosts``, secrets and personal data, canaries, a JSON
        ``schema`` the output must match, and a length ratio (``max_ratio`` with ``input_len``, together).
        """
        body = {"text": text}
        for key, value in (("schema", schema), ("allow_hosts", allow_hosts), ("input_len", input_len),
                           ("max_ratio", max_ratio)):
            if value is not None:
                body[key] = list(value) if key == "allow_hosts" else value
        return self._json("POST", "/v1/guard/validate-output", body)

    def policy_explain(self, agent, action, resource, tool=None, method=None, target=None, verb=None, owner=None,
                       risk=None, bytes=None):
        """``POST /v1/policy/explain``: decides a request by the current policy and says why.

        ``{"allowed", "decision", "reason", "policies", "errors", ...}``. ``action`` is one of ``http.request``,
        ``fs.read``, ``fs.write``, ``fs.exec``, ``exec``, ``secret.use`` (these need ``tool``; ``secret.use``
        also ``target``) or ``api.call`` (needs ``verb``). An agent may ask about itself and its sub-agents.
        """
        body = {"agent": agent, "action": action, "resource": resource}
        for key, value in (("tool", tool), ("method", method), ("target", target), ("verb", verb), ("owner", owner),
                           ("risk", risk), ("bytes", bytes)):
            if value is not None:
                body[key] = value
        return self._json("POST", "/v1/policy/explain", body)

    def audit_verify(self, max_age_ms=None):
        """``GET /v1/audit/verify`` (auditors, admins): the report ``airlock audit verify --json`` prints (``ok``,
        ``key``, ``records``, ``tree_size``, ``problems``, ...), with the newest checkpoint's ``note``. With
        ``max_age_ms``, a newest checkpoint older than that is a problem (the writer stopped)."""
        path = "/v1/audit/verify"
        if max_age_ms is not None:
            path += "?max_age_ms=%d" % max_age_ms
        return self._json("GET", path)

    def audit_records(self, since=None, until=None, event_class=None, actor=None, decision=None, limit=None,
                      from_seq=None):
        """``GET /v1/audit/records`` (auditors, admins): ``{"records": [...]}``, the newest that match, oldest first.

        ``since``/``until``: milliseconds since the epoch (inclusive/exclusive); ``event_class``: ``api``,
        ``process``, ``finding``, ``entity``, ``lifecycle`` (or an OCSF class name or uid); ``actor``: an agent
        name; ``decision``: ``allow`` or ``deny``; ``limit``: 1 to 1000 (default 100). With ``from_seq``, the oldest
        ``limit`` that match from that record on instead: to read the whole log, start at 0 and go on from the last
        record's ``metadata.sequence`` + 1 until an answer holds fewer than ``limit``.
        """
        query = []
        for key, value in (("since", since), ("until", until), ("class", event_class), ("actor", actor),
                           ("decision", decision), ("limit", limit), ("from_seq", from_seq)):
            if value is not None:
                query.append((key, str(value)))
        path = "/v1/audit/records"
        if query:
            path += "?" + urllib.parse.urlencode(query, quote_via=urllib.parse.quote)
        return self._json("GET", path)

    def metrics(self):
        """``GET /metrics``: the Prometheus text exposition (a ``str``)."""
        return self.request("GET", "/metrics")[2]

    def audit_checkpoint(self):
        """``GET /v1/audit/checkpoint`` (auditors, admins): the audit log's latest signed checkpoint, ``{"origin",
        "size", "root", "time_ms", "note", "key"}``, covering every record so far. Keep ``note`` where this machine
        cannot rewrite it, and verify the log against it later (``airlock audit verify --checkpoint FILE``)."""
        return self._json("GET", "/v1/audit/checkpoint")

    @staticmethod
    def _secret_path(name, workspace=None, verb=None):
        if not isinstance(name, str) or not name:
            raise ValueError("a secret name is a non-empty string")
        path = "/v1/secrets/" + urllib.parse.quote(name, safe="")
        if verb:
            path += "/" + verb
        if workspace is not None:
            path += "?" + urllib.parse.urlencode({"workspace": workspace})
        return path

    @staticmethod
    def _secret_value(value):
        # Text goes as text; bytes in base64 (they need not be UTF-8).
        if isinstance(value, str):
            return {"value": value}
        if isinstance(value, (bytes, bytearray)):
            return {"value_base64": base64.b64encode(bytes(value)).decode("ascii")}
        raise TypeError("a secret value is a str or bytes")

    def secrets(self, workspace=None):
        """``GET /v1/secrets``: ``{"secrets": [...]}``, the metadata of the secrets this agent may see (admins and
        auditors: every one; an agent: those its tools use), never a value; ``workspace`` keeps that one's."""
        path = "/v1/secrets"
        if workspace is not None:
            path += "?" + urllib.parse.urlencode({"workspace": workspace})
        return self._json("GET", path)

    def secret(self, name, workspace=None):
        """``GET /v1/secrets/{name}``: one secret's metadata (``workspace`` default: ``default``)."""
        return self._json("GET", self._secret_path(name, workspace))

    def create_secret(self, name, value, workspace=None, hosts=None, injection=None, exposure=None, group=None,
                      tags=None, keep_versions=None):
        """``POST /v1/secrets`` (admins): stores a new secret and returns its metadata (never the value).

        ``value``: a ``str`` (sent as text) or ``bytes`` (sent in base64). ``hosts``: where the broker may send it
        (``api.example.com``, ``*.example.com``, ``[::1]:8443``). ``injection``: as the metadata shows it, e.g.
        ``{"type": "header", "name": "Authorization", "template": "Bearer {}"}``, ``{"type": "query", "param":
        "key"}`` or ``{"type": "basic", "username": "u"}``. ``exposure``: ``surrogate`` (default) or ``env``.
        A taken name raises :class:`AirlockError` with kind ``conflict``.
        """
        body = {"name": name}
        body.update(self._secret_value(value))
        for key, option in (("workspace", workspace), ("hosts", hosts), ("injection", injection),
                            ("exposure", exposure), ("group", group), ("tags", tags),
                            ("keep_versions", keep_versions)):
            if option is not None:
                body[key] = option
        return self._json("POST", "/v1/secrets", body)

    def rotate_secret(self, name, value, workspace=None):
        """``POST /v1/secrets/{name}/rotate`` (admins): a new value (``str`` or ``bytes``); the old one is kept as a
        previous version. Returns the metadata; the current value again raises (kind ``conflict``)."""
        return self._json("POST", self._secret_path(name, workspace, "rotate"), self._secret_value(value))

    def pin_secret(self, name, host, workspace=None):
        """``POST /v1/secrets/{name}/pin`` (admins): one more host the secret may be sent to. Returns the metadata."""
        return self._json("POST", self._secret_path(name, workspace, "pin"), {"host": host})

    def capability(self, provider, capability, tool, method, path, query=None, headers=None, body=_UNSET,
                   body_text=None, body_base64=None):
        """``POST /v1/capabilities/{provider}/{capability}`` (agents, admins): calls a provider's API through the
        daemon, acting as ``tool`` (which the policy must grant this agent, and which must hold the provider's
        secret). The daemon injects the credential; this client never sees it.

        ``method`` and ``path`` (under the capability's prefixes), ``query`` (a dict, or a list of ``[name, value]``
        pairs), ``headers`` (a dict; no auth, framing or routing headers) and at most one of ``body`` (any JSON
        value, ``None`` included), ``body_text`` and ``body_base64`` make the call envelope (``docs/broker.md``).

        Returns ``(status, content_type, payload)``: the upstream's answer, whatever its status (a 404 of its API
        is its answer, not an error here). A refusal by Airlock (policy, path, secret pins, unknown provider, ...)
        raises :class:`AirlockError`.
        """
        for name, value in (("provider", provider), ("capability", capability)):
            if not isinstance(value, str) or not _CAPABILITY_NAME.match(value):
                raise ValueError("%s: lower-case letters, digits and '-' (as the provider defines it)" % name)
        if not isinstance(tool, str) or not _TOOL_NAME.match(tool):
            raise ValueError("tool: a tool name from the policy (letters, digits, '-', '_', '.')")
        envelope = {"method": method, "path": path}
        if query is not None:
            envelope["query"] = query
        if headers is not None:
            envelope["headers"] = headers
        if body is not _UNSET:
            envelope["body"] = body
        if body_text is not None:
            envelope["body_text"] = body_text
        if body_base64 is not None:
            envelope["body_base64"] = body_base64
        return self.request("POST", "/v1/capabilities/%s/%s" % (provider, capability), envelope,
                            headers={"X-Airlock-Tool": tool}, problems_only=True)


def _worst(assessments):
    return max(assessments, key=lambda a: (_VERDICT_RANK.get(a.get("verdict"), 3), a.get("risk", 0)))


def scan_long(client, text, chunk_chars=100_000, overlap_chars=2_000, **scan_args):
    """Scans text of any length: in overlapping chunks, returning the worst assessment (``block`` over ``flag``
    over ``allow``, then the higher risk). A chunk of 100,000 characters stays under the daemon's default 1 MiB
    body limit even if every character needs a 6-byte JSON escape; lower it for a daemon with a smaller
    ``--max-body``.

    The overlap keeps an injection that straddles a chunk boundary whole in one of the chunks.
    """
    if len(text) <= chunk_chars:
        return client.scan(text, **scan_args)
    if overlap_chars >= chunk_chars:
        raise ValueError("overlap_chars must be smaller than chunk_chars")
    step = chunk_chars - overlap_chars
    results = []
    start = 0
    while True:
        results.append(client.scan(text[start:start + chunk_chars], **scan_args))
        if start + chunk_chars >= len(text):
            break
        start += step
    return _worst(results)


def guarded_tool_output(client, text, session=None, mode="datamark", profile=None, classifier=True):
    """Screens a tool's output before it goes into a model's context: scan it, then spotlight it.

    Returns ``(text_for_the_model, system_prompt, assessment)``. A ``block`` verdict replaces the output with a
    short notice (the model never sees it); anything else is wrapped by the spotlight ``mode`` so that the
    model can tell data from instructions, and ``system_prompt`` is the snippet that explains the marking
    (with a ``session``, the same for every call of that session).
    """
    assessment = scan_long(client, text, profile=profile, classifier=classifier)
    if assessment["verdict"] == "block":
        notice = "[tool output withheld: Airlock judged it a prompt injection (risk %.2f)]" % assessment["risk"]
        wrapped = client.spotlight(notice, mode, session=session)
        return wrapped["text"], wrapped["system_prompt"], assessment
    wrapped = client.spotlight(text, mode, session=session)
    return wrapped["text"], wrapped["system_prompt"], assessment


#: What :func:`run_tool` returns. ``exit_code``: the tool's exit status, 128+N for signal N, or Airlock's own
#: (9: policy refused the run, 11: a protection the policy needs is missing here, 12: the sandbox could not be
#: set up). ``stdout`` and ``stderr``: what the tool printed, already redacted by ``airlock run`` (Airlock's own
#: messages follow on stderr, ``airlock: ...``). ``assessment``: the scan of stdout (a dict), or ``None``
#: without a client.
ToolRun = collections.namedtuple("ToolRun", ["exit_code", "stdout", "stderr", "assessment"])


def run_tool(cmd, agent=None, tool=None, client=None, airlock="airlock", config=None, timeout=None, env=None,
             input=None, profile=None, classifier=True, extra_args=()):
    """Runs ``cmd`` as one tool call in an Airlock sandbox and screens what it printed.

    This is ``airlock run [--agent AGENT] [--tool TOOL] [--config CONFIG] -- CMD...``: the command runs
    directly (no shell) under the policy of ``airlock.toml`` (namespaces, Landlock, seccomp, limits, egress only
    through the broker), and its output comes back already redacted. Then, when ``client`` is given, stdout is
    scanned for prompt injection through the daemon before anyone hands it to a model.

    With ``AIRLOCK_TOKEN`` in the environment and the daemon answering on the home's socket, ``airlock run`` is
    itself a request to the daemon (``POST /v1/runs``) as that token's agent, and needs no vault passphrase;
    with ``config`` or ``extra_args`` it runs standalone, and then unlocks the vault itself. For runs from
    Python without the CLI, see :meth:`Airlock.start_run` and :meth:`Airlock.run_command`.

    ``airlock`` is the binary; ``env`` the environment for it (default: this process's, which carries
    ``AIRLOCK_HOME`` and how to unlock the vault); ``extra_args`` more ``airlock run`` options (``--profile``,
    ``--workspace``, ...). Returns a :class:`ToolRun`. Raises ``subprocess.TimeoutExpired`` after ``timeout``
    seconds (the run is killed) and :class:`AirlockError` if the scan is refused.
    """
    if isinstance(cmd, (str, bytes)):
        raise TypeError("cmd is a list of arguments (it is run directly, never through a shell)")
    argv = [os.fspath(airlock), "run"]
    if agent is not None:
        argv += ["--agent", agent]
    if tool is not None:
        argv += ["--tool", tool]
    if config is not None:
        argv += ["--config", os.fspath(config)]
    argv += list(extra_args)
    argv += ["--"] + [os.fspath(a) for a in cmd]
    done = subprocess.run(
        argv,
        input=input,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        timeout=timeout,
        text=True,
        errors="replace",
        check=False,
    )
    assessment = None
    if client is not None:
        assessment = scan_long(client, done.stdout, profile=profile, classifier=classifier)
    return ToolRun(done.returncode, done.stdout, done.stderr, assessment)
