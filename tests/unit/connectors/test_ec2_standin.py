"""The moto stand-in's corrections make moto's EC2 speak as real EC2 does (tests/standins/moto/server.py)."""

import importlib.util
from pathlib import Path

SERVER = Path(__file__).resolve().parents[2] / "standins" / "moto" / "server.py"
_spec = importlib.util.spec_from_file_location("sirocco_moto_server", SERVER)
server = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(server)

HEAD = b'<?xml version="1.0" encoding="utf-8"?>\n'


def test_zero_based_query_lists_are_renumbered():
    pairs = [("Action", "CreateTags"), ("ResourceId.0", "vol-1"), ("Tag.0.Key", "Name"), ("Tag.0.Value", "x"),
             ("Tag.1.Key", "team"), ("Filter.1.Value.1", "a")]
    assert server.ec2_query(pairs) == [
        ("Action", "CreateTags"), ("ResourceId.1", "vol-1"), ("Tag.1.Key", "Name"), ("Tag.1.Value", "x"),
        ("Tag.2.Key", "team"), ("Filter.1.Value.1", "a")]
    one_based = [("Action", "X"), ("InstanceId.1", "i-1"), ("InstanceId.2", "i-2")]
    assert server.ec2_query(one_based) == one_based


def test_replies_get_real_ec2_namespace_and_return():
    reply = HEAD + b'<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15"><reservationSet/>' \
        b'<requestId>r</requestId></DescribeInstancesResponse>'
    assert b'xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"' in server.ec2_xml(reply)
    bare = HEAD + b'<RebootInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15"><requestId>r' \
        b'</requestId></RebootInstancesResponse>'
    assert server.ec2_xml(bare).endswith(b"<requestId>r</requestId><return>true</return></RebootInstancesResponse>")


def test_errors_have_no_namespace_and_other_services_are_left_alone():
    error = HEAD + b'<Response xmlns="http://ec2.amazonaws.com/doc/2016-11-15"><Errors><Error><Code>X</Code>' \
        b'</Error></Errors><RequestID>r</RequestID></Response>'
    assert server.ec2_xml(error) == HEAD + b'<Response><Errors><Error><Code>X</Code></Error></Errors>' \
        b'<RequestID>r</RequestID></Response>'
    cloudwatch = HEAD + b'<GetMetricDataResponse xmlns="http://monitoring.amazonaws.com/doc/2010-08-01/">' \
        b'</GetMetricDataResponse>'
    assert server.ec2_xml(cloudwatch) is cloudwatch
