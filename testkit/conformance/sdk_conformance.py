#!/usr/bin/env python3
"""Drive a Genesys Cloud Platform API simulator with the OFFICIAL Python SDK
(PureCloudPlatformClientV2, pinned in requirements.lock) and fail when a
response does not match the SDK's models.

Usage:  sdk_conformance.py SCENARIO.json

Scenario keys: base_url, client_id, client_secret, bad_client_secret, flow_id,
interval, expect_sessions_min; optional: page_size (default 2), turn_sessions
(how many sessions to fetch reporting turns for, default 3), max_pages (default
500), rate_limit ({"max_calls": 400}; the 429 check is skipped when absent),
token_rate_limit ({"max_logins": 20}; the throttled-login check is skipped
when absent).

Prints one "ok ..." / "FAIL ..." line per check ("info ..." lines are not
checks). Exit 0: all passed; 1: a check failed; 2: the SDK is not importable;
3: bad usage / scenario.
"""
import inspect
import json
import re
import sys
import time
from datetime import datetime, timezone
from urllib.parse import parse_qs, urlsplit

try:
    import PureCloudPlatformClientV2 as sdk
    from PureCloudPlatformClientV2 import models as sdk_models
    from PureCloudPlatformClientV2.rest import ApiException
    import urllib3  # an SDK dependency (its HTTP layer)
    from dateutil.parser import isoparse  # an SDK dependency (its datetime parser)
except Exception as e:  # noqa: BLE001
    print("FAIL the Genesys Cloud Python SDK (PureCloudPlatformClientV2) is not importable: %s: %s\n"
          "     install it: python3 -m venv venv && venv/bin/pip install -r requirements.lock, "
          "then run this script with venv/bin/python" % (type(e).__name__, e))
    sys.exit(2)

SDK_VERSION = getattr(sdk, "__version__", None)
try:
    from importlib.metadata import version as _dist_version
    SDK_VERSION = _dist_version("PureCloudPlatformClientV2")
except Exception:  # noqa: BLE001
    pass

# Bodies the SDK has no model for.  The SDK itself reads only "access_token"
# from the token response (ApiClient.get_client_credentials_token) and never
# parses the OAuth error body (it surfaces as ApiException.body).  These key
# sets are the documented Genesys Cloud login-host shapes.
TOKEN_RESPONSE_KEYS = {"access_token", "token_type", "expires_in"}
OAUTH_ERROR_KEYS = {"error", "description", "error_description"}
RATE_HEADERS = ("inin-ratelimit-allowed", "inin-ratelimit-count", "inin-ratelimit-reset")
PRIMITIVES = {"str", "int", "float", "bool", "datetime", "date", "object", "LocalDateTime", "YearMonth"}


class Report:
    def __init__(self):
        self.failed = 0
        self.passed = 0

    def ok(self, msg):
        self.passed += 1
        print("ok   " + msg, flush=True)

    def fail(self, msg):
        self.failed += 1
        print("FAIL " + msg, flush=True)

    def info(self, msg):
        print("info " + msg, flush=True)

    def check(self, cond, msg, why=""):
        if cond:
            self.ok(msg)
        else:
            self.fail(msg + (": " + why if why else ""))
        return cond


R = Report()


# --------------------------------------------------------------------------
# Strict model check: raw JSON vs swagger_types / attribute_map, recursively.
# --------------------------------------------------------------------------
_enum_cache = {}


def model_enums(cls):
    """{json name: allowed values} from the model's property setters."""
    if cls in _enum_cache:
        return _enum_cache[cls]
    inst = cls()
    out = {}
    for attr in inst.swagger_types:
        prop = getattr(cls, attr, None)
        if isinstance(prop, property) and prop.fset is not None:
            try:
                m = re.search(r"allowed_values\s*=\s*(\[.*?\])", inspect.getsource(prop.fset), re.S)
            except (OSError, TypeError):
                m = None
            if m:
                out[inst.attribute_map[attr]] = json.loads(m.group(1))
    _enum_cache[cls] = out
    return out


