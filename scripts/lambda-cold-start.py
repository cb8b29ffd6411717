#!/usr/bin/env python3
"""Measures a Lambda function binary's cold init: the time from starting the
process to its first request for an event on the Lambda Runtime API.

Plays the Runtime API on a loopback port (only `GET .../invocation/next`
matters), starts the `bootstrap` with the environment Lambda gives a
function, and times the first poll. Repeats and prints the median.

Usage: scripts/lambda-cold-start.py [--runs N] BINARY...
  (a function binary, or its <function>/bootstrap)
"""
import argparse
import http.server
import os
import statistics
import subprocess
import threading
import time


class RuntimeApi(http.server.BaseHTTPRequestHandler):
    first_poll = None
    polled = threading.Event()

    def do_GET(self):  # noqa: N802 (http.server's naming)
        if "/runtime/invocation/next" in self.path and not RuntimeApi.polled.is_set():
            RuntimeApi.first_poll = time.perf_counter()
            RuntimeApi.polled.set()
        # Never hand out an event: init is what is measured.
        time.sleep(5)
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def function_name(binary):
    """`x/ws_connect/bootstrap` and `x/ws_connect` are both `ws_connect`."""
    base = os.path.basename(binary)
    return os.path.basename(os.path.dirname(binary)) if base == "bootstrap" else base


def measure(binary, port):
    RuntimeApi.polled.clear()
    env = {
        "PATH": "/usr/bin:/bin",
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{port}",
        "AWS_LAMBDA_FUNCTION_NAME": function_name(binary),
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_FORMAT": "JSON",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "measure",
        "AWS_SECRET_ACCESS_KEY": "measure",
        "AWS_SESSION_TOKEN": "measure",
        "ROLLCALL_STORE": "dynamodb",
        "ROLLCALL_APIGW_ENDPOINT": "https://example.execute-api.us-east-1.amazonaws.com/prod",
        "ROLLCALL_WS_URL": "wss://example.execute-api.us-east-1.amazonaws.com/prod",
    }
    start = time.perf_counter()
    proc = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if not RuntimeApi.polled.wait(10):
            raise SystemExit(f"{binary}: no poll within 10 s (exit code {proc.poll()})")
        return (RuntimeApi.first_poll - start) * 1000
    finally:
        proc.kill()
        proc.wait()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("binaries", nargs="+")
    args = parser.parse_args()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RuntimeApi)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    print(f"{'function':<16} {'median ms':>9} {'min ms':>7} {'max ms':>7}  ({args.runs} runs)")
    for binary in args.binaries:
        times = [measure(binary, port) for _ in range(args.runs)]
        name = function_name(binary)
        print(f"{name:<16} {statistics.median(times):9.1f} {min(times):7.1f} {max(times):7.1f}")
    server.shutdown()


if __name__ == "__main__":
    main()
