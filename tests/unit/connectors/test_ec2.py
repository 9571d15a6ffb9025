"""Pure helpers of the ec2 connector: state table, client tokens, type choice, error mapping, markers, options."""

import socket
from datetime import UTC, datetime

import botocore.exceptions
import pytest

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi import states
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import (
    AuthError,
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    OperationTimeout,
    ProviderUnavailable,
)
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.model import MachineConfiguration
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors import ec2


def test_instance_states_one_table():
    assert ec2.INSTANCE_STATES == {
        "pending": states.CREATING, "running": states.STARTED, "stopping": states.STOPPING,
        "stopped": states.STOPPED, "shutting-down": states.DELETING, "terminated": None}
    assert ec2.cimi_state("terminated") is None  # gone: NotFound, left out of lists
    assert ec2.cimi_state("no-such-state") == states.ERROR  # never guessed
    assert {s for s in ec2.INSTANCE_STATES.values() if s} <= set(states.MACHINE_STATES)


def test_client_token_is_derived_from_the_request():
    request = {"ImageId": "ami-1", "InstanceType": "t2.micro", "region": "us-east-1", "tags": {"a": "b"}}
    token = ec2.client_token(request)
    assert token == ec2.client_token(dict(reversed(list(request.items()))))  # key order does not matter
    assert len(token) <= 64 and token.isascii()  # EC2's limit
    assert token != ec2.client_token(dict(request, InstanceType="t3.micro"))
    assert token != ec2.client_token(request, generation=1)  # the same request made again after a delete
    assert ec2.client_token(request, 1) == ec2.client_token(request, 1)


def _cfg(name, cpu, mib, arch="x86_64"):
    return MachineConfiguration(id=name, name=name, cpu=cpu, memory=mib * 1024, cpuArch=arch)


CONFIGS = [_cfg("t4g.micro", 2, 1024, "aarch64"), _cfg("t3.micro", 2, 1024), _cfg("t2.micro", 1, 1024),
           _cfg("t3.small", 2, 2048), _cfg("m5.large", 2, 8192), _cfg("t2.nano", 1, 512)]


def test_pick_type_exact_then_smallest_fit():
    assert ec2.pick_type(CONFIGS, 1, 1024 * 1024).id == "t2.micro"
    assert ec2.pick_type(CONFIGS, 2, 1024 * 1024).id == "t3.micro"  # x86_64 preferred when not asked
    assert ec2.pick_type(CONFIGS, 2, 1024 * 1024, "aarch64").id == "t4g.micro"
    assert ec2.pick_type(CONFIGS, 1, 1500 * 1024).id == "t3.small"  # nothing exact: the smallest that fits
    assert ec2.pick_type(CONFIGS, 4, 1024) is None


def test_type_config_from_describe_instance_types():
    item = {"InstanceType": "t4g.nano", "VCpuInfo": {"DefaultVCpus": 2}, "MemoryInfo": {"SizeInMiB": 512},
            "ProcessorInfo": {"SupportedArchitectures": ["arm64"], "SustainedClockSpeedInGhz": 2.5}}
    config = ec2.type_config(item)
    assert (config.id, config.cpu, config.memory, config.cpuArch, config.cpuSpeed) == \
        ("t4g.nano", 2, 512 * 1024, "aarch64", 2500)


def _client_error(code, message="boom"):
    return botocore.exceptions.ClientError({"Error": {"Code": code, "Message": message}}, "Op")


@pytest.mark.parametrize("code, cls", [
    ("InvalidInstanceID.NotFound", NotFound), ("InvalidInstanceID.Malformed", NotFound),
    ("InvalidAMIID.Unavailable", NotFound), ("InvalidSomething.NotFound", NotFound),
    ("IncorrectInstanceState", Conflict), ("VolumeInUse", Conflict), ("DependencyViolation", Conflict),
    ("AuthFailure", AuthError), ("UnauthorizedOperation", Forbidden),
    ("InvalidParameterValue", InvalidInput), ("RequestLimitExceeded", ProviderUnavailable),
    ("SomethingNew", ProviderUnavailable),
])
def test_error_codes_map_in_one_place(code, cls):
    err = ec2.translate(_client_error(code, "the message"), "machine.start", "machine 'web'")
    assert type(err) is cls  # pylint: disable=unidiomatic-typecheck  # the exact class, not a subclass
    assert "machine 'web'" in str(err) and "machine.start" in str(err) and "the message" in str(err)
    assert err.details["ec2_error"] == code


def test_transport_and_credential_errors():
    unreachable = botocore.exceptions.EndpointConnectionError(endpoint_url="http://127.0.0.1:9")
    assert isinstance(ec2.translate(unreachable, "machine.list", "EC2"), ProviderUnavailable)
    assert isinstance(ec2.translate(botocore.exceptions.NoCredentialsError(), "machine.list", "EC2"), AuthError)
    waited = botocore.exceptions.WaiterError(name="InstanceRunning", reason="Max attempts exceeded",
                                             last_response={})
    assert isinstance(ec2.translate(waited, "machine.create", "EC2"), OperationTimeout)