def strict_check(value, type_name, path="$"):
    """Returns a list of problems ("<json path>: <what>")."""
    problems = []
    if value is None:
        return problems  # the SDK tolerates null for non-enum fields
    m = re.match(r"list\[(.*)\]$", type_name)
    if m:
        if not isinstance(value, list):
            return ["%s: expected an array (%s), got %s" % (path, type_name, type(value).__name__)]
        for i, v in enumerate(value):
            problems += strict_check(v, m.group(1), "%s[%d]" % (path, i))
        return problems
    m = re.match(r"dict\(([^,]*), (.*)\)$", type_name)
    if m:
        if not isinstance(value, dict):
            return ["%s: expected an object (%s), got %s" % (path, type_name, type(value).__name__)]
        for k, v in value.items():
            problems += strict_check(v, m.group(2), "%s.%s" % (path, k))
        return problems
    if type_name in PRIMITIVES:
        bad = {
            "str": lambda v: isinstance(v, str),
            "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
            "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
            "bool": lambda v: isinstance(v, bool),
        }.get(type_name)
        if bad is not None and not bad(value):
            problems.append("%s: expected %s, got %s %r" % (path, type_name, type(value).__name__, value))
        if type_name in ("datetime", "date", "LocalDateTime"):
            if not isinstance(value, str):
                problems.append("%s: expected an ISO-8601 string, got %r" % (path, value))
            else:
                try:
                    isoparse(value)
                except ValueError:
                    problems.append("%s: %r is not ISO-8601 (the SDK raises ApiException(status=0))" % (path, value))
        return problems
    cls = getattr(sdk_models, type_name, None)
    if cls is None:
        return ["%s: SDK has no model %s" % (path, type_name)]
    if not isinstance(value, dict):
        return ["%s: expected a %s object, got %s" % (path, type_name, type(value).__name__)]
    inst = cls()
    by_json = {inst.attribute_map[a]: t for a, t in inst.swagger_types.items()}
    enums = model_enums(cls)
    for key, v in value.items():
        p = "%s.%s" % (path, key)
        if key not in by_json:
            problems.append("%s: key not declared by SDK model %s (declared: %s)"
                            % (p, type_name, ", ".join(by_json)))
            continue
        if key in enums:
            if v is None:
                problems.append("%s: null in an enum field (the SDK setter crashes: "
                                "AttributeError 'NoneType' has no attribute 'lower')" % p)
            elif not isinstance(v, str) or v not in enums[key]:
                problems.append("%s: %r is not one of %s.%s's values %s (the SDK would read "
                                "'outdated_sdk_version')" % (p, v, type_name, key, enums[key]))
            continue
        problems += strict_check(v, by_json[key], p)
    return problems


def strict_keys(value, allowed, path="$"):
    if not isinstance(value, dict):
        return ["%s: expected an object, got %s" % (path, type(value).__name__)]
    return ["%s.%s: key not in %s" % (path, k, sorted(allowed)) for k in value if k not in allowed]


def strict_report(label, raw, type_name=None, allowed=None):
    """raw: body text. Parses it and runs the strict check; one ok/FAIL line."""
    try:
        value = json.loads(raw)
    except (TypeError, ValueError) as e:
        R.fail("strict %s: body is not JSON (%s): %r" % (label, e, (raw or "")[:200]))
        return None
    problems = strict_check(value, type_name) if type_name else strict_keys(value, allowed)
    against = type_name or "keys %s" % sorted(allowed)
    if problems:
        R.fail("strict %s vs %s: %d problem(s):\n       %s" % (label, against, len(problems),
                                                              "\n       ".join(problems)))
    else:
        R.ok("strict %s vs %s" % (label, against))
    return value


# --------------------------------------------------------------------------
# SDK plumbing: capture every raw response through the SDK's own hooks.
# --------------------------------------------------------------------------
class Capture:
    """Pre/post request hooks of the SDK's DefaultHttpClient.  The post hook
    runs only for 2xx responses (rest.py raises ApiException before it for the
    rest); error bodies come from ApiException.body/.headers."""

    def __init__(self):
        self.last_request = None
        self.last_response = None


