"""The `stockwire` command. Subcommands import their program lazily so the edge needs no
aggregator dependencies and vice versa."""

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path

from stockwire import logs
from stockwire.errors import ConfigError

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="stockwire", description="Sensor-driven perpetual inventory.")
    p.add_argument(
        "--log-level",
        default="INFO",
        type=str.upper,
        choices=LOG_LEVELS,
        help="one of %(choices)s (default: %(default)s)",
    )
    p.add_argument(
        "--log-format",
        default=os.environ.get(logs.ENV, "text"),
        choices=logs.FORMATS,
        help=f"text, or json: one object per line (default: ${logs.ENV}, else text)",
    )
    sub = p.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="run a small simulated site with no external service")
    demo.add_argument("--duration", type=float, default=None, help="stop after S seconds")
    demo.add_argument("--check", action="store_true", help="exit 0 only if ledger == ground truth")
    demo.add_argument(
        "--scenario", type=Path, default=None, help="scenario TOML (default: built-in)"
    )
    demo.add_argument("--workdir", type=Path, default=None, help="keep files here (default: temp)")
    demo.add_argument(
        "--telemetry-url",
        default=None,
        metavar="URL",
        help="InfluxDB v2 API to write telemetry to (default: STOCKWIRE_AGG_TELEMETRY__URL)",
    )

    edge = sub.add_parser("edge", help="run an edge agent")
    edge.add_argument(
        "--config",
        type=Path,
        required=True,
        help="the edge's TOML (deploy/config/edge.example.toml)",
    )

    agg = sub.add_parser("aggregator", help="run the aggregator (ingest, ledger, API)")
    agg.add_argument(
        "--config",
        type=Path,
        required=True,
        help="the aggregator's TOML (deploy/config/aggregator.example.toml)",
    )

    sim = sub.add_parser("sim", help="device simulators")
    sim_sub = sim.add_subparsers(dest="device", required=True)
    scanner = sim_sub.add_parser("scanner", help="emit a scenario's barcodes over TCP or a pty")
    scanner.add_argument("--scenario", type=Path, required=True)
    scanner.add_argument("--scanner", required=True, help="the scanner id in the scenario")
    where = scanner.add_mutually_exclusive_group(required=True)
    where.add_argument("--tcp", metavar="HOST:PORT", help="listen here; the edge connects")
    where.add_argument("--pty", type=Path, metavar="PATH", help="write to this tty (socat pair)")
    scanner.add_argument("--speed", type=float, default=1.0, help="time factor (10 = 10x faster)")
    _llrp_parser(sim_sub.add_parser("llrp", help="an LLRP RFID reader fed with tag sightings"))
    _shelf_parser(sim_sub.add_parser("shelf", help="a load-cell shelf's Modbus transmitters"))

    _broker_parser(sub.add_parser("broker", help="Mosquitto config, ACL and password file"))
    _keys_parser(sub)

    schema = sub.add_parser("schema", help="write JSON Schema + AsyncAPI for the wire contract")
    schema.add_argument("--out", type=Path, default=None, help="directory (default: in package)")
    return p


def _llrp_parser(llrp: argparse.ArgumentParser) -> None:
    llrp.add_argument("--host", default="127.0.0.1", help="listen address")
    llrp.add_argument("--port", type=int, default=5084, help="TCP port (0 = any free port)")
    llrp.add_argument(
        "--model",
        default=None,
        choices=["impinj-r420", "zebra-fx9600"],
        help="reader model (default: the portal's profile, else impinj-r420)",
    )
    llrp.add_argument("--speed", type=float, default=1.0, help="time factor (10 = 10x faster)")
    llrp.add_argument("--duration", type=float, default=None, help="stop after S seconds")
    what = llrp.add_mutually_exclusive_group(required=True)
    what.add_argument("--scenario", type=Path, help="scenario TOML with the portal (--portal)")
    what.add_argument(
        "--sightings-demo", type=int, metavar="LOADS", help="built-in loads crossing the door"
    )
    llrp.add_argument("--portal", help="the portal id in the scenario")
    llrp.add_argument(
        "--hold-until-inventory",
        action="store_true",
        help="start the sightings' clock when a client first inventories (default: at once)",
    )
    llrp.add_argument("--absent", type=float, default=0.0, metavar="S", help="listen after S s")
    llrp.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="reboot|hang@AT_S:DOWN_S|drop@AT_S",
        help="a fault at a time of the sightings' timeline (repeatable)",
    )