def test_markers_round_trip_and_refuse_garbage():
    assert ec2.decode_marker(ec2.encode_marker(2, "tok/+=", "i-0123456789abcdef0")) == \
        (2, "tok/+=", "i-0123456789abcdef0")
    for bad in ("not-a-marker", "W10=", ec2.encode_marker(-1, None, None)):
        with pytest.raises(InvalidInput):
            ec2.decode_marker(bad)


def test_device_names():
    assert ec2.device_name(None, {"/dev/sda1"}) == "/dev/sdf"
    assert ec2.device_name(None, {"/dev/sdf", "/dev/xvdg"}) == "/dev/sdh"
    assert ec2.device_name("xvdk", set()) == "/dev/xvdk"
    with pytest.raises(Conflict):
        ec2.device_name("/dev/sdf", {"/dev/sdf"})
    with pytest.raises(InvalidInput):
        ec2.device_name("C:", set())


def test_free_cidr():
    assert ec2.free_cidr(["172.31.0.0/16"], ["172.31.0.0/20", "172.31.16.0/20"]) == "172.31.32.0/24"
    assert ec2.free_cidr(["10.0.0.0/28"], []) == "10.0.0.0/28"
    assert ec2.free_cidr(["10.0.0.0/24"], ["10.0.0.0/24"]) is None


def test_properties_and_tags():
    tags = {"Name": "web", "sirocco:description": "d", "aws:cloudformation:stack": "s", "team": "a"}
    assert ec2.properties_of(tags) == {"team": "a"}
    ec2.check_properties({"team": "a"})
    for bad in ({"Name": "x"}, {"sirocco:x": "y"}, {"aws:x": "y"}, {"n": 1}):
        with pytest.raises(InvalidInput):
            ec2.check_properties(bad)
    assert ec2.tag_list("web", "d", {"team": "a"}) == [
        {"Key": "Name", "Value": "web"}, {"Key": "sirocco:description", "Value": "d"},
        {"Key": "team", "Value": "a"}]


def test_options_are_checked_and_regions_qualify_ids():
    with pytest.raises(InvalidInput):
        ec2.EC2Connector(options={"no_such_option": 1})
    with pytest.raises(InvalidInput):
        ec2.EC2Connector(options={"max_attempts": 0})
    with pytest.raises(InvalidInput, match="list_disks"):
        ec2.EC2Connector(options={"list_disks": "yes"})
    assert ec2.EC2Connector(options={"list_disks": True}).list_disks and not ec2.EC2Connector().list_disks
    with pytest.raises(InvalidInput):
        ec2.EC2Connector(options={"regions": "eu-west-1,us-east-1".split(",") + [3]})
    one = ec2.EC2Connector(region="eu-west-1")
    assert one.regions == ["eu-west-1"] and one.qualify("eu-west-1", "i-0123456789abcdef0") == "i-0123456789abcdef0"
    many = ec2.EC2Connector(region="eu-west-1", options={"regions": ["us-east-1", "eu-west-1"]})
    assert many.regions == ["eu-west-1", "us-east-1"]
    assert many.qualify("us-east-1", "i-0123456789abcdef0") == "us-east-1:i-0123456789abcdef0"
    assert many.split("us-east-1:i-0123456789abcdef0", "machine") == ("us-east-1", "i-0123456789abcdef0")
    assert many.split("i-0123456789abcdef0", "machine") == ("eu-west-1", "i-0123456789abcdef0")
    for ref in ("ap-south-1:i-0123456789abcdef0", "no-such-machine", "vol-0123456789abcdef0"):
        with pytest.raises(NotFound):
            many.split(ref, "machine")
    assert "secret" not in repr(ec2.EC2Connector(username="AKID", password="secret"))


def test_unreachable_endpoint_is_provider_unavailable():
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    conn = ec2.EC2Connector(uri="http://127.0.0.1:%d" % port, username="AKID", password="secret", timeout=2,
                            options={"max_attempts": 1})
    with pytest.raises(ProviderUnavailable) as info:
        conn.list_machines()
    assert "secret" not in str(info.value)


def test_timestamps_iso_quickly_the_others_as_botocore_reads_them():
    utc = datetime(2026, 11, 24, 2, 57, tzinfo=UTC)
    assert ec2.parse_timestamp("2026-11-24T02:57:00.000Z") == utc
    assert ec2.parse_timestamp("2026-11-24T03:57:00+01:00") == utc
    assert ec2.parse_timestamp("Tue, 24 Nov 2026 02:57:00 GMT") == utc  # RFC 822: botocore's parser
    assert ec2.parse_timestamp(utc.timestamp()) == utc  # epoch seconds, likewise
    assert ec2.iso(ec2.parse_timestamp("2026-11-24T02:57:00Z")) == "2026-11-24T02:57:00Z"
