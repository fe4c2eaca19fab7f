"""irctest (github.com/progval/irctest) controller for Banter: copy to
irctest/controllers/banter.py, then from the irctest checkout run
`BANTER_BIN=/path/to/banter pytest --controller irctest.controllers.banter
irctest/server_tests`. Each test gets a fresh server and data directory,
with the rate limits off (irctest connects and sends in bursts)."""

import json
import os
import socket
from typing import Optional, Type

from irctest.basecontrollers import BaseServerController, DirectoryBasedController
from irctest.runner import NotImplementedByController

BANTER = os.environ.get("BANTER_BIN", "target/debug/banter")


class BanterController(BaseServerController, DirectoryBasedController):
    software_name = "Banter"
    supported_sasl_mechanisms = {"PLAIN"}
    supports_sts = False

    def run(self, hostname, port, *, password, ssl, run_services, faketime,
            websocket_hostname, websocket_port) -> None:
        if ssl:
            raise NotImplementedByController("TLS")
        assert self.proc is None
        self.port = port
        self.hostname = hostname
        self.create_config()
        (tcp_host, tcp_port) = self.get_hostname_and_port()
        self.tcp = (tcp_host, tcp_port)
        http = "127.0.0.1:0"
        if websocket_port is not None:
            http = f"{websocket_hostname}:{websocket_port}"
        self.proc = self.execute([
            BANTER, "--data-dir", self.directory, "--irc", f"{hostname}:{port}",
            "--tcp", f"{tcp_host}:{tcp_port}", "--http", http,
            "--server-name", "My.Little.Server",
            "--irc-flood-burst", "100000", "--irc-flood-rate", "100000",
            "--message-rate", "0", "--join-rate", "0", "--change-rate", "0",
            "--registrations-per-hour", "0", "--new-rooms-per-hour", "0",
            "--max-connections-per-address", "0", "--handshake-rate", "0",
            "--argon2-memory-kib", "64", "--server-admin", "operuser",
            "--log", "warn",
        ])
        self.run_services = run_services
        if run_services:
            self.wait_for_port()
            self.registerUser(None, "operuser", "operpassword")

    def wait_for_services(self) -> None:
        self.wait_for_port()

    def registerUser(self, case, username: str, password: Optional[str] = None) -> None:
        s = socket.create_connection(self.tcp)
        f = s.makefile("rw")
        f.write(json.dumps({"type": "register", "nick": username, "password": password or "password123"}) + "\n")
        f.flush()
        for _ in range(20):
            line = f.readline()
            if not line:
                break
            msg = json.loads(line)
            if msg.get("type") in ("registered", "error"):
                break
        s.close()


def get_irctest_controller_class() -> Type[BanterController]:
    return BanterController
