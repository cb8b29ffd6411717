#!/usr/bin/env python3
"""Measures what password hashing costs the local server under abuse.

Starts a release `rollcall-server` (ROLLCALL_STORE=memory, rate limits off so
that every request reaches the hasher), then:

1. 400 `POST /api/log_in` for names that do not exist, 200 at a time, each
   abandoned by the client 50 ms after sending it (the connection closed);
   prints threads and RSS (from /proc/PID/status) at the peak and once the
   server has settled;
2. 1,000 sign-ups through `POST /api/sign_up` (8 at a time, each waited for);
   prints RSS after them.

Targets (issue 9): <= 32 threads and <= 300 MB after (1); <= 200 MB after (2).

Usage: scripts/measure-hashing.py [path/to/rollcall-server]
(default: builds it with `cargo build --release -p rollcall-local-server`
into $CARGO_TARGET_DIR or ./target).
"""

import asyncio
import json
import os
import re
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def server_binary():
    if len(sys.argv) > 1:
        return sys.argv[1]
    subprocess.run(
        ["cargo", "build", "--release", "-p", "rollcall-local-server", "--bin", "rollcall-server"],
        cwd=ROOT,
        check=True,
    )
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    return os.path.join(target, "release", "rollcall-server")


def status(pid):
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return int(fields["Threads"]), int(fields["VmRSS"].split()[0]) / 1024


def request(path, body):
    data = json.dumps(body).encode()
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n"
    ).encode() + data


async def abandoned_log_in(host, port, i):
    _, writer = await asyncio.open_connection(host, port)
    writer.write(request("/api/log_in", {"username": f"nobody{i}", "password": "wrong password"}))
    await writer.drain()
    await asyncio.sleep(0.05)
    writer.close()


async def sign_up(host, port, i):
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(request("/api/sign_up", {"username": f"user{i}", "password": "correct horse battery"}))
    await writer.drain()
    line = await reader.readline()
    writer.close()
    return line.split()[1].decode() if line else "none"


async def sample_while(pid, task):
    peak = (0, 0.0)
    while not task.done():
        t, rss = status(pid)
        peak = (max(peak[0], t), max(peak[1], rss))
        await asyncio.sleep(0.02)
    return peak


async def main():
    env = dict(os.environ)
    env.update(
        ROLLCALL_STORE="memory",
        ROLLCALL_BIND="127.0.0.1:0",
        RUST_LOG="error",
        ROLLCALL_LOGIN_RATE_PER_ADDR="off",
        ROLLCALL_LOGIN_FAILURES_PER_USER="off",
        ROLLCALL_SIGNUP_RATE_PER_ADDR="off",
        ROLLCALL_SIGNUP_RATE_PER_USER="off",
    )
    proc = subprocess.Popen([server_binary()], env=env, stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        host, port = re.search(r"http://([\d.]+):(\d+)/", line).groups()
        pid = proc.pid
        t0, rss0 = status(pid)
        print(f"start: {t0} threads, {rss0:.1f} MB RSS")

        async def flood():
            for batch in range(2):
                await asyncio.gather(*(abandoned_log_in(host, port, batch * 200 + i) for i in range(200)))

        task = asyncio.ensure_future(flood())
        peak = await sample_while(pid, task)
        await task
        await asyncio.sleep(3)  # hashes already started finish; the pool idles
        t1, rss1 = status(pid)
        print(f"400 abandoned log-ins (200 at a time, 50 ms): peak {peak[0]} threads, "
              f"{peak[1]:.1f} MB RSS; settled {t1} threads, {rss1:.1f} MB RSS")

        statuses = {}
        sem = asyncio.Semaphore(8)

        async def one(i):
            async with sem:
                s = await sign_up(host, port, i)
                statuses[s] = statuses.get(s, 0) + 1

        started = time.monotonic()
        task = asyncio.ensure_future(asyncio.gather(*(one(i) for i in range(1000))))
        peak = await sample_while(pid, task)
        await task
        t2, rss2 = status(pid)
        print(f"1,000 sign-ups ({time.monotonic() - started:.1f} s, statuses {statuses}): "
              f"peak {peak[1]:.1f} MB RSS; after {t2} threads, {rss2:.1f} MB RSS")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    asyncio.run(main())