def new_client(base_url, capture, sdk_retry=True):
    client = sdk.ApiClient(host=base_url)
    client.gateway_configuration = None  # never let ~/.genesyscloudpython redirect us
    http = client.get_http_client()

    def pre(opts):
        capture.last_request = (opts.method, opts.url, dict(opts.query_params or {}))
        capture.last_response = None
        return opts

    def post(resp):
        capture.last_response = resp
        return resp

    http.set_pre_request_hook(pre)
    http.set_post_request_hook(post)
    if not sdk_retry:
        # The SDK builds urllib3.PoolManager(retries=Retry()) (total=10, every
        # verb, honours Retry-After on 413/429/503): swap in one that never
        # retries so a 429 reaches us as ApiException.
        http.rest_client.pool_manager = urllib3.PoolManager(retries=False, num_pools=4, maxsize=4,
                                                            block=True)
    return client


def content_type_check(label, headers):
    ct = (headers or {}).get("Content-Type", "")
    # ApiClient.deserialize keeps a text/* body as a string, and a model built
    # from a string is silently empty.
    R.check(ct.split(";")[0].strip() == "application/json", "%s Content-Type is application/json" % label,
            "got %r" % ct)


def parse_interval(interval):
    a, b = interval.split("/")
    return isoparse(a), isoparse(b)


def as_utc(dt):
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def login(base_url, cid, secret, capture, label, sdk_retry=True):
    client = new_client(base_url, capture, sdk_retry)
    try:
        client.get_client_credentials_token(cid, secret)
    except ApiException as e:
        R.fail("%s: login failed: HTTP %s %s" % (label, e.status, (e.body or "")[:300]))
        return None
    except Exception as e:  # noqa: BLE001
        R.fail("%s: login raised %s: %s" % (label, type(e).__name__, e))
        return None
    resp = capture.last_response
    R.check(bool(client.access_token), "%s: client-credentials login (POST %s) gave an access_token"
            % (label, capture.last_request[1]))
    if resp is not None:
        content_type_check(label + " token response", resp.getheaders())
        body = strict_report(label + " token response", resp.data, allowed=TOKEN_RESPONSE_KEYS)
        if isinstance(body, dict):
            R.check(isinstance(body.get("access_token"), str) and body.get("token_type", "").lower() == "bearer"
                    and isinstance(body.get("expires_in"), int),
                    "%s token response has access_token (str), token_type bearer, expires_in (int)" % label,
                    repr(body)[:300])
    return client


def error_body_check(label, exc, expect_status):
    R.check(exc.status in expect_status, "%s answers HTTP %s" % (label, "/".join(map(str, expect_status))),
            "got %s" % exc.status)
    if exc.body:
        content_type_check(label, exc.headers)
        body = strict_report(label + " error body", exc.body, "ErrorBody")
        if isinstance(body, dict) and "status" in body:
            R.check(body["status"] == exc.status, "%s ErrorBody.status equals the HTTP status" % label,
                    "%r vs %s" % (body["status"], exc.status))
        return body
    R.fail("%s: no body (Genesys sends an ErrorBody)" % label)
    return None


def next_after(next_uri, expect_path, sent_query):
    """Checks nextUri and returns its `after` cursor (the SDK has no nextUri
    follower: the cursor goes back in through the `after` parameter)."""
    u = urlsplit(next_uri)
    q = {k: v[-1] for k, v in parse_qs(u.query).items()}
    problems = []
    if u.scheme or u.netloc:
        problems.append("nextUri is absolute (%s); Genesys gives a path starting /api/v2/" % next_uri)
    if u.path != expect_path:
        problems.append("nextUri path %r != %r" % (u.path, expect_path))
    if "after" not in q or not q["after"]:
        problems.append("nextUri has no after= cursor")
    for k, v in sent_query.items():
        if k != "after" and q.get(k) != str(v):
            problems.append("nextUri drops or changes %s (%r, sent %r): a client following nextUri "
                            "verbatim would lose it" % (k, q.get(k), str(v)))
    return q.get("after"), problems


