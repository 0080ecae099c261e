"""A stand-in payment service for :mod:`examples.http_executor`.

Run it with ``python -m examples.fake_payments PORT``.

In memory; a payment is keyed by the transaction id, so a repeated PUT returns the
payment already made (``200``) instead of paying again (``201``).
"""

from __future__ import annotations

import json
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Payments:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.quotes: dict[str, dict[str, Any]] = {}
        self.payments: dict[str, dict[str, Any]] = {}
        self.puts = 0  # how many PUTs arrived (retries included)


def handler(payments: Payments) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # quiet
            return

        def _body(self) -> dict[str, Any]:
            length = int(self.headers.get("Content-Length") or 0)
            parsed: dict[str, Any] = json.loads(self.rfile.read(length) or b"{}")
            return parsed

        def _send(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            order = self._body()
            quote_id = uuid.uuid4().hex
            with payments.lock:
                payments.quotes[quote_id] = order
            self._send(201, {"quote_id": quote_id})

        def do_PUT(self) -> None:
            transaction_id = self.path.rsplit("/", 1)[-1]
            order = self._body()
            with payments.lock:
                payments.puts += 1
                existing = payments.payments.get(transaction_id)
                if existing is not None:  # idempotent by the transaction id
                    self._send(200, existing)
                    return
                if order.get("quote_id") not in payments.quotes:
                    self._send(409, {"error": "quote expired"})
                    return
                payment = {"reference": f"pay_{uuid.uuid4().hex[:12]}", "status": "settled"}
                payments.payments[transaction_id] = {**payment, **order}
            self._send(201, payment)

        def do_GET(self) -> None:
            with payments.lock:
                payment = payments.payments.get(self.path.rsplit("/", 1)[-1])
            self._send(200, payment) if payment else self._send(404, {"error": "no payment"})

    return Handler


def serve(port: int) -> tuple[ThreadingHTTPServer, Payments]:
    payments = Payments()
    server = ThreadingHTTPServer(("127.0.0.1", port), handler(payments))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, payments


if __name__ == "__main__":
    http_server, _ = serve(int(sys.argv[1]))
    print(f"fake payments on http://127.0.0.1:{http_server.server_port}")
    threading.Event().wait()
