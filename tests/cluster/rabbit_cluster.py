"""A three-node RabbitMQ cluster on this machine, beside (never instead of) its own broker.

Each node is the Debian package's `rabbitmq-server` started by hand: its own node name
(`ssu-c<N>@localhost`), AMQP port, distribution port, data and log directories under a
temporary directory, no plugins. `HOME` points into that directory, so the nodes and our
`rabbitmqctl -n <node>` calls share a cookie of our own and the machine's cookie
(`/var/lib/rabbitmq/.erlang.cookie`) is never read or written. The machine's node
`rabbit@<host>` on 5672 is never addressed: every command names its node with `-n`.
"""

import asyncio
import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

RABBIT_BIN = Path(os.environ.get("SSU_RABBITMQ_BIN", "/usr/lib/rabbitmq/bin"))
FIRST_AMQP_PORT = int(os.environ.get("SSU_CLUSTER_AMQP_PORT", "5701"))
FIRST_DIST_PORT = int(os.environ.get("SSU_CLUSTER_DIST_PORT", "25701"))
# The AMQP heartbeat the services use on the cluster: a paused node is given up after it.
HEARTBEAT_SECONDS = 5
# Inter-node ticks (Erlang's default): the nodes give a silent peer up after 60-75 s. A
# pause shorter than that is no partition for the cluster, only for the clients (heartbeat).
NET_TICKTIME_SECONDS = 60


@dataclass
class Node:
    index: int
    base: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def name(self) -> str:
        return f"ssu-c{self.index}@localhost"

    @property
    def amqp_port(self) -> int:
        return FIRST_AMQP_PORT + self.index - 1

    @property
    def dist_port(self) -> int:
        return FIRST_DIST_PORT + self.index - 1

    @property
    def dir(self) -> Path:
        return self.base / f"c{self.index}"

    @property
    def pid_file(self) -> Path:
        return self.dir / "beam.pid"

    def beam_pid(self) -> int | None:
        with contextlib.suppress(OSError, ValueError):
            return int(self.pid_file.read_text().strip())
        return None