def page_through(label, call, expect_path, sent_query, model, max_pages, page_size, capture):
    """Calls call(after) until nextUri is absent. Returns (entities as raw
    dicts, sdk entity objects) or None on failure."""
    raw_all, sdk_all, after, seen = [], [], None, set()
    for page_no in range(1, max_pages + 1):
        try:
            obj = call(after)
        except ApiException as e:
            R.fail("%s page %d: HTTP %s %s" % (label, page_no, e.status, (e.body or "")[:300]))
            return None
        except Exception as e:  # noqa: BLE001
            R.fail("%s page %d: the SDK raised %s while deserializing: %s" % (label, page_no, type(e).__name__, e))
            if capture.last_response is not None:  # the raw body got through: say what broke it
                strict_report("%s page %d" % (label, page_no), capture.last_response.data, model)
            return None
        resp = capture.last_response
        if page_no == 1:
            content_type_check(label, resp.getheaders())
            missing = [h for h in RATE_HEADERS if h not in resp.getheaders()]
            if missing:
                R.info("%s: 200 response lacks %s (Genesys sends them on every response)" % (label, missing))
        body = strict_report("%s page %d" % (label, page_no), resp.data, model)
        if not isinstance(body, dict):
            return None
        ents = body.get("entities") or []
        R.check(len(ents) <= page_size, "%s page %d has at most pageSize=%d entities" % (label, page_no, page_size),
                "got %d" % len(ents))
        raw_all += ents
        sdk_all += obj.entities or []
        nxt = body.get("nextUri")
        if not nxt:
            R.ok("%s: %d page(s), %d entities, last page has no nextUri" % (label, page_no, len(raw_all)))
            return raw_all, sdk_all
        if not ents:
            R.fail("%s page %d: empty page that still has a nextUri" % (label, page_no))
            return None
        after, problems = next_after(nxt, expect_path, sent_query)
        if problems:
            R.fail("%s page %d nextUri %r: %s" % (label, page_no, nxt, "; ".join(problems)))
            if not after:
                return None
        if after in seen:
            R.fail("%s: cursor %r repeats (pagination loop)" % (label, after))
            return None
        seen.add(after)
    R.fail("%s: still a nextUri after %d pages" % (label, max_pages))
    return None


