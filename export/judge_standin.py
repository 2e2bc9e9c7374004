#!/usr/bin/env python3
"""A deterministic stand-in judge server (stdlib only) for cross-checking `rewardbench gen`
against RewardBench's own judge code.

    python3 export/judge_standin.py --port 0 [--host 127.0.0.1] [--log requests.jsonl]

Prints ``PORT <n>`` (the bound port; ``--port 0`` picks a free one) on stdout, flushed, then
serves until killed (SIGTERM/SIGINT). Threaded (one thread per connection, HTTP/1.1
keep-alive). It speaks

* OpenAI chat completions: ``POST /v1/chat/completions`` (any path ending in
  ``/chat/completions``), answering ``chat.completion`` objects (id, object, created, model,
  choices[{index, message{role, content, refusal, annotations}, logprobs, finish_reason
  "stop"}], usage, service_tier, system_fingerprint), errors as ``{"error": {message, type,
  param, code}}``;
* Anthropic messages: ``POST /v1/messages``, answering ``message`` objects (content blocks
  ``[{"type": "text", "text": ...}]``, stop_reason, usage), errors as ``{"type": "error",
  "error": {type, message}, "request_id"}``.

The answer depends only on the text of the request's ``user`` messages (joined by blank
lines, as tests/util/judge_server.rs does), never on the position of an answer: a mirror of
``fn judge`` in tests/integration/judges.rs (less its FAIL400 / 429 faults):

1. the user text contains ``UNSURE``: "Both answers have merit; I cannot decide."
2. it contains ``[Response]`` (a rating prompt): "Fine.\\n9" if the part after the first
   ``[Response]`` contains ``GOOD``, else "Weak.\\n3";
3. else the answer blocks (``[The Start of Assistant X's Answer]\\n...\\n[The End of
   Assistant X's Answer]``, parsed as ``fn answers`` does) are searched in order and the
   first containing ``GOOD`` wins: "Explanation... [[X]]" (X = A, B, C, ... by block index);
   no such block: "no marker".

Fault: the first request (over the server's life) whose user text contains ``FLAKY`` gets HTTP
500 with the API's error body; every later one is answered normally.

A requested stop sequence (OpenAI ``stop``, Anthropic ``stop_sequences``) cuts the text, as
the APIs do. ``--log FILE`` appends one JSON line per request: n, time, method, path, api,
model, system, user, params (the body less messages/system), roles, status, text (the answer)
— never headers (no keys are written). ``canonical_request`` / ``request_digest`` give a
placement-free form of a logged request, for comparing two clients' prompts.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

UNSURE_TEXT = "Both answers have merit; I cannot decide."


def answers(user: str) -> list[str]:
    """The answer blocks of a pairwise / 4-way prompt, in order (port of `fn answers`)."""
    out = []
    rest = user
    start_tag = "'s Answer]\n"
    while True:
        i = rest.find(start_tag)
        if i < 0:
            break
        after = rest[i + len(start_tag):]
        end = after.find("\n[The End of Assistant")
        if end < 0:
            end = len(after)
        out.append(after[:end])
        rest = after[end:]
        j = rest.find("'s Answer]")
        if j >= 0:
            rest = rest[j + 1:]
    return out


def judge_text(user: str) -> str:
    """The stand-in judge's answer for a user text (port of `fn judge`, faults aside)."""
    if "UNSURE" in user:
        return UNSURE_TEXT
    if "[Response]" in user:
        resp = user.split("[Response]")[1]
        return "Fine.\n9" if "GOOD" in resp else "Weak.\n3"
    for i, a in enumerate(answers(user)):
        if "GOOD" in a:
            return f"Explanation... [[{chr(ord('A') + i)}]]"
    return "no marker"


_BLOCK = re.compile(r"(\[The Start of Assistant ([A-Z])'s Answer\]\n)(.*?)(\n\[The End of Assistant \2's Answer\])",
                    re.DOTALL)


def canonical_request(system: str | None, user: str) -> str:
    """A placement-free form of a request: the answer blocks' contents are replaced by
    ``<ANSWER>`` and listed sorted, so two requests that differ only in where the answers were
    placed compare equal (the template, the question and the answers must match exactly)."""
    contents = []

    def repl(m):
        contents.append(m.group(3))
        return m.group(1) + "<ANSWER>" + m.group(4)

    skeleton = _BLOCK.sub(repl, user)
    return json.dumps([system, skeleton, sorted(contents)], ensure_ascii=False)


def request_digest(system: str | None, user: str) -> str:
    return hashlib.sha256(canonical_request(system, user).encode("utf-8")).hexdigest()[:16]


def text_of(content) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def fields(api: str, body: dict):
    """(model, system, user, stop) of a request body."""
    model = body.get("model") if isinstance(body.get("model"), str) else ""
    messages = body.get("messages") if isinstance(body.get("messages"), list) else []

    def of_role(roles):
        return [text_of(m.get("content")) for m in messages if isinstance(m, dict) and m.get("role") in roles]

    if api == "anthropic":
        system = text_of(body["system"]) if body.get("system") is not None else None
        stop_field = body.get("stop_sequences")
    else:
        s = of_role(("system", "developer"))
        system = "\n\n".join(s) if s else None
        stop_field = body.get("stop")
    user = "\n\n".join(of_role(("user",)))
    if isinstance(stop_field, str):
        stop = [stop_field]
    elif isinstance(stop_field, list):
        stop = [x for x in stop_field if isinstance(x, str)]
    else:
        stop = []
    return model, system, user, stop


def tokens(text: str) -> int:
    return len(text.split())


