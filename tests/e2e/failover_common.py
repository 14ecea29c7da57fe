"""Shared plumbing for the failover e2e tests: a primary and its streaming standby made by
pg_basebackup -R, a switchover that turns the old primary into a standby of the new one, and a
proxy whose upstream lists several hosts."""

import os

import e2e_common

from harness import pgcluster
from harness.pgcluster import PgCluster

PG_BIN = pgcluster.PG_BIN


class FailoverProxy(e2e_common.Proxy):
    """The harness's proxy, with upstream.hosts instead of one host."""

    def __init__(self, ports, attrs="read-write", check_seconds=0.2, **overrides):
        self.ports = ports
        self.attrs = attrs
        self.check_seconds = check_seconds
        super().__init__(upstream_port=ports[0], **overrides)

    def make_config(self, port):
        config = super().make_config(port)
        config["upstream"] = {"hosts": [{"host": "127.0.0.1", "port": p} for p in self.ports],
                              "target_session_attrs": self.attrs, "check_seconds": self.check_seconds}
        return config


def replication_count(pg, condition: str = "state = 'streaming'") -> int:
    return pg.psql(f"select count(*) from pg_stat_replication where {condition}")[0][0]


def start_pair(synchronous: bool):
    """A primary, and a standby made by pg_basebackup -R streaming from it; with `synchronous`,
    synchronously (so a commit the client saw is on the standby before a promotion)."""
    commit = {"synchronous_commit": True} if synchronous else {}
    primary = PgCluster().start({**commit, "wal_level": "replica", "max_wal_senders": 5})
    with open(os.path.join(primary.data_dir, "pg_hba.conf"), "a") as f:
        f.write("host replication all 127.0.0.1/32 trust\n")
    primary.psql("select pg_reload_conf()")
    standby = PgCluster()
    standby._prepare_base()
    pgcluster._run_pg([os.path.join(PG_BIN, "pg_basebackup"), "-D", standby.data_dir, "-h", "127.0.0.1",
                       "-p", str(primary.port), "-U", "postgres", "-R", "-X", "stream", "-c", "fast"])
    standby.start({**commit, "hot_standby": True})
    e2e_common.poll(lambda: replication_count(primary) == 1, 30, 0.05, "the standby to stream")
    if synchronous:
        # After the base backup, so the standby (the next primary) does not wait for a standby itself.
        primary.psql("alter system set synchronous_standby_names = '*'")
        primary.psql("select pg_reload_conf()")
        e2e_common.poll(lambda: replication_count(primary, "sync_state = 'sync'") == 1, 30, 0.05,
                        "the standby to be synchronous")
    return primary, standby


def switch_over(primary: PgCluster, standby: PgCluster) -> None:
    """A planned switchover: the primary stops cleanly (its standby receives everything), the
    standby is promoted, and the old primary restarts on its own port as a hot standby of the new
    one, following its new timeline (what pg_auto_failover and Patroni do to a demoted node)."""
    pg_ctl = os.path.join(PG_BIN, "pg_ctl")
    pgcluster._run_pg([pg_ctl, "stop", "-w", "-m", "fast", "-D", primary.data_dir])
    pgcluster._run_pg([pg_ctl, "promote", "-w", "-D", standby.data_dir])
    signal_file = os.path.join(primary.data_dir, "standby.signal")
    open(signal_file, "w").close()
    pgcluster._chown_to_pg(signal_file)
    # harness.conf keeps the port of the last start; settings appended here win over earlier ones.
    with open(os.path.join(primary.data_dir, "harness.conf"), "a") as f:
        f.write(f"primary_conninfo = 'host=127.0.0.1 port={standby.port} user=postgres'\n"
                "hot_standby = on\n")
    pgcluster._run_pg([pg_ctl, "start", "-w", "-D", primary.data_dir, "-l", primary.log_file])
    e2e_common.poll(lambda: replication_count(standby) == 1, 30, 0.05,
                    "the old primary to stream from the new one")
    assert primary.psql("select pg_is_in_recovery()")[0][0], "the old primary is not a standby"
