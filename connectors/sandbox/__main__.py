"""``python -m connectors.sandbox [--host 127.0.0.1] [--port 8025] [--smtp-port 2525] [--config-file F]``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

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
    parser.add_argument(
        "--config-file",
        type=Path,
        default=None,
        help="JSON settings merged in at start, as POST /_sandbox/config takes them (missing: skipped)",
    )
    args = parser.parse_args(argv)

    server = SandboxServer(args.host, args.port, verbose=args.verbose)
    if args.config_file is not None:
        if args.config_file.exists():
            server.state.configure(**json.loads(args.config_file.read_text()))
            print(f"settings from {args.config_file}", flush=True)
        else:
            print(f"no {args.config_file}: default settings", flush=True)
    print(f"MH1 vendor sandbox listening on {server.url}", flush=True)
    if args.smtp_port is not None:
        SandboxSMTP(args.host, args.smtp_port, state=server.state).start()
        print(
            f"  SMTP on {args.host}:{args.smtp_port}: mail is reported back as Instantly events; "
            "faults under /_sandbox/smtp/faults",
            flush=True,
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
