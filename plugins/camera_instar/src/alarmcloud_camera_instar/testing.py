"""A fake INSTAR camera on loopback for tests (this package's and any other's).

It serves the CGI commands the adapter uses, per generation, over real HTTP with Basic auth, replies like the
cameras do (``var name="value";`` + ``[Succeed]set ok.`` on 720p/Full HD, ``name="value";`` +
``response="200";`` on WQHD), keeps state, records every request and can refuse or stall. A WQHD fake also
runs the camera's built-in MQTT broker (off by default, as on the cameras; ``mqtt=True`` switches it on)::

    with FakeInstarCamera("wqhd", password="Secr3t!pass") as cam:
        await adapter.control(cam.access(), "motion_detection", False)
        assert cam.state["alarm"]["armed"] == "0"
"""

from __future__ import annotations

import base64
import io
import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from alarmcloud.contracts import CameraAccess

from alarmcloud_camera_instar.catalog import FULL_HD, GENERATIONS, HD, WQHD
from alarmcloud_camera_instar.testing_mqtt import FakeMqttBroker, MqttMessage

Params = list[tuple[str, str]]

DEFAULT_MODELS = {HD: "IN-6014 HD", FULL_HD: "IN-8015 Full HD", WQHD: "IN-9420 2K+"}
_MD_ALARM_NAMES = (
    "email", "emailsnap", "snap", "ftpsnap", "record", "ftprec", "emailrec", "relay", "type", "preset",
    "server", "server2",
)  # fmt: skip
_HI_FTP_KEYS = ("-ft_server", "-ft_port", "-ft_username", "-ft_password", "-ft_mode", "-ft_dirname")
_WQHD_FTP_KEYS = (
    "ft_server", "ft_port", "ft_username", "ft_password", "ft_mode", "ft_dirname", "ft_autocreatedir",
    "ft_dirmode", "ft_ssl", "ft_insecure",
)  # fmt: skip
#: getmqttattr keys (2K+ web UI command map); mq_pass is write-only like every password on these cameras
_MQTT_KEYS = (
    "mq_enable", "mq_broker", "mq_host", "mq_port", "mq_portssl", "mq_ssl", "mq_auth", "mq_user", "mq_pass",
    "mq_insecure", "mq_prefix", "mq_lwt", "mq_clientid", "mq_qos",
)  # fmt: skip
_OK = "[Succeed]set ok."
_PARAM_ERROR = "[Error]Param error."


@dataclass(frozen=True)
class ReceivedRequest:
    """One HTTP request the fake camera received (credentials in the query are kept out of ``params``)."""

    method: str
    path: str
    params: Params
    authorized: bool

    def commands(self) -> list[Params]:
        """The ``cmd=`` blocks of the request, each starting with its ``("cmd", name)`` pair."""
        blocks: list[Params] = []
        for key, value in self.params:
            if key == "cmd" or not blocks:
                blocks.append([])
            blocks[-1].append((key, value))
        return blocks


def _jpeg() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (64, 36), (30, 90, 160)).save(buf, format="JPEG")
    return buf.getvalue()


