#!/usr/bin/env python3
"""A netsvr business process written against Python's protobuf (not prost).

Driven by tests/python_business.rs: it registers on the worker port (and prints a
"registered" JSON line), answers each Transfer with commands and queries on the task port
(then prints a "handled" JSON line), and on ConnClose prints one JSON line with
everything it saw, then exits 0. Only the stdlib and the classes that
grpc_tools.protoc generated from netsvr-protocol/proto/netsvr.proto (--pb-dir) are used.
Framing is PROTOCOL.md section 1: u32 BE length, then u32 BE cmd id + protobuf body, or
the heartbeat literal.
"""

import argparse
import json
import os
import signal
import socket
import struct
import sys
import time

TIMEOUT_S = 20.0
HEARTBEAT = b"~6YOt5rW35piO~"

CONN_OPEN = 900001001
CONN_CLOSE = 900001002
TRANSFER = 900001003
CONN_INFO_UPDATE = 900002001
SINGLE_CAST = 900002006
REGISTER = 900003001
UNIQ_ID_COUNT = 900003007
CONN_INFO = 900003015

EVENTS_ALL = 7  # OnOpen | OnClose | OnMessage

DEADLINE = time.monotonic() + TIMEOUT_S


def fail(message):
    sys.stderr.write(f"business.py: {message}\n")
    sys.stderr.flush()
    sys.exit(2)


def on_alarm(_signum, _frame):
    # Belt and braces: the socket timeouts below should fire first.
    sys.stderr.write(f"business.py: hard timeout of {TIMEOUT_S:.0f} s reached\n")
    sys.stderr.flush()
    os._exit(3)


def split_addr(text):
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        fail(f"bad address {text!r}, expected HOST:PORT")
    return host.strip("[]"), int(port)


def remaining():
    left = DEADLINE - time.monotonic()
    if left <= 0:
        fail(f"timed out after {TIMEOUT_S:.0f} s")
    return left


def connect(addr):
    sock = socket.create_connection(split_addr(addr), timeout=remaining())
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    # Heartbeat once at start: the bare literal, framed with its length.
    sock.sendall(struct.pack(">I", len(HEARTBEAT)) + HEARTBEAT)
    return sock


def send_cmd(sock, cmd, message=None):
    body = b"" if message is None else message.SerializeToString()
    sock.sendall(struct.pack(">II", 4 + len(body), cmd) + body)


def recv_exact(sock, n, what):
    chunks = []
    while n > 0:
        sock.settimeout(remaining())
        try:
            chunk = sock.recv(n)
        except socket.timeout:
            fail(f"timed out after {TIMEOUT_S:.0f} s waiting on the {what} port")
        if not chunk:
            fail(f"the {what} port closed the connection")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def recv_frame(sock, what):
    (length,) = struct.unpack(">I", recv_exact(sock, 4, what))
    if length < 4:
        fail(f"{what} port sent a frame of {length} bytes, too short for a cmd id")
    payload = recv_exact(sock, length, what)
    (cmd,) = struct.unpack(">I", payload[:4])
    return cmd, payload[4:]


def ask(sock, cmd, message, resp_cls):
    send_cmd(sock, cmd, message)
    got, body = recv_frame(sock, "task")
    if got != cmd:
        fail(f"task port answered cmd {got} to request {cmd}")
    resp = resp_cls()
    resp.ParseFromString(body)
    return resp


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--worker", required=True, help="worker port, HOST:PORT")
    parser.add_argument("--task", required=True, help="task port, HOST:PORT")
    parser.add_argument("--pb-dir", required=True, help="dir holding netsvr_pb2.py")
    args = parser.parse_args()

    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(int(TIMEOUT_S) + 2)

    sys.path.insert(0, args.pb_dir)
    import netsvr_pb2 as pb  # noqa: E402  (generated at test time)

    worker = connect(args.worker)
    send_cmd(worker, REGISTER, pb.RegisterReq(events=EVENTS_ALL))
    cmd, body = recv_frame(worker, "worker")
    if cmd != REGISTER:
        fail(f"expected RegisterResp ({REGISTER}), got cmd {cmd}")
    resp = pb.RegisterResp()
    resp.ParseFromString(body)
    if resp.code != pb.SUCCESS:
        fail(f"register refused: code {resp.code} message {resp.message!r}")
    task = connect(args.task)
    print(json.dumps({"registered": True, "conn_id": resp.conn_id}), flush=True)

    seen = {
        "opens": [],
        "transfers": [],
        "uniq_id_counts": [],
        "conn_infos": [],
    }
    while True:
        cmd, body = recv_frame(worker, "worker")
        if cmd == CONN_OPEN:
            ev = pb.ConnOpen()
            ev.ParseFromString(body)
            seen["opens"].append(
                {
                    "uniq_id": ev.uniq_id,
                    "raw_query": ev.raw_query,
                    "remote_addr": ev.remote_addr,
                    "x_forwarded_for": ev.x_forwarded_for,
                    "x_real_ip": ev.x_real_ip,
                }
            )
        elif cmd == TRANSFER:
            ev = pb.Transfer()
            ev.ParseFromString(body)
            seen["transfers"].append(
                {
                    "uniq_id": ev.uniq_id,
                    "customer_id": ev.customer_id,
                    "session": ev.session,
                    "topics": list(ev.topics),
                    "data": ev.data.decode("utf-8", "replace"),
                }
            )
            send_cmd(
                task,
                SINGLE_CAST,
                pb.SingleCast(uniq_id=ev.uniq_id, data=b"py:" + ev.data.upper()),
            )
            send_cmd(
                task,
                CONN_INFO_UPDATE,
                pb.ConnInfoUpdate(
                    uniq_id=ev.uniq_id,
                    new_session="py-session",
                    new_customer_id="py-customer",
                ),
            )
            count = ask(task, UNIQ_ID_COUNT, None, pb.UniqIdCountResp)
            seen["uniq_id_counts"].append(count.count)
            info = ask(
                task,
                CONN_INFO,
                pb.ConnInfoReq(
                    uniq_ids=[ev.uniq_id],
                    req_session=True,
                    req_customer_id=True,
                    req_topic=True,
                ),
                pb.ConnInfoResp,
            )
            seen["conn_infos"].append(
                {
                    uid: {
                        "session": item.session,
                        "customer_id": item.customer_id,
                        "topics": list(item.topics),
                    }
                    for uid, item in info.items.items()
                }
            )
            # Tells the test its queries are answered, so it may close the client now
            # (closing earlier would race the queries against the disconnect).
            print(json.dumps({"handled": ev.uniq_id}), flush=True)
        elif cmd == CONN_CLOSE:
            ev = pb.ConnClose()
            ev.ParseFromString(body)
            seen["close"] = {
                "uniq_id": ev.uniq_id,
                "customer_id": ev.customer_id,
                "session": ev.session,
                "topics": list(ev.topics),
            }
            print(json.dumps(seen), flush=True)
            worker.close()
            task.close()
            return 0
        else:
            fail(f"unexpected cmd {cmd} on the worker port ({len(body)} body bytes)")


if __name__ == "__main__":
    sys.exit(main())
