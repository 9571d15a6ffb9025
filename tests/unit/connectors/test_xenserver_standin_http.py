"""The XAPI stand-in's HTTP handlers, driven as a XenServer client drives xapi's: PUT /import_raw_vdi and
GET /export_raw_vdi with a session and a task of the caller's; VHDs made by qemu-img."""

import base64
import hashlib
import http.client
import importlib.util
import struct
import subprocess
import time
import xmlrpc.client
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import pytest
import XenAPI

CONTROL = Path(__file__).resolve().parents[2] / "standins" / "xapi" / "control.py"
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def server():
    spec = importlib.util.spec_from_file_location("sirocco_xapi_standin_control", CONTROL)
    control = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(control)
    standin = control.start(password="s3cret")
    yield standin
    standin.stop()


@pytest.fixture
def session(server):
    session = XenAPI.Session(server.url)
    session.xenapi.login_with_password("root", "s3cret", "2.21", "unit-test")
    yield session
    session.xenapi.session.logout()


@pytest.fixture(scope="module")
def disks(tmp_path_factory):
    """A 6 MiB raw disk with data in three places (two blocks of a VHD and a partial third), its dynamic and
    fixed VHDs by qemu-img, and a dynamic VHD of a 12 MiB disk."""
    root = tmp_path_factory.mktemp("disks")
    raw = root / "disk.raw"
    with open(raw, "wb") as handle:
        handle.truncate(6 * MIB)
        for offset in (0, 2 * MIB + 4096, 5 * MIB + 512):
            handle.seek(offset)
            handle.write(hashlib.sha256(str(offset).encode()).digest() * 64)
    out = {"raw": raw}
    for name, source, options in (("dynamic", raw, ["subformat=dynamic,force_size=on"]),
                                  ("fixed", raw, ["subformat=fixed,force_size=on"])):
        out[name] = root / (name + ".vhd")
        subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "vpc", "-o", options[0], str(source),
                        str(out[name])], check=True, capture_output=True)
    big = root / "big.raw"
    with open(big, "wb") as handle:
        handle.truncate(12 * MIB)
        handle.seek(11 * MIB)
        handle.write(b"x" * 4096)
    out["big"] = root / "big.vhd"
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "vpc", "-o", "subformat=dynamic,force_size=on",
                    str(big), str(out["big"])], check=True, capture_output=True)
    return out


def new_vdi(api, size=6 * MIB, name="unit-import"):
    sr = api.pool.get_default_SR(api.pool.get_all()[0])
    return api.VDI.create({"name_label": name, "name_description": "", "SR": sr, "virtual_size": str(size),
                           "type": "user", "sharable": False, "read_only": False, "other_config": {}})