class FakeInstarCamera:
    """A fake camera of one generation (``hd``, ``fullhd`` or ``wqhd``) on ``127.0.0.1:<port>``."""

    def __init__(
        self,
        generation: str = FULL_HD,
        *,
        username: str = "admin",
        password: str = "instar",
        ptz: bool = True,
        mqtt: bool = False,
    ) -> None:
        if generation not in GENERATIONS:
            raise ValueError(f"unknown generation {generation!r}")
        self.generation = GENERATIONS[generation]
        self.username = username
        self.password = password
        self.ptz = ptz
        #: "ok"; "refuse" answers 401 to everything; "stall" waits ``stall_s`` before answering; "error" → 500
        self.mode = "ok"
        self.stall_s = 5.0
        self.requests: list[ReceivedRequest] = []
        #: alarm-server calls the fake made (``pushhostalarm`` / ``testas``): (method, URL without login, status)
        self.alarm_calls: list[tuple[str, str, int | None]] = []
        #: CGI commands this firmware does not know (answered 404 on 720p/Full HD, ``response="204";`` on WQHD)
        self.unknown_commands: set[str] = set()
        self.state: dict[str, Any] = self._initial_state()
        self.broker: FakeMqttBroker | None = None
        if self.generation.api == "wqhd":
            self.state["mqtt"]["mq_enable"] = "1" if mqtt else "0"
            self.broker = FakeMqttBroker(
                self._mqtt_login, self._on_mqtt, lambda: self.state["mqtt"]["mq_enable"] == "1"
            )
        self.snapshot_jpeg = _jpeg()
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------ lifecycle

    @property
    def port(self) -> int:
        assert self._server is not None, "start the fake camera first"
        return self._server.server_address[1]

    address = "127.0.0.1"

    def start(self) -> FakeInstarCamera:
        """Serve on an ephemeral loopback port in a daemon thread."""
        camera = self

        class Handler(_Handler):
            fake = camera

        self._release.clear()
        self._server = ThreadingHTTPServer((self.address, 0), Handler)
        self._server.daemon_threads = True
        self._server.block_on_close = False  # type: ignore[attr-defined]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-instar", daemon=True
        )
        self._thread.start()
        if self.broker is not None:
            self.broker.start()
            self.state["mqtt"]["mq_port"] = str(self.broker.port)
        return self

    def stop(self) -> None:
        """Stop serving (stalled requests are released)."""
        self._release.set()
        if self.broker is not None:
            self.broker.stop()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeInstarCamera:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> FakeInstarCamera:
        return self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def access(
        self, model: str | None = None, *, username: str | None = None, password: str | None = None
    ) -> CameraAccess:
        """A ``CameraAccess`` for this fake (the right login unless given otherwise)."""
        return CameraAccess(
            id="fake-instar",
            model=model or DEFAULT_MODELS[self.generation.key],
            address=self.address,
            port=self.port,
            username=self.username if username is None else username,
            password=self.password if password is None else password,
        )

    def cgi_requests(self) -> list[ReceivedRequest]:
        """The authorised requests to the CGI endpoint, oldest first."""
        return [r for r in self.requests if r.authorized and r.path.endswith("param.cgi")]

    @property
    def mqtt_messages(self) -> list[MqttMessage]:
        """Every message published to the built-in broker (WQHD), oldest first."""
        return list(self.broker.messages) if self.broker else []

    # ------------------------------------------------------------ state

    def _initial_state(self) -> dict[str, Any]:
        w, h = self.generation.resolutions[0]
        areas = {
            n: {"enable": "1" if n == 1 else "0", "s": "50", "x": "0", "y": "0", "w": str(w), "h": str(h)}
            for n in range(1, self.generation.areas + 1)
        }
        if self.generation.api == "hi3510":
            return {
                "areas": areas,
                "mdalarm": {name: "off" for name in _MD_ALARM_NAMES},
                "preset": None,
                "ftp": {
                    "-ft_server": "",
                    "-ft_port": "21",
                    "-ft_username": "",
                    "-ft_password": "",
                    "-ft_mode": "1",
                    "-ft_dirname": "./",
                    "-ft_ssl": "0",
                },  # fmt: skip
                "alarmserver": {},
            }
        return {
            "areas": areas,
            "alarm": {
                "armed": "1",
                "linkpir": "0",
                "linkpirareas": "0",
                "linkio": "0",
                "linkperson": "0",
                "linkvehicle": "0",
                "linkanimal": "0",
            },  # fmt: skip
            "maaction": {"enable": "0", "interval": "60"},
            "ftp": {key: "" for key in _WQHD_FTP_KEYS},
            "ftpaction": {t: {"enable": "0", "interval": "60"} for t in ("rec", "snap", "timersnap")},
            "asaction": {"enable": "0", "interval": "1"},
            "as": {i: {} for i in (1, 2, 3)},
            "ptz": {"preset": None},
            # MQTT is off by default (1440p web UI docs); prefix and client ID as in INSTAR's examples
            "mqtt": {
                "mq_enable": "0",
                "mq_broker": "0",
                "mq_host": "127.0.0.1",
                "mq_port": "1883",
                "mq_portssl": "8883",
                "mq_ssl": "0",
                "mq_auth": "1",
                "mq_user": self.username,
                "mq_pass": self.password,
                "mq_insecure": "1",
                "mq_prefix": "cameras/",
                "mq_lwt": "status/testament",
                "mq_clientid": "115/",
                "mq_qos": "1",
            },  # fmt: skip
        }

    # ------------------------------------------------------------ request handling

    def handle(self, method: str, target: str, authorization: str | None) -> tuple[int, str, bytes]:
        """Answer one request: (status, content type, body)."""
        parts = urlsplit(target)
        raw = parse_qsl(parts.query, keep_blank_values=True)
        cred_keys = ("user", "pwd") if self.generation.api == "wqhd" else ("usr", "pwd", "-usr", "-pwd")
        query_creds = {k.lstrip("-"): v for k, v in raw if k in cred_keys}
        params = [(k, v) for k, v in raw if k not in cred_keys]
        ok = self._authorized(authorization, query_creds) and self.mode != "refuse"
        with self._lock:
            self.requests.append(ReceivedRequest(method, parts.path, params, ok))
        if self.mode == "stall":
            self._release.wait(self.stall_s)
        if not ok:
            return 401, "text/html", b"401 Unauthorized"
        if self.mode == "error":
            return 500, "text/html", b"500 Internal Server Error"
        path = parts.path
        if path in self._snapshot_paths(params):
            return 200, "image/jpeg", self.snapshot_jpeg
        if path not in self._cgi_paths():
            return 404, "text/html", b"404 Not Found"
        with self._lock:
            if self.generation.api == "hi3510":
                return self._hi3510(params)
            return self._wqhd(params)

    def _authorized(self, authorization: str | None, query: dict[str, str]) -> bool:
        if authorization and authorization.lower().startswith("basic "):
            try:
                user, _, pwd = base64.b64decode(authorization[6:]).decode().partition(":")
            except ValueError:
                return False
            return user == self.username and pwd == self.password
        user = query.get("user") or query.get("usr")
        return user == self.username and query.get("pwd") == self.password

    def _cgi_paths(self) -> tuple[str, ...]:
        # 720p answers under /cgi-bin/hi3510/, Full HD under both paths, WQHD at /param.cgi
        return {
            HD: ("/cgi-bin/hi3510/param.cgi",),
            FULL_HD: ("/param.cgi", "/cgi-bin/hi3510/param.cgi"),
            WQHD: ("/param.cgi",),
        }[self.generation.key]

    def _snapshot_paths(self, params: Params) -> tuple[str, ...]:
        if self.generation.api == "wqhd":
            return ("/snap.cgi",) if dict(params).get("chn") in ("11", "12", "13") else ()
        return ("/tmpfs/snap.jpg", "/tmpfs/auto.jpg", "/tmpfs/auto2.jpg")

    # ------------------------------------------------------------ 720p / Full HD (hi3510)

    def _hi3510(self, params: Params) -> tuple[int, str, bytes]:
        blocks = ReceivedRequest("GET", "", params, True).commands()
        lines: list[str] = []
        for block in blocks:
            cmd, args = block[0][1] if block[0][0] == "cmd" else "", block[1:]
            handler = None if cmd in self.unknown_commands else getattr(self, f"_hi_{cmd}", None)
            if handler is None:
                return 404, "text/html", b"404 Not Found"  # old-API cameras answer 404 to unknown commands
            lines += handler(args)
        return 200, "text/plain", ("\r\n".join(lines) + "\r\n").encode()

    def _hi_getmdattr(self, args: Params) -> list[str]:
        out = []
        for n, area in self.state["areas"].items():
            out += [f'var m{n}_{key}="{value}";' for key, value in area.items()]
        return out

    def _hi_setmdattr(self, args: Params) -> list[str]:
        a = dict(args)
        name = a.get("-name", "")
        if not name.isdigit() or int(name) not in self.state["areas"]:
            return [_PARAM_ERROR]
        if "-enable" in a and a["-enable"] not in ("0", "1"):
            return [_PARAM_ERROR]
        if "-s" in a and not (a["-s"].isdigit() and 0 <= int(a["-s"]) <= 100):
            return [_PARAM_ERROR]
        if set(a) - {"-name", "-enable", "-s", "-x", "-y", "-w", "-h"}:
            return [_PARAM_ERROR]
        area = self.state["areas"][int(name)]
        for key, value in a.items():
            if key != "-name":
                area[key.lstrip("-")] = value
        return [_OK]

    def _hi_getmdalarm(self, args: Params) -> list[str]:
        name = dict(args).get("-aname", "")
        if name not in self.state["mdalarm"]:
            return [_PARAM_ERROR]
        return [f'var md_{name}_switch="{self.state["mdalarm"][name]}";']

    def _hi_setmdalarm(self, args: Params) -> list[str]:
        a = dict(args)
        if a.get("-aname") not in self.state["mdalarm"] or a.get("-switch") not in ("on", "off"):
            return [_PARAM_ERROR]
        self.state["mdalarm"][a["-aname"]] = a["-switch"]
        return [_OK]

    def _hi_preset(self, args: Params) -> list[str]:
        a = dict(args)
        number = a.get("-number", "")
        if not self.ptz or a.get("-act") not in ("goto", "set") or not number.isdigit() or int(number) > 7:
            return [_PARAM_ERROR]
        if a["-act"] == "goto":
            self.state["preset"] = int(number)
        return [_OK]

    def _hi_setftpattr(self, args: Params) -> list[str]:
        allowed = _HI_FTP_KEYS + (("-ft_ssl",) if self.generation.key == FULL_HD else ())
        if not args or any(key not in allowed for key, _ in args):
            return [_PARAM_ERROR]
        self.state["ftp"].update(dict(args))
        return [_OK]

    def _hi_getftpattr(self, args: Params) -> list[str]:
        return [f'var {k.lstrip("-")}="{v}";' for k, v in self.state["ftp"].items() if k != "-ft_password"]

    def _hi_setalarmserverattr(self, args: Params) -> list[str]:
        a = dict(args)
        if a.get("-as_index") not in ("1", "2", "3") or any(not k.startswith("-as_") for k in a):
            return [_PARAM_ERROR]
        self.state["alarmserver"].update(a)
        return [_OK]

    def _hi_pushhostalarm(self, args: Params) -> list[str]:
        # manual trigger: the alarm server (if switched on) is called with active=99, older firmware style "?&"
        s = self.state["alarmserver"]
        if self.state["mdalarm"]["server2"] == "on" and s.get("-as_server"):
            self._call_alarm_server(
                "GET", s["-as_server"], s.get("-as_port", "80"), s.get("-as_path", "/"), False,
                (s.get("-as_username"), s.get("-as_password")) if s.get("-as_auth") == "1" else None, "&active=99",
            )  # fmt: skip
        return [_OK]

    def _hi_getalarmserverattr(self, args: Params) -> list[str]:
        s = self.state["alarmserver"]
        return [f'var {k.lstrip("-")}="{v}";' for k, v in s.items() if k != "-as_password"]

    # ------------------------------------------------------------ WQHD

    def _wqhd(self, params: Params) -> tuple[int, str, bytes]:
        blocks = ReceivedRequest("GET", "", params, True).commands()
        lines: list[str] = []
        for block in blocks:
            cmd, args = block[0][1] if block[0][0] == "cmd" else "", block[1:]
            lines.append(f'cmd="{cmd}";')
            handler = None if cmd in self.unknown_commands else getattr(self, f"_wq_{cmd}", None)
            if handler is None:
                lines.append('response="204";')
                continue
            body, code = handler(args)
            lines += body
            lines.append(f'response="{code}";')
        return 200, "text/plain", ("\r\n".join(lines) + "\r\n").encode()

    def _wq_getalarmattr(self, args: Params) -> tuple[list[str], int]:
        return [f'{k}="{v}";' for k, v in self.state["alarm"].items()], 200

    def _wq_setalarmattr(self, args: Params) -> tuple[list[str], int]:
        a = dict(args)
        if not a:
            return [], 208
        if any(k not in self.state["alarm"] for k in a):
            return [], 201
        if any(v not in ("0", "1") for k, v in a.items() if k != "linkpirareas"):
            return [], 202
        self.state["alarm"].update(a)
        return [], 200

    def _wq_getmdattr(self, args: Params) -> tuple[list[str], int]:
        only = dict(args).get("area")
        out = []
        for n, area in self.state["areas"].items():
            if only is None or only == str(n):
                out += [f'{key}[{n}]="{value}";' for key, value in area.items()]
        return out, 200

    def _wq_setmdattr(self, args: Params) -> tuple[list[str], int]:
        groups: list[Params] = []
        for key, value in args:
            if key == "area":
                groups.append([(key, value)])
            elif not groups:
                return [], 208  # parameters before the first area=
            else:
                groups[-1].append((key, value))
        if not groups:
            return [], 208
        updates = []
        for group in groups:
            a = dict(group)
            area = a.pop("area")
            if not area.isdigit() or int(area) not in self.state["areas"]:
                return [], 202
            if set(a) - {"enable", "s", "x", "y", "w", "h", "name", "rect", "polyX", "polyY"}:
                return [], 201
            if a.get("enable", "0") not in ("0", "1"):
                return [], 202
            if "s" in a and not (a["s"].isdigit() and 1 <= int(a["s"]) <= 100):
                return [], 202
            updates.append((int(area), a))
        for area, a in updates:
            self.state["areas"][area].update(a)
        return [], 200

    def _wq_getmaaction(self, args: Params) -> tuple[list[str], int]:
        return [f'{k}="{v}";' for k, v in self.state["maaction"].items()], 200

    def _wq_setmaaction(self, args: Params) -> tuple[list[str], int]:
        return self._wq_update(self.state["maaction"], args)

    def _wq_setftpattr(self, args: Params) -> tuple[list[str], int]:
        if not args:
            return [], 208
        if any(k not in _WQHD_FTP_KEYS for k, _ in args):
            return [], 201
        self.state["ftp"].update(dict(args))
        return [], 200

    def _wq_getftpattr(self, args: Params) -> tuple[list[str], int]:
        return [f'{k}="{v}";' for k, v in self.state["ftp"].items() if k != "ft_password"], 200

    def _wq_setftpaction(self, args: Params) -> tuple[list[str], int]:
        a = dict(args)
        kind = a.pop("type", None)
        if kind is None:
            return [], 208
        if kind not in self.state["ftpaction"]:
            return [], 202
        return self._wq_update(self.state["ftpaction"][kind], list(a.items()))

    def _wq_setasaction(self, args: Params) -> tuple[list[str], int]:
        # the openHAB string mixes dashed and plain names; the camera takes both
        return self._wq_update(self.state["asaction"], [(k.lstrip("-"), v) for k, v in args if k != "-server"])

    def _wq_setasattr(self, args: Params) -> tuple[list[str], int]:
        a = {k.lstrip("-"): v for k, v in args}
        index = a.pop("as_index", None)
        if index not in ("1", "2", "3"):
            return [], 208 if index is None else 202
        if any(not k.startswith("as_") for k in a):
            return [], 201
        self.state["as"][int(index)].update(a)
        return [], 200

    def _wq_testas(self, args: Params) -> tuple[list[str], int]:
        # 1440p CGI list: makes the camera call alarm server <index> now; result 0, or -1 if it cannot connect
        a = dict(args)
        index, active = a.get("index", "1"), a.get("active", "")
        if index not in ("1", "2", "3") or not active.isdigit():
            return [], 202
        s = self.state["as"][int(index)]
        query = f"active={active}" + (f"&object={a['object']}" if a.get("object", "").isdigit() else "")
        ok = bool(s.get("as_server")) and self._call_alarm_server(
            "POST" if s.get("as_mode") == "1" else "GET", s["as_server"], s.get("as_port", "80"),
            s.get("as_path", "/"), s.get("as_ssl") == "1",
            (s.get("as_username"), s.get("as_password")) if s.get("as_auth") == "1" else None, query,
        )  # fmt: skip
        return ['result="0";' if ok else 'result="-1";'], 200

    def _call_alarm_server(
        self, method: str, host: str, port: str, path: str, tls: bool, login: tuple[Any, Any] | None, query: str
    ) -> bool:
        """Call the configured alarm server like the camera does (GET query, or POST with a form body)."""
        import httpx

        url = f"{'https' if tls else 'http'}://{host}:{port}{path}"
        auth = httpx.BasicAuth(login[0] or "", login[1] or "") if login else None
        try:
            if method == "POST":
                response = httpx.post(url, content=query.lstrip("&"), auth=auth, timeout=5, verify=False,
                                      headers={"Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
            else:
                response = httpx.get(f"{url}?{query}", auth=auth, timeout=5, verify=False)
        except httpx.HTTPError:
            self.alarm_calls.append((method, url, None))
            return False
        self.alarm_calls.append((method, url, response.status_code))
        return True

    def _wq_getasattr(self, args: Params) -> tuple[list[str], int]:
        index = int(dict(args).get("as_index", "1"))
        return [f'{k}="{v}";' for k, v in self.state["as"][index].items() if k != "as_password"], 200

    def _wq_getmqttattr(self, args: Params) -> tuple[list[str], int]:
        return [f'{k}="{v}";' for k, v in self.state["mqtt"].items() if k != "mq_pass"], 200

    def _wq_setmqttattr(self, args: Params) -> tuple[list[str], int]:
        if any(k == "mq_port" for k, _ in args):
            return [], 212  # the fake's broker port is fixed (an ephemeral loopback port)
        return self._wq_update(self.state["mqtt"], args)

    # ------------------------------------------------------------ WQHD MQTT (built-in broker)

    def _mqtt_login(self, username: str | None, password: str | None) -> bool:
        if self.mode == "refuse":
            return False
        if self.state["mqtt"]["mq_auth"] == "0":
            return True
        return username == self.state["mqtt"]["mq_user"] and password == self.state["mqtt"]["mq_pass"]

    def _on_mqtt(self, message: MqttMessage) -> None:
        """Act on ``<prefix><client id><path>`` (payload ``{"val":"x"}``) or ``<path>/raw`` (payload ``x``)."""
        mq = self.state["mqtt"]
        base = mq["mq_prefix"] + mq["mq_clientid"]
        if not message.topic.startswith(base):
            return  # another camera's topic
        path = message.topic[len(base) :]
        try:
            if path.endswith("/raw"):
                path, value = path[: -len("/raw")], message.payload.decode()
            else:
                value = str(json.loads(message.payload)["val"])
        except (ValueError, KeyError, TypeError):
            return  # the camera ignores payloads it cannot read
        with self._lock:
            if path == "features/ptz/preset/goto" and self.ptz and value in {str(n) for n in range(1, 9)}:
                self.state["ptz"]["preset"] = int(value)
            elif path == "alarm/actions/email/enable" and value in ("0", "1"):
                self.state["maaction"]["enable"] = value
            elif path == "alarm/actions/enable" and value in ("0", "1"):
                self.state["alarm"]["armed"] = value

    @staticmethod
    def _wq_update(target: dict[str, str], args: Params) -> tuple[list[str], int]:
        if not args:
            return [], 208
        if any(k not in target for k, _ in args):
            return [], 201
        if any(k == "enable" and v not in ("0", "1") for k, v in args):
            return [], 202
        target.update(dict(args))
        return [], 200


class _Handler(BaseHTTPRequestHandler):
    fake: FakeInstarCamera

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        self._answer()

    def do_POST(self) -> None:  # noqa: N802 - http.server naming
        length = int(self.headers.get("content-length") or 0)
        if length:
            self.rfile.read(length)
        self._answer()

    def _answer(self) -> None:
        status, ctype, body = self.fake.handle(self.command, self.path, self.headers.get("authorization"))
        try:
            self.send_response(status)
            if status == 401:
                self.send_header("WWW-Authenticate", 'Basic realm="index.html"')
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (stall mode)

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""
