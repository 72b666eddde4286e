"""``python -m connectors.sandbox [--host 127.0.0.1] [--port 8025] [--verbose]``."""

from __future__ import annotations

import argparse
import sys

from connectors.sandbox.server import CONTROL_HELP, SandboxServer
from connectors.sandbox.smtp import SandboxSMTP


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m connectors.sandbox",
        description="Loopback sandbox for the HubSpot, GoHighLevel, Instantly and Clay API subset we use.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback only)")
    parser.add_argument("--port", type=int, default=8025, help="port (0: any free port)")
    parser.add_argument("--verbose", "-v", action="store_true", help="log every request to stderr")
    parser.add_argument("--smtp-port", type=int, default=None, help="also accept mail over SMTP here")
    args = parser.parse_args(argv)

    server = SandboxServer(args.host, args.port, verbose=args.verbose)
    print(f"MH1 vendor sandbox listening on {server.url}", flush=True)
    if args.smtp_port is not None:
        smtp = SandboxSMTP(args.host, args.smtp_port, report=server.state.emit)
        smtp.start()
        print(
            f"  SMTP on {args.host}:{args.smtp_port}: mail is reported back as Instantly events", flush=True
        )
    for endpoint, meaning in CONTROL_HELP.items():
        print(f"  {endpoint:28} {meaning}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("sandbox stopped", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