def request(server, method, path, params, body=b"", headers=None):
    """(status, headers, body) of one HTTP request to the stand-in."""
    netloc = urlsplit(server.url).netloc
    conn = http.client.HTTPConnection(netloc, timeout=30)
    try:
        conn.putrequest(method, "%s?%s" % (path, urlencode(params)), skip_accept_encoding=True)
        sent = dict(headers or {})
        if "Transfer-Encoding" not in sent:
            sent["Content-Length"] = str(len(body))
        for key, value in sent.items():
            conn.putheader(key, value)
        conn.endheaders()
        try:
            if body and "Transfer-Encoding" in sent:
                conn.send(b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
            elif body:
                conn.send(body)
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        except OSError:
            # xapi answers 200 before it reads the body, and closes the connection when the import fails: the
            # client may see its upload cut short (a reset) rather than the answer. Only the task tells then.
            return None, {}, b""
    finally:
        conn.close()


def finished(api, task, timeout=10):
    deadline = time.monotonic() + timeout
    while api.task.get_status(task) == "pending":
        assert time.monotonic() < deadline, "task still pending"
        time.sleep(0.05)
    return api.task.get_record(task)


def upload(server, session, vdi, data, fmt=None, **extra):
    """PUT data into a VDI with a task of ours, as XenServer clients do; (HTTP status, task record). The status
    is None when the server closed the connection during the upload (see request())."""
    api = session.xenapi
    task = api.task.create("unit import", "")
    params = {"session_id": session._session, "task_id": task, **extra}
    if vdi is not None:
        params["vdi"] = vdi
    if fmt:
        params["format"] = fmt
    status, headers, _body = request(server, "PUT", "/import_raw_vdi", params, data)
    if status == 200:
        assert headers["task-id"] == task
    return status, finished(api, task)


def export(server, session, vdi):
    """The VDI's bytes: 200, no Content-Length (xapi's export ends with the connection), a file name."""
    status, headers, body = request(server, "GET", "/export_raw_vdi",
                                    {"session_id": session._session, "vdi": vdi, "format": "raw"})
    assert status == 200 and "Content-Length" not in headers
    assert headers["Content-Disposition"].startswith('attachment; filename="')
    return body


IO_ERROR = ["VDI_IO_ERROR", "Device I/O errors"]  # what xapi's vhd_tool_wrapper reports for any vhd-tool failure


def test_raw_upload_is_kept_and_exported(server, session, disks):
    api = session.xenapi
    vdi = new_vdi(api)
    raw = disks["raw"].read_bytes()
    status, task = upload(server, session, vdi, raw, "raw")
    assert status == 200 and task["status"] == "success" and task["progress"] == 1.0
    assert xmlrpc.client.loads("<methodResponse><params><param>%s</param></params></methodResponse>"
                               % task["result"])[0][0] == vdi  # the task's result: the VDI
    assert export(server, session, api.VDI.get_uuid(vdi)) == raw  # a VDI named by uuid too


def test_dynamic_vhd_upload_stores_the_disk_bytes(server, session, disks):
    api = session.xenapi
    vdi = new_vdi(api)
    status, task = upload(server, session, vdi, disks["dynamic"].read_bytes(), "vhd")
    assert status == 200 and task["status"] == "success", task["error_info"]
    assert export(server, session, vdi) == disks["raw"].read_bytes()


def test_fixed_vhd_stream_fails_as_in_xapi(server, session, disks):
    """xapi's vhd-tool reads a VHD stream from its leading footer copy, which a fixed VHD lacks: VDI_IO_ERROR
    after the 200 (vhd-tool's own words, which xapi logs, are in the stand-in's task backtrace)."""
    api = session.xenapi
    vdi = new_vdi(api)
    status, task = upload(server, session, vdi, disks["fixed"].read_bytes(), "vhd")
    assert status in (200, None) and task["status"] == "failure"
    assert task["error_info"] == IO_ERROR and "footer cookie" in task["backtrace"]
    # its data part is the raw disk: that uploads as format=raw
    status, task = upload(server, session, vdi, disks["fixed"].read_bytes()[:-512], "raw")
    assert task["status"] == "success" and export(server, session, vdi) == disks["raw"].read_bytes()


def test_a_disk_larger_than_the_vdi_fails_on_its_first_write_past_the_end(server, session, disks):
    """xapi checks no size first (its own FIXME): vhd-tool writes until a write past the VDI's end fails."""
    api = session.xenapi
    vdi = new_vdi(api)
    status, task = upload(server, session, vdi, disks["big"].read_bytes(), "vhd")
    assert status in (200, None) and task["status"] == "failure"
    assert task["error_info"] == IO_ERROR and "past the end" in task["backtrace"]
    assert export(server, session, vdi) == bytes(6 * MIB)  # its only data lies at 11 MiB
    status, task = upload(server, session, vdi, b"\1" * (6 * MIB + 1), "raw")
    assert task["status"] == "failure" and task["error_info"] == IO_ERROR
    assert export(server, session, vdi) == b"\1" * (6 * MIB)  # what came before the failing write is written


def test_xapi_chunked_protocol(server, session):
    api = session.xenapi
    vdi = new_vdi(api, size=4 * MIB)
    stream = (struct.pack("<QI", 3 * MIB, 5) + b"hello" + struct.pack("<QI", 10, 3) + b"abc"
              + struct.pack("<QI", 0, 0))
    status, task = upload(server, session, vdi, stream, "raw", chunked="true")
    assert status == 200 and task["status"] == "success"
    data = export(server, session, vdi)
    assert data[10:13] == b"abc" and data[3 * MIB:3 * MIB + 5] == b"hello" and data.count(0) == 4 * MIB - 8
    status, task = upload(server, session, vdi, stream, "vhd", chunked="true")
    assert status == 404 and task["error_info"] == ["INTERNAL_ERROR", "Cannot handle chunked VHD"]


def test_refusals_before_the_transfer(server, session, disks):
    api = session.xenapi
    vdi = new_vdi(api)
    status, _h, _b = request(server, "PUT", "/import_raw_vdi", {"session_id": "OpaqueRef:nope", "vdi": vdi}, b"x")
    assert status == 401
    status, task = upload(server, session, vdi, b"x", "qcow3")
    assert status == 404 and task["error_info"] == ["INTERNAL_ERROR", "Unknown format qcow3"]
    status, task = upload(server, session, vdi, b"x" * 512, "RAW")  # formats are case-insensitive
    assert status == 200 and task["status"] == "success"
    task = api.task.create("unit import", "")
    status, _h, _b = request(server, "PUT", "/import_raw_vdi",
                             {"session_id": session._session, "vdi": vdi, "task_id": task}, b"abc",
                             {"Transfer-Encoding": "chunked"})
    assert status == 404 and finished(api, task)["error_info"][1] == "Cannot handle encoding: chunked"
    # an unknown VDI raises outside xapi's handlers: 500, and the caller's task is left pending
    task = api.task.create("unit import", "")
    status, _h, _b = request(server, "PUT", "/import_raw_vdi",
                             {"session_id": session._session, "vdi": "no-such-vdi", "task_id": task}, b"x")
    assert status == 500 and api.task.get_status(task) == "pending"
    api.task.destroy(task)


def test_no_vdi_a_raw_body_into_an_sr(server, session):
    api = session.xenapi
    sr = api.pool.get_default_SR(api.pool.get_all()[0])
    status, task = upload(server, session, None, b"\5" * 4096, "raw")  # neither vdi nor SR
    assert status == 400 and task["error_info"] == ["VDI_MISSING"]
    status, task = upload(server, session, None, b"\5" * 4096, "vhd", sr_id=sr)
    assert status == 400 and task["error_info"][1] == "Importing a VHD directly into an SR not yet supported"
    status, task = upload(server, session, None, b"\5" * 4096, "raw", sr_uuid="no-such-sr")
    assert status == 400 and task["error_info"] == ["UUID_INVALID", "SR", "no-such-sr"]
    status, task = upload(server, session, None, b"\5" * 4096, "raw", sr_uuid=api.SR.get_uuid(sr))
    assert status == 200 and task["status"] == "success"
    made = xmlrpc.client.loads("<methodResponse><params><param>%s</param></params></methodResponse>"
                               % task["result"])[0][0]
    record = api.VDI.get_record(made)
    assert (record["name_label"], record["virtual_size"], record["type"]) == ("Imported VDI", "4096", "user")
    assert export(server, session, made) == b"\5" * 4096
    api.VDI.destroy(made)


def test_session_from_a_cookie_and_export_refusals(server, session):
    api = session.xenapi
    vdi = new_vdi(api, size=MIB)
    status, _h, body = request(server, "GET", "/export_raw_vdi", {"vdi": vdi},
                               headers={"Cookie": "session_id=%s" % session._session})
    assert status == 200 and body == bytes(MIB)
    status, _h, _b = request(server, "GET", "/export_raw_vdi", {"session_id": session._session})
    assert status == 500  # "Missing vdi query parameter"
    task = api.task.create("unit export", "")
    status, _h, _b = request(server, "GET", "/export_raw_vdi",
                             {"session_id": session._session, "vdi": vdi, "format": "qcow3", "task_id": task})
    assert status == 404 and finished(api, task)["error_info"] == ["INTERNAL_ERROR", "Unknown format qcow3"]


def test_basic_credentials_and_a_vdi_in_use(server, session):
    api = session.xenapi
    vdi = new_vdi(api, size=MIB)
    auth = {"Authorization": "Basic " + base64.b64encode(b"root:s3cret").decode()}
    status, headers, _body = request(server, "PUT", "/import_raw_vdi", {"vdi": vdi}, b"\7" * 512, auth)
    assert status == 200 and finished(api, headers["task-id"])["status"] == "success"
    template = api.VM.get_by_name_label("tiny-linux")[0]
    vm = api.VM.clone(template, "unit-vdi-user")
    api.VM.provision(vm)
    api.VBD.create({"VM": vm, "VDI": vdi, "userdevice": "3", "bootable": False, "mode": "RW", "type": "Disk",
                    "empty": False, "other_config": {}, "qos_algorithm_type": "", "qos_algorithm_params": {}})
    api.VM.start(vm, False, False)
    try:
        status, task = upload(server, session, vdi, b"\1" * 512, "raw")
        assert status in (200, None) and task["error_info"] == ["VDI_IN_USE", vdi, "import"]
    finally:
        api.VM.hard_shutdown(vm)
    assert export(server, session, vdi)[:512] == b"\7" * 512


def test_clones_carry_the_bytes_and_destroy_drops_them(server, session, disks):
    api = session.xenapi
    raw = disks["raw"].read_bytes()
    vdi = new_vdi(api)
    upload(server, session, vdi, raw, "raw")
    vm = api.VM.create({"name_label": "unit-holder", "memory_static_max": str(64 * MIB),
                        "memory_dynamic_max": str(64 * MIB), "memory_dynamic_min": str(64 * MIB),
                        "memory_static_min": str(64 * MIB), "VCPUs_max": "1", "VCPUs_at_startup": "1",
                        "is_a_template": True})
    api.VBD.create({"VM": vm, "VDI": vdi, "userdevice": "0", "bootable": True, "mode": "RW", "type": "Disk",
                    "empty": False, "other_config": {}, "qos_algorithm_type": "", "qos_algorithm_params": {}})
    copy = api.VM.clone(vm, "unit-copy")
    copied = api.VBD.get_VDI(api.VM.get_VBDs(copy)[0])
    assert copied != vdi and export(server, session, copied) == raw
    api.VM.destroy(copy)
    api.VDI.destroy(copied)
    status, _h, _b = request(server, "GET", "/export_raw_vdi", {"session_id": session._session, "vdi": copied})
    assert status == 500