def _sim_llrp(args: argparse.Namespace) -> int:
    from simulators.llrp import run

    faults = tuple(run.parse_fault(f) for f in args.fault)
    model, absent = args.model or "impinj-r420", args.absent
    if args.scenario is not None:
        if not args.portal:
            raise ConfigError("--scenario needs --portal")
        portal = run.scenario_portal(args.scenario, args.portal)
        sightings = list(portal.sightings)
        model, absent = args.model or portal.model, args.absent or portal.absent_s
        faults = portal.faults + faults
    else:
        sightings = run.demo_sightings(args.sightings_demo)
    options = run.Options(
        args.host,
        args.port,
        model,
        args.speed,
        args.duration,
        args.hold_until_inventory,
        absent,
        faults,
    )
    return asyncio.run(run.run(options, sightings))


def _shelf_parser(shelf: argparse.ArgumentParser) -> None:
    shelf.add_argument(
        "--profile", help="weighing-transmitter profile, name or path (default: the scenario's)"
    )
    where = shelf.add_mutually_exclusive_group(required=True)
    where.add_argument("--tcp", type=int, metavar="PORT", help="listen here (0 = any free port)")
    where.add_argument("--rtu", metavar="PATH", help="serve RTU on this tty (e.g. a socat pty)")
    shelf.add_argument("--host", default="127.0.0.1", help="TCP listen address")
    what = shelf.add_mutually_exclusive_group(required=True)
    what.add_argument("--scenario", type=Path, help="scenario TOML with the shelf (--shelf)")
    what.add_argument(
        "--static", metavar="UNIT:CHANNEL=GRAMS,...", help="constant lanes: each cell's weight"
    )
    shelf.add_argument("--shelf", help="the shelf id in the scenario")
    shelf.add_argument("--duration", type=float, default=None, help="stop after S seconds")
    shelf.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="KIND@UNIT:AT_S:FOR_S[:ARG]",
        help="slow|silent|exception|bad-crc|absent on a unit (repeatable); ARG: delay_ms of "
        "slow, exception code of exception",
    )


def _sim_shelf(args: argparse.Namespace) -> int:
    from simulators.shelf import run

    faults = [run.parse_fault(f) for f in args.fault]
    if args.scenario is not None:
        if not args.shelf:
            raise ConfigError("--scenario needs --shelf")
        shelf = run.scenario_shelf(args.scenario, args.shelf)
        server = run.shelf_server(args.profile or shelf.profile, shelf.world, shelf.faults + faults)
        print(f"shelf sim: shelf {args.shelf!r}: {shelf.summary}", flush=True)
    elif args.profile is None:
        raise ConfigError("--static needs --profile")
    else:
        server = run.shelf_server(args.profile, run.parse_static(args.static), faults)
    options = run.Options(args.host, args.tcp, args.rtu, args.duration)
    return asyncio.run(run.run(options, server))


