"""A secured Kafka + Redis pair for the tests, made and started here (nothing shared).

* a certificate authority made with ``openssl`` for this session, and a server certificate it
  signed for ``127.0.0.1``/``localhost`` (a second, foreign CA too: a client trusting it must
  be refused);
* a single-node KRaft broker from the dev stack's Maven jars, with one ``SASL_SSL`` listener
  (SCRAM-SHA-512; users created by ``kafka-storage format --add-scram``: ``admin`` for the
  broker itself, ``meterwatch`` for the clients) and a loopback-only controller listener;
* ``redis-server`` with a TLS port and a plain loopback port (the API's pipelined client
  speaks plain RESP only), ``requirepass`` for the default user and an ACL user ``meterwatch``.

Every process is started by the fixture and stopped by it (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import contextlib
import secrets
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from meterwatch.cli.devstack import StackError, run_async
from meterwatch.cli.devstack.kafka import (
    KAFKA_MAIN,
    STORAGE_TOOL,
    _java_cmd,
    cds_archive,
    ensure_kafka_jars,
    new_cluster_id,
)
from meterwatch.connections import kafka_client_kwargs
from meterwatch.settings import Settings

KAFKA_USER = "meterwatch"
REDIS_USER = "meterwatch"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run(cmd: list[str], cwd: Path) -> None:
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise StackError(f"{' '.join(cmd[:3])} failed ({done.returncode}):\n{done.stderr[-2000:]}")


def make_ca(d: Path, name: str) -> tuple[Path, Path]:
    """A self-signed CA: (certificate, key)."""
    cert, key = d / f"{name}.pem", d / f"{name}.key"
    _run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
          "-out", str(cert), "-days", "2", "-subj", f"/CN=meterwatch test {name}"], d)  # fmt: skip
    return cert, key


def make_server_cert(d: Path, ca: tuple[Path, Path], keystore_password: str) -> tuple[Path, Path, Path]:
    """A certificate for 127.0.0.1/localhost signed by ``ca``: (cert PEM, key PEM, PKCS12 keystore)."""
    cert, key, csr, p12 = d / "server.pem", d / "server.key", d / "server.csr", d / "server.p12"
    ext = d / "server.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr),
          "-subj", "/CN=localhost"], d)  # fmt: skip
    _run(["openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca[0]), "-CAkey", str(ca[1]),
          "-CAcreateserial", "-out", str(cert), "-days", "2", "-extfile", str(ext)], d)  # fmt: skip
    _run(["openssl", "pkcs12", "-export", "-in", str(cert), "-inkey", str(key), "-certfile", str(ca[0]),
          "-name", "kafka", "-out", str(p12), "-passout", f"pass:{keystore_password}"], d)  # fmt: skip
    return cert, key, p12


@dataclass
class SecureStack:
    """The secured pair and what a client needs to use it."""

    root: Path
    ca: Path
    foreign_ca: Path
    kafka_port: int
    redis_port: int  # TLS
    redis_plain_port: int  # no TLS, same passwords
    kafka_password: str = field(repr=False)
    redis_password: str = field(repr=False)  # the ACL user's
    default_password: str = field(repr=False)  # requirepass (the default user's)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def settings(self, base: Settings) -> Settings:
        """``base`` pointed at this pair, with the client credentials given inline."""
        return Settings.model_validate(
            {
                **base.model_dump(),
                "kafka_bootstrap": f"127.0.0.1:{self.kafka_port}",
                "redis_url": f"rediss://127.0.0.1:{self.redis_port}/0",
                "kafka_security_protocol": "SASL_SSL",
                "kafka_sasl_mechanism": "SCRAM-SHA-512",
                "kafka_sasl_username": KAFKA_USER,
                "kafka_sasl_password": self.kafka_password,
                "kafka_ssl_cafile": str(self.ca),
                "redis_username": REDIS_USER,
                "redis_password": self.redis_password,
                "redis_ssl_cafile": str(self.ca),
            }
        )

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


def _kafka_config(
    st: SecureStack, controller_port: int, keystore: Path, ks_password: str, admin_pw: str
) -> str:
    jaas = (
        "org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="admin" password="{admin_pw}";'
    )
    return "\n".join(
        [
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@127.0.0.1:{controller_port}",
            f"listeners=SASL_SSL://127.0.0.1:{st.kafka_port},CONTROLLER://127.0.0.1:{controller_port}",
            f"advertised.listeners=SASL_SSL://127.0.0.1:{st.kafka_port}",
            "inter.broker.listener.name=SASL_SSL",
            "controller.listener.names=CONTROLLER",
            "listener.security.protocol.map=CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL",
            "sasl.enabled.mechanisms=SCRAM-SHA-512",
            "sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512",
            f"listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config={jaas}",
            "ssl.keystore.type=PKCS12",
            f"ssl.keystore.location={keystore}",
            f"ssl.keystore.password={ks_password}",
            f"ssl.key.password={ks_password}",
            "ssl.truststore.type=PEM",
            f"ssl.truststore.location={st.ca}",
            "ssl.client.auth=none",
            f"log.dirs={st.root / 'kafka-data'}",
            "num.partitions=1",
            "default.replication.factor=1",
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=4",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
            "group.initial.rebalance.delay.ms=0",
            "auto.create.topics.enable=false",
            "num.network.threads=2",
            "num.io.threads=2",
            "background.threads=2",
            "log.cleaner.threads=1",
            "log.cleaner.dedupe.buffer.size=16777216",
            "",
        ]
    )


def _start_kafka(st: SecureStack, base: Settings, keystore: Path, ks_password: str) -> None:
    ensure_kafka_jars(base)
    run = base.model_copy(update={"data_dir": st.root / "kafka-run"})  # its logs go under root
    admin_pw = secrets.token_hex(12)
    config = st.root / "server.properties"
    config.write_text(_kafka_config(st, free_port(), keystore, ks_password, admin_pw))
    cluster_id = new_cluster_id()
    users = [f"SCRAM-SHA-512=[name={user},password={pw}]"
             for user, pw in (("admin", admin_pw), (KAFKA_USER, st.kafka_password))]  # fmt: skip
    fmt = _java_cmd(run, STORAGE_TOOL, "format", "-t", cluster_id, "-c", str(config),
                    "--add-scram", users[0], "--add-scram", users[1])  # fmt: skip
    fmt = [c for c in fmt if not c.startswith(("-Xms", "-Xmx"))]
    fmt.insert(1, "-Xmx256m")
    _run(fmt, st.root)
    archive = cds_archive(base)  # the dev broker's class-data archive, if it has one: faster start
    extra = (f"-XX:SharedArchiveFile={archive}", "-Xshare:auto") if archive.is_file() else ()
    cmd = _java_cmd(run, KAFKA_MAIN, str(config), extra=extra)
    cmd = [c for c in cmd if not c.startswith(("-Xms", "-Xmx"))]
    cmd.insert(1, "-Xmx512m")
    with (st.root / "kafka.out").open("ab") as out:
        st.procs.append(subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=st.root))


def _start_redis(st: SecureStack, cert: Path, key: Path) -> None:
    conf = st.root / "redis.conf"
    conf.write_text(
        "\n".join(
            [
                "bind 127.0.0.1",
                f"port {st.redis_plain_port}",
                f"tls-port {st.redis_port}",
                f"tls-cert-file {cert}",
                f"tls-key-file {key}",
                f"tls-ca-cert-file {st.ca}",
                "tls-auth-clients no",
                f"requirepass {st.default_password}",
                f"user {REDIS_USER} on >{st.redis_password} ~* &* +@all",
                'save ""',
                "appendonly no",
                f"dir {st.root}",
                f"logfile {st.root / 'redis.log'}",
                "",
            ]
        )
    )
    st.procs.append(subprocess.Popen(["redis-server", str(conf)], cwd=st.root))


async def _kafka_answers(settings: Settings) -> bool:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(**kafka_client_kwargs(settings), request_timeout_ms=5000)
    try:
        await admin.start()
        await admin.list_topics()
        return True
    except Exception:
        return False
    finally:
        with contextlib.suppress(Exception):
            await admin.close()


def start_secure_stack(root: Path, base: Settings, timeout_s: float = 90.0) -> SecureStack:
    """Make the certificates, start both servers and wait until the clients are served."""
    root.mkdir(parents=True, exist_ok=True)
    ca = make_ca(root, "ca")
    foreign, _ = make_ca(root, "foreign-ca")
    ks_password = secrets.token_hex(8)
    cert, key, keystore = make_server_cert(root, ca, ks_password)
    st = SecureStack(
        root=root, ca=ca[0], foreign_ca=foreign, kafka_port=free_port(), redis_port=free_port(),
        redis_plain_port=free_port(),
        kafka_password=secrets.token_hex(12), redis_password=secrets.token_hex(12),
        default_password=secrets.token_hex(12),
    )  # fmt: skip
    try:
        _start_kafka(st, base, keystore, ks_password)
        _start_redis(st, cert, key)
        client = st.settings(base)
        deadline = time.monotonic() + timeout_s
        while not run_async(lambda: _kafka_answers(client)):
            dead = [p.args for p in st.procs if p.poll() is not None]
            if dead or time.monotonic() > deadline:
                out = (root / "kafka.out").read_text(errors="replace")[-3000:]
                raise StackError(f"the secured broker did not come up ({dead or 'timeout'}):\n{out}")
            time.sleep(0.5)
    except BaseException:
        st.stop()
        raise
    return st