# --------------------------------------------------------------------------
def main(argv):
    if len(argv) != 2:
        print(__doc__)
        return 3
    try:
        with open(argv[1]) as f:
            sc = json.load(f)
        base = sc["base_url"].rstrip("/")
        cid, secret, bad_secret = sc["client_id"], sc["client_secret"], sc["bad_client_secret"]
        flow_id, interval = sc["flow_id"], sc["interval"]
        expect_min = int(sc.get("expect_sessions_min", 1))
        page_size = int(sc.get("page_size", 2))
        turn_sessions = int(sc.get("turn_sessions", 3))
        max_pages = int(sc.get("max_pages", 500))
        i_start, i_end = (as_utc(x) for x in parse_interval(interval))
    except (OSError, ValueError, KeyError, TypeError) as e:
        print("FAIL bad scenario %s: %s: %s" % (argv[1], type(e).__name__, e))
        return 3
    host = urlsplit(base).hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        print("FAIL base_url %r is not a loopback address; this check only talks to a local simulator" % base)
        return 3
    print("info PureCloudPlatformClientV2 %s against %s (login host: %s)"
          % (SDK_VERSION, base, sdk.ApiClient(host=base).get_conf_url("login", base)), flush=True)

    cap = Capture()
    # ---- a. login, good and bad
    client = login(base, cid, secret, cap, "login")
    if client is None:
        return finish()
    bad_cap = Capture()
    bad = new_client(base, bad_cap)
    try:
        bad.get_client_credentials_token(cid, bad_secret)
        R.fail("login with bad_client_secret succeeded")
    except ApiException as e:
        R.check("invalid_client" in str(e), "login with bad_client_secret fails with an error that says invalid_client",
                str(e)[:400])
        R.check(e.status in (400, 401), "bad login answers HTTP 400/401", "got %s" % e.status)
        if e.body:
            content_type_check("bad login", e.headers)
            body = strict_report("oauth error body", e.body, allowed=OAUTH_ERROR_KEYS)
            if isinstance(body, dict):
                R.check(body.get("error") == "invalid_client", "oauth error body has error=invalid_client",
                        repr(body)[:300])
                R.check(isinstance(body.get("error_description") or body.get("description"), str),
                        "oauth error body has a description", repr(body)[:300])
    except Exception as e:  # noqa: BLE001
        R.fail("bad login raised %s (not ApiException): %s" % (type(e).__name__, e))

    tokens = sdk.TokensApi(client)
    analytics = sdk.AnalyticsApi(client)

    # ---- b. HEAD + GET /api/v2/tokens/me
    try:
        tokens.head_tokens_me()
        R.ok("HEAD /api/v2/tokens/me (TokensApi.head_tokens_me) with a fresh token")
        if cap.last_response is not None:
            R.check(cap.last_response.data == "", "HEAD /api/v2/tokens/me has no body",
                    repr(cap.last_response.data[:100]))
    except Exception as e:  # noqa: BLE001
        R.fail("HEAD /api/v2/tokens/me: %s" % str(e)[:400])
    try:
        info = tokens.get_tokens_me()
        R.check(isinstance(info, sdk_models.TokenInfo), "GET /api/v2/tokens/me -> TokenInfo")
        content_type_check("GET /api/v2/tokens/me", cap.last_response.getheaders())
        strict_report("TokenInfo", cap.last_response.data, "TokenInfo")
        R.check(info.organization is not None and bool(info.organization.id), "TokenInfo.organization.id present")
    except Exception as e:  # noqa: BLE001
        R.fail("GET /api/v2/tokens/me: %s" % str(e)[:400])

    # ---- b2. the flow's name: GET /api/v2/flows/{flowId} -> Flow
    architect = sdk.ArchitectApi(client)
    try:
        flow = architect.get_flow(flow_id)
        R.check(isinstance(flow, sdk_models.Flow), "GET /api/v2/flows/{flowId} -> Flow")
        content_type_check("GET /api/v2/flows/{flowId}", cap.last_response.getheaders())
        strict_report("Flow", cap.last_response.data, "Flow")
        R.check(flow.id == flow_id and bool(flow.name), "Flow.id is the flow asked for and Flow.name is set")
    except Exception as e:  # noqa: BLE001
        R.fail("GET /api/v2/flows/{flowId}: %s" % str(e)[:400])
    try:
        architect.get_flow("00000000-0000-4000-8000-000000000000")
        R.fail("GET /api/v2/flows/{unknown id} was answered (must be 404)")
    except ApiException as e:
        error_body_check("GET /api/v2/flows/{unknown id}", e, (404,))
    except Exception as e:  # noqa: BLE001
        R.fail("GET /api/v2/flows/{unknown id} raised %s: %s" % (type(e).__name__, e))

    # ---- c. bot flow sessions, cursor paging
    sessions_path = "/api/v2/analytics/botflows/%s/sessions" % flow_id
    sent = {"interval": interval, "pageSize": page_size}

    def sessions_call(after):
        kw = {"interval": interval, "page_size": page_size}
        if after:
            kw["after"] = after
        return analytics.get_analytics_botflow_sessions(flow_id, **kw)

    got = page_through("sessions", sessions_call, sessions_path, sent, "SessionsResponse", max_pages, page_size, cap)
    sessions_raw, sessions = got if got else ([], [])
    if got:
        R.check(len(sessions) >= expect_min, "sessions: at least expect_sessions_min=%d" % expect_min,
                "got %d" % len(sessions))
        ids = [s.id for s in sessions]
        R.check(len(ids) == len(set(ids)) and all(ids), "sessions: ids present and unique across pages",
                "duplicates/missing: %s" % [i for i in ids if ids.count(i) > 1 or not i][:10])
        done = [s.date_completed for s in sessions]
        R.check(all(d is not None for d in done), "sessions: every session has dateCompleted")
        done = [as_utc(d) for d in done if d is not None]
        inv = [i for i in range(1, len(done)) if done[i] > done[i - 1]]
        R.check(not inv, "sessions: newest first by dateCompleted across pages",
                "out of order at %s" % [(ids[i - 1], ids[i]) for i in inv[:5]])
        created = [as_utc(s.date_created) for s in sessions if s.date_created is not None]
        if any(created[i] > created[i - 1] for i in range(1, len(created))):
            R.info("sessions are not also newest first by dateCreated (the SDK docstring says "
                   "'reverse chronological order from the date they were created')")
        outside = [(s.id, s.date_completed.isoformat()) for s in sessions
                   if s.date_completed is not None and not (i_start <= as_utc(s.date_completed) < i_end)]
        R.check(not outside, "sessions: every dateCompleted inside %s" % interval, "outside: %s" % outside[:5])
        wrong_flow = [s.id for s in sessions if s.flow is not None and s.flow.id != flow_id]
        R.check(not wrong_flow, "sessions: flow.id is the requested flow", str(wrong_flow[:5]))
        nulls = [s.id for s in sessions if s.bot_result == "outdated_sdk_version"
                 or s.bot_result_category == "outdated_sdk_version"]
        R.check(not nulls, "sessions: botResult/botResultCategory are values the SDK knows", str(nulls[:5]))
    # pageSize > 250
    try:
        analytics.get_analytics_botflow_sessions(flow_id, interval=interval, page_size=251)
        R.fail("sessions with pageSize=251 was accepted (must be 400)")
    except ApiException as e:
        error_body_check("sessions with pageSize=251", e, (400,))
    except Exception as e:  # noqa: BLE001
        R.fail("sessions with pageSize=251 raised %s: %s" % (type(e).__name__, e))

    # ---- d. reporting turns for the first few sessions
    turns_path = "/api/v2/analytics/botflows/%s/divisions/reportingturns" % flow_id
    for s in sessions[:turn_sessions]:
        def turns_call(after, sid=s.id):
            kw = {"session_id": sid, "page_size": page_size}
            if after:
                kw["after"] = after
            return analytics.get_analytics_botflow_divisions_reportingturns(flow_id, **kw)

        got = page_through("turns(session %s)" % s.id, turns_call, turns_path,
                           {"sessionId": s.id, "pageSize": page_size}, "ReportingTurnsResponse",
                           max_pages, page_size, cap)
        if not got:
            continue
        _, turns = got
        if not R.check(len(turns) >= 1, "turns(session %s): at least one turn" % s.id):
            continue
        R.check(all(t.session_id == s.id for t in turns), "turns(session %s): every turn's sessionId is the session"
                % s.id, str(sorted({t.session_id for t in turns}))[:200])
        conv = s.conversation.id if s.conversation else None
        bad_conv = [t.conversation.id for t in turns if conv and t.conversation and t.conversation.id != conv]
        R.check(not bad_conv, "turns(session %s): conversation.id matches the session's" % s.id, str(bad_conv[:3]))
        # "last" = latest dateCreated; the API does not document the order inside a session
        last = max(turns, key=lambda t: (as_utc(t.date_created) if t.date_created else datetime.min.replace(
            tzinfo=timezone.utc)))
        if last is not turns[-1] and last is not turns[0]:
            R.info("turns(session %s): latest turn is neither first nor last in the list" % s.id)
        name = last.intent.name if last.intent else None
        R.ok("turns(session %s): %d turn(s); last turn intent=%r, askActionResult=%r, sessionEndDetails=%r"
             % (s.id, len(turns), name, last.ask_action_result,
                last.session_end_details.to_dict() if last.session_end_details else None))

    # ---- b (cont.). DELETE /api/v2/tokens/me, then the token must be dead
    try:
        tokens.delete_tokens_me()
        R.ok("DELETE /api/v2/tokens/me (TokensApi.delete_tokens_me)")
        for name, fn in (("HEAD", tokens.head_tokens_me), ("GET", tokens.get_tokens_me)):
            try:
                fn()
                R.fail("%s /api/v2/tokens/me with the deleted token succeeded (must be 401)" % name)
            except ApiException as e:
                if name == "HEAD":
                    R.check(e.status == 401, "HEAD /api/v2/tokens/me with the deleted token -> 401", "got %s" % e.status)
                else:
                    error_body_check("GET /api/v2/tokens/me with the deleted token", e, (401,))
        try:
            sessions_call(None)
            R.fail("sessions with the deleted token succeeded (must be 401)")
        except ApiException as e:
            error_body_check("sessions with the deleted token", e, (401,))
    except ApiException as e:
        R.fail("DELETE /api/v2/tokens/me: %s" % str(e)[:400])

    # ---- e. 429 on a fresh token, SDK retry disabled
    rl = sc.get("rate_limit")
    if not rl:
        R.info("no 'rate_limit' in the scenario: 429 check skipped")
    else:
        max_calls = int(rl.get("max_calls", 400)) if isinstance(rl, dict) else 400
        rcap = Capture()
        rclient = login(base, cid, secret, rcap, "login for 429 check", sdk_retry=False)
        if rclient is not None:
            rtokens = sdk.TokensApi(rclient)
            hit, t0 = None, time.monotonic()
            for n in range(1, max_calls + 1):
                try:
                    rtokens.get_tokens_me()
                except ApiException as e:
                    if e.status == 429:
                        hit = (n, e)
                        break
                    R.fail("429 hunt: call %d answered HTTP %s (expected 200 or 429): %s"
                           % (n, e.status, (e.body or "")[:200]))
                    break
            if hit is None:
                R.fail("no 429 within %d calls on one token" % max_calls)
            else:
                n, e = hit
                R.ok("429 after %d calls on one token (%.1fs)" % (n, time.monotonic() - t0))
                h = e.headers or {}
                ra = h.get("Retry-After")
                R.check(ra is not None and re.fullmatch(r"\s*[0-9]+\s*", ra) is not None and int(ra) > 0,
                        "429 carries Retry-After as whole seconds > 0", "got %r" % ra)
                for name in RATE_HEADERS:
                    v = h.get(name)
                    R.check(v is not None and re.fullmatch(r"[0-9]+", v.strip()) is not None,
                            "429 carries %s (integer)" % name, "got %r" % v)
                if all(h.get(x, "").strip().isdigit() for x in RATE_HEADERS[:2]):
                    R.check(int(h["inin-ratelimit-count"]) > int(h["inin-ratelimit-allowed"]),
                            "429: inin-ratelimit-count exceeds inin-ratelimit-allowed",
                            "count=%s allowed=%s" % (h["inin-ratelimit-count"], h["inin-ratelimit-allowed"]))
                body = error_body_check("rate-limited call", e, (429,))
                if isinstance(body, dict) and body.get("code") != "too.many.requests.retry.after":
                    R.info("429 ErrorBody.code is %r (Genesys uses 'too.many.requests.retry.after')"
                           % body.get("code"))
    throttled_login_check(base, cid, secret, sc.get("token_rate_limit"))
    return finish()