def _broker_parser(broker: argparse.ArgumentParser) -> None:
    what = broker.add_subparsers(dest="file", required=True)
    conf = what.add_parser("conf", help="print mosquitto.conf (TLS listener, logins, ACL)")
    conf.add_argument("--port", type=int, default=8883)
    conf.add_argument("--etc", type=Path, default=Path("/etc/mosquitto"), help="its files here")
    acl = what.add_parser("acl", help="print the ACL of a site")
    acl.add_argument("--site", required=True)
    acl.add_argument(
        "--aggregator",
        action="append",
        help="aggregator user (repeat per replica; default: aggregator)",
    )
    acl.add_argument(
        "--viewer", action="append", help="read-only user (repeatable; default: viewer)"
    )
    passwd = what.add_parser(
        "passwd", help="add or replace a user in a password file; prints a new random password"
    )
    passwd.add_argument("password_file", type=Path)
    passwd.add_argument("username", help="an edge id, or an aggregator or viewer user")
    passwd.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin instead"
    )


def _broker(args: argparse.Namespace) -> int:
    from stockwire import broker_config, passwd
    from stockwire.topics import TopicError

    try:
        if args.file == "conf":
            print(broker_config.conf_text(args.port, args.etc), end="")
        elif args.file == "acl":
            aggregators = args.aggregator or [broker_config.AGGREGATOR_USER]
            viewers = args.viewer or [broker_config.VIEWER_USER]
            print(broker_config.acl_text(args.site, aggregators, viewers), end="")
        else:
            generated = not args.password_stdin
            password = passwd.new_password() if generated else sys.stdin.readline().rstrip("\n")
            passwd.set_password(args.password_file, args.username, password)
            if generated:
                print(password)  # shown once: put it in the client's env file
    except (TopicError, passwd.PasswordFileError, OSError) as e:
        print(f"stockwire broker {args.file}: {e}", file=sys.stderr)
        return 2
    return 0


def _keys_parser(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    from aggregator.roles import Role  # an enum with no dependencies

    keys = sub.add_parser("keys", help="create, list or revoke API keys (aggregator database)")
    actions = keys.add_subparsers(dest="keys_command", required=True)
    create = actions.add_parser("create", help="make a key: printed once, only its hash is kept")
    create.add_argument("--name", required=True, help="who holds it (shown in the audit log)")
    create.add_argument("--role", required=True, choices=[r.value for r in Role])
    listing = actions.add_parser("list", help="every key, revoked ones too")
    revoke = actions.add_parser("revoke", help="the key stops working at once")
    revoke.add_argument("key_id", help="the id part of swk_<id>_<secret>, as `list` shows it")
    for action in (create, listing, revoke):
        action.add_argument("--config", type=Path, required=True, help="the aggregator's TOML")


def _run(args: argparse.Namespace) -> int:
    if args.command == "broker":
        return _broker(args)
    if args.command == "schema":
        from stockwire import schema

        for path in schema.write(args.out) if args.out else schema.write():
            print(path)
        return 0
    if args.command == "edge":
        from edge_agent.main import run as run_edge

        return asyncio.run(run_edge(args.config))
    if args.command == "aggregator":
        from aggregator.main import run as run_aggregator

        return asyncio.run(run_aggregator(args.config))
    if args.command == "keys":
        from aggregator.key_admin import run as run_keys

        return run_keys(args)
    if args.command == "sim" and args.device == "llrp":
        return _sim_llrp(args)
    if args.command == "sim" and args.device == "shelf":
        return _sim_shelf(args)
    if args.command == "sim":
        from simulators.scanner import run as run_scanner

        return asyncio.run(run_scanner(args.scenario, args.scanner, args.tcp, args.pty, args.speed))
    from simulators.demo import run as run_demo

    return asyncio.run(
        run_demo(args.duration, args.check, args.scenario, args.workdir, args.telemetry_url)
    )


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.log_format not in logs.FORMATS:  # a default from the environment
        parser.error(f"${logs.ENV}: {args.log_format!r} is not one of {', '.join(logs.FORMATS)}")
    logs.setup(args.log_level, args.log_format)
    # Alembic narrates every plugin and migration step at INFO; only its warnings matter here.
    logging.getLogger("alembic").setLevel(max(logging.WARNING, logging.getLogger().level))
    try:
        return _run(args)
    except ConfigError as e:
        print(f"stockwire: bad config: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