@dataclass
class RabbitCluster:
    base: Path
    vhost: str = "ssu_cluster"
    size: int = 3
    nodes: list[Node] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.nodes = [Node(i, self.base) for i in range(1, self.size + 1)]
        cookie = self.base / ".erlang.cookie"
        if not cookie.exists():
            self.base.mkdir(parents=True, exist_ok=True)
            cookie.write_text(secrets.token_hex(20))
            cookie.chmod(0o400)

    # --- addresses

    def url(self, node: Node, user: str = "guest", password: str = "guest") -> str:
        return f"amqp://{user}:{password}@127.0.0.1:{node.amqp_port}/{self.vhost}"

    def urls(self, user: str = "guest", password: str = "guest") -> str:
        """Every node, comma-separated: the form `SSU_AMQP_URL` takes."""
        return ",".join(self.url(n, user, password) for n in self.nodes)

    # --- process control

    def _env(self, node: Node) -> dict[str, str]:
        d = node.dir
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.base),
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "RABBITMQ_NODENAME": node.name,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(node.amqp_port),
            "RABBITMQ_DIST_PORT": str(node.dist_port),
            "RABBITMQ_MNESIA_BASE": str(d / "mnesia"),
            "RABBITMQ_LOG_BASE": str(d / "log"),
            "RABBITMQ_PID_FILE": str(node.pid_file),
            "RABBITMQ_CONFIG_FILE": str(d / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(d / "advanced.config"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(d / "enabled_plugins"),
            # Not the machine's env file (it names the machine's node).
            "RABBITMQ_CONF_ENV_FILE": str(d / "rabbitmq-env.conf"),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        }

    def _write_config(self, node: Node) -> None:
        d = node.dir
        (d / "log").mkdir(parents=True, exist_ok=True)
        (d / "mnesia").mkdir(parents=True, exist_ok=True)
        (d / "rabbitmq.conf").write_text(
            "\n".join(
                [
                    f"listeners.tcp.default = 127.0.0.1:{node.amqp_port}",
                    "loopback_users.guest = true",
                    # A three-node cluster: the side that loses contact with the majority
                    # pauses instead of serving a split brain.
                    "cluster_partition_handling = pause_minority",
                    "log.file.level = info",
                    "log.console = false",
                    "",
                ]
            )
        )
        (d / "advanced.config").write_text(
            f"[{{kernel, [{{net_ticktime, {NET_TICKTIME_SECONDS}}}]}}].\n"
        )
        (d / "enabled_plugins").write_text("[].\n")
        (d / "rabbitmq-env.conf").write_text("")

    def start_node(self, node: Node) -> None:
        self._write_config(node)
        with (node.dir / "stdout.log").open("ab") as out:
            node.process = subprocess.Popen(
                [str(RABBIT_BIN / "rabbitmq-server")],
                env=self._env(node),
                cwd=node.dir,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def ctl(self, node: Node, *args: str, timeout: float = 120.0, check: bool = True) -> str:
        """`rabbitmqctl -n <node> ...` with our cookie; never the machine's node."""
        return self._cli("rabbitmqctl", node, *args, timeout=timeout, check=check)

    def queues_cli(self, node: Node, *args: str, timeout: float = 60.0) -> str:
        return self._cli("rabbitmq-queues", node, *args, timeout=timeout)

    def _cli(self, tool: str, node: Node, *args: str, timeout: float, check: bool = True) -> str:
        done = subprocess.run(
            [str(RABBIT_BIN / tool), "-n", node.name, "-q", *args],
            env=self._env(node),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and done.returncode != 0:
            command = " ".join(args)
            raise RuntimeError(f"{tool} -n {node.name} {command}: {done.stderr}{done.stdout}")
        return done.stdout

    def await_node(self, node: Node, timeout: float = 180.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            # Until the VM has registered with epmd, await_startup fails at once: ask again.
            try:
                self.ctl(node, "await_startup", "--timeout", "60", timeout=75)
                break
            except (RuntimeError, subprocess.TimeoutExpired):
                if time.monotonic() > deadline:
                    raise
                time.sleep(1.0)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", node.amqp_port), timeout=1),
            ):
                return
            time.sleep(0.2)
        raise RuntimeError(f"{node.name} does not listen on {node.amqp_port}")

    def start(self) -> None:
        """Start the three nodes, join the second and third to the first, set up the vhost."""
        for node in self.nodes:
            self.start_node(node)
        for node in self.nodes:
            self.await_node(node)
        first = self.nodes[0]
        for node in self.nodes[1:]:
            self.ctl(node, "stop_app")
            self.ctl(node, "join_cluster", first.name)
            self.ctl(node, "start_app")
            self.await_node(node)
        self.ctl(first, "add_vhost", self.vhost)
        self.ctl(first, "set_permissions", "-p", self.vhost, "guest", ".*", ".*", ".*")

    def import_definitions(self, definitions: dict[str, object]) -> None:
        """Users, permissions and topic permissions (a RabbitMQ definitions document)."""
        path = self.base / "definitions.json"
        path.write_text(json.dumps(definitions), encoding="utf-8")
        self.ctl(self.nodes[0], "import_definitions", str(path))

    def set_policy(self, name: str, pattern: str, definition: dict[str, object]) -> None:
        self.ctl(
            self.nodes[0],
            "set_policy",
            "-p",
            self.vhost,
            "--apply-to",
            "queues",
            "--priority",
            "10",
            name,
            pattern,
            json.dumps(definition),
        )

    def effective_policies(self) -> dict[str, dict[str, object]]:
        """Each queue's applied policy definition (3.10 names the policy; look it up)."""
        out = self.ctl(
            self.nodes[0],
            "list_queues",
            "-p",
            self.vhost,
            "name",
            "policy",
            "--formatter",
            "json",
            timeout=30,
        )
        applied = {q["name"]: q["policy"] for q in json.loads(out)}
        out = self.ctl(
            self.nodes[0], "list_policies", "-p", self.vhost, "--formatter", "json", timeout=30
        )
        definitions = {}
        for p in json.loads(out):
            d = p["definition"]
            definitions[p["name"]] = json.loads(d) if isinstance(d, str) else d
        return {q: definitions.get(name, {}) if name else {} for q, name in applied.items()}

    def queue_arguments(self) -> dict[str, dict[str, object]]:
        out = self.ctl(
            self.nodes[0],
            "list_queues",
            "-p",
            self.vhost,
            "name",
            "arguments",
            "--formatter",
            "json",
            timeout=30,
        )
        return {q["name"]: _table(q["arguments"]) for q in json.loads(out)}

    def running_nodes(self) -> list[str]:
        out = self.ctl(self.nodes[0], "eval", "rabbit_nodes:all_running().", timeout=30)
        return sorted(n.strip(" []'\n") for n in out.replace("\n", "").split(",") if n.strip())

    def kill(self, node: Node) -> None:
        """SIGKILL the node's VM: a machine that died, no goodbye to the cluster."""
        pid = node.beam_pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if node.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(node.process.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                node.process.wait(timeout=30)
        node.pid_file.unlink(missing_ok=True)

    def restart(self, node: Node) -> None:
        """Stop the node cleanly and start it again (a rolling restart's step)."""
        self.ctl(node, "stop", check=False)
        if node.process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                node.process.wait(timeout=60)
        self.start_node(node)
        self.await_node(node)

    def pause(self, node: Node) -> None:
        pid = node.beam_pid()
        assert pid is not None, f"{node.name} has no pid"
        os.kill(pid, signal.SIGSTOP)

    def resume(self, node: Node) -> None:
        pid = node.beam_pid()
        assert pid is not None, f"{node.name} has no pid"
        os.kill(pid, signal.SIGCONT)

    def stop(self) -> None:
        """Tear every node down (quietly first, then by force); the directory is the caller's."""
        for node in self.nodes:
            with contextlib.suppress(Exception):
                self.resume(node)
            with contextlib.suppress(Exception):
                self.ctl(node, "stop", timeout=30, check=False)
        for node in self.nodes:
            if node.process is not None and node.process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(node.process.pid, signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    node.process.wait(timeout=30)

    # --- queues

    def queue_leader(self, queue: str) -> Node:
        """The node that leads a quorum queue now."""
        for node in self.nodes:
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                out = self.ctl(
                    node,
                    "list_queues",
                    "-p",
                    self.vhost,
                    "name",
                    "leader",
                    "--no-table-headers",
                    timeout=30,
                )
                for line in out.splitlines():
                    parts = line.split()
                    if len(parts) == 2 and parts[0] == queue:
                        return next(n for n in self.nodes if n.name == parts[1])
        raise RuntimeError(f"no leader found for {queue}")

    def queue_online(self) -> dict[str, list[str]]:
        """The members of each quorum queue that are up and following (or leading)."""
        out = self.ctl(
            self.nodes[0],
            "list_queues",
            "-p",
            self.vhost,
            "name",
            "type",
            "online",
            "--formatter",
            "json",
            timeout=30,
        )
        return {q["name"]: sorted(q["online"]) for q in json.loads(out) if q["type"] == "quorum"}

    def queue_members(self) -> dict[str, list[str]]:
        out = self.ctl(
            self.nodes[0],
            "list_queues",
            "-p",
            self.vhost,
            "name",
            "type",
            "members",
            "--formatter",
            "json",
            timeout=30,
        )
        return {q["name"]: sorted(q["members"]) for q in json.loads(out) if q["type"] == "quorum"}


async def in_thread(fn, *args):  # type: ignore[no-untyped-def]
    """Cluster operations block (CLI calls): off the event loop, so the stream keeps flowing."""
    return await asyncio.to_thread(fn, *args)


def _table(arguments: object) -> dict[str, object]:
    """rabbitmqctl's JSON of an AMQP table: a list of [name, type, value] (or a mapping)."""
    if isinstance(arguments, dict):
        return dict(arguments)
    return {str(a[0]): a[-1] for a in arguments or []}  # type: ignore[attr-defined]