def throttled_login_check(base, cid, secret, tl):
    """f. Logins past the token endpoint's limit: the platform answers HTTP 400
    invalid_request "rate limit exceeded; ..." (Genesys' Terraform provider,
    PR #1004, matches exactly that before retrying), which the SDK surfaces as
    an ApiException with the OAuth error body."""
    if not tl:
        R.info("no 'token_rate_limit' in the scenario: throttled-login check skipped")
        return
    max_logins = int(tl.get("max_logins", 20)) if isinstance(tl, dict) else 20
    for n in range(1, max_logins + 1):
        client = new_client(base, Capture(), sdk_retry=False)
        try:
            client.get_client_credentials_token(cid, secret)
        except ApiException as e:
            R.ok("throttled login after %d logins" % n)
            R.check(e.status == 400, "throttled login answers HTTP 400", "got %s" % e.status)
            body = strict_report("throttled login body", e.body or "", allowed=OAUTH_ERROR_KEYS)
            if isinstance(body, dict):
                text = body.get("error_description") or body.get("description") or ""
                R.check(body.get("error") == "invalid_request" and "rate limit exceeded" in text,
                        "throttled login body is invalid_request, 'rate limit exceeded'", repr(body)[:300])
            return
        except Exception as e:  # noqa: BLE001
            R.fail("throttled login raised %s (not ApiException): %s" % (type(e).__name__, e))
            return
    R.fail("no throttled login within %d logins" % max_logins)


def finish():
    print("%d passed, %d failed" % (R.passed, R.failed), flush=True)
    return 0 if R.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