class State:
    def __init__(self, log_path: str | None):
        self.lock = threading.Lock()
        self.n = 0
        self.flaky_done = False
        self.log = open(log_path, "a", encoding="utf-8") if log_path else None

    def next_n(self) -> int:
        with self.lock:
            n = self.n
            self.n += 1
            return n

    def take_flaky(self, user: str) -> bool:
        """True for the first request whose user text contains FLAKY."""
        if "FLAKY" not in user:
            return False
        with self.lock:
            if self.flaky_done:
                return False
            self.flaky_done = True
            return True

    def write_log(self, rec: dict) -> None:
        if self.log is None:
            return
        with self.lock:
            self.log.write(json.dumps(rec, ensure_ascii=False) + "\n")
            self.log.flush()


def openai_success(n: int, model: str, system: str | None, user: str, text: str) -> dict:
    inp = tokens(system or "") + tokens(user)
    out = tokens(text)
    return {
        "id": f"chatcmpl-StandIn{n:017d}",
        "object": "chat.completion",
        "created": 1_733_011_200 + n,
        "model": model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": text, "refusal": None, "annotations": []},
            "logprobs": None,
            "finish_reason": "stop",
        }],
        "usage": {
            "prompt_tokens": inp,
            "completion_tokens": out,
            "total_tokens": inp + out,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0, "audio_tokens": 0,
                "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0,
            },
        },
        "service_tier": "default",
        "system_fingerprint": "fp_f33667828e",
    }


def anthropic_success(n: int, model: str, system: str | None, user: str, text: str, stopped: str | None) -> dict:
    return {
        "id": f"msg_01StandIn{n:014d}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": "stop_sequence" if stopped is not None else "end_turn",
        "stop_sequence": stopped,
        "usage": {
            "input_tokens": tokens(system or "") + tokens(user),
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": tokens(text),
            "service_tier": "standard",
        },
    }


def error_body(api: str, status: int) -> dict:
    if api == "anthropic":
        kind, msg = {
            400: ("invalid_request_error", "There was an issue with your request body: invalid JSON"),
            404: ("not_found_error", "Not found"),
            500: ("api_error", "Internal server error"),
        }.get(status, ("api_error", "Internal server error"))
        return {"type": "error", "error": {"type": kind, "message": msg}, "request_id": "req_011CStandInError"}
    msg, kind = {
        400: ("We could not parse the JSON body of your request.", "invalid_request_error"),
        404: ("Invalid URL", "invalid_request_error"),
        500: ("The server had an error while processing your request. Sorry about that!", "server_error"),
    }.get(status, ("The server had an error while processing your request. Sorry about that!", "server_error"))
    return {"error": {"message": msg, "type": kind, "param": None, "code": None}}


def make_handler(state: State):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "judge-standin/1.0"
        sys_version = ""

        def log_message(self, fmt, *args):  # quiet
            pass

        def _send(self, status: int, body: dict, api: str | None) -> None:
            data = json.dumps(body).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if status == 200 and api == "openai":
                self.send_header("openai-processing-ms", "412")
                self.send_header("x-request-id", "req_5e2b7c1f0a9d4e8b")
            elif status == 200 and api == "anthropic":
                self.send_header("request-id", "req_011CStandIn")
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()

        def _read_body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length > 0 else b""

        def do_GET(self):
            n = state.next_n()
            state.write_log({"n": n, "time": time.time(), "method": "GET", "path": self.path, "api": None, "status": 404})
            self._send(404, error_body("openai", 404), None)

        def do_POST(self):
            raw = self._read_body()
            n = state.next_n()
            path = self.path.split("?", 1)[0]
            if path.endswith("/chat/completions"):
                api = "openai"
            elif path == "/v1/messages":
                api = "anthropic"
            else:
                state.write_log({"n": n, "time": time.time(), "method": "POST", "path": self.path, "api": None, "status": 404})
                self._send(404, error_body("openai", 404), None)
                return
            try:
                body = json.loads(raw.decode("utf-8"))
                if not isinstance(body, dict):
                    raise ValueError("not an object")
            except (ValueError, UnicodeDecodeError):
                state.write_log({"n": n, "time": time.time(), "method": "POST", "path": self.path, "api": api, "status": 400})
                self._send(400, error_body(api, 400), api)
                return
            model, system, user, stop = fields(api, body)
            params = {k: v for k, v in body.items() if k not in ("messages", "system")}
            rec = {"n": n, "time": time.time(), "method": "POST", "path": self.path, "api": api,
                   "model": model, "system": system, "user": user, "params": params,
                   "roles": [m.get("role") for m in body.get("messages") or [] if isinstance(m, dict)]}
            if state.take_flaky(user):
                rec.update(status=500, text=None)
                state.write_log(rec)
                self._send(500, error_body(api, 500), api)
                return
            text = judge_text(user)
            cuts = [(text.find(s), s) for s in stop if s and s in text]
            stopped = None
            if cuts:
                i, stopped = min(cuts)
                text = text[:i]
            rec.update(status=200, text=text)
            state.write_log(rec)
            if api == "openai":
                self._send(200, openai_success(n, model, system, user, text), api)
            else:
                self._send(200, anthropic_success(n, model, system, user, text, stopped), api)

    return Handler


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="0: any free port (printed)")
    ap.add_argument("--log", default=None, help="append one JSON line per request to this file")
    args = ap.parse_args()
    state = State(args.log)
    server = ThreadingHTTPServer((args.host, args.port), make_handler(state))
    server.daemon_threads = True
    print(f"PORT {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    import signal

    def _term(*_):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _term)
    sys.exit(main())
