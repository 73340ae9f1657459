"""Reading Lambda's CloudWatch logs: every export format, odd lines, and clean errors."""

from __future__ import annotations

import gzip
import json
import math
import re

import pytest
from coldsim import ScenarioError
from coldsim.cloudwatch.parse import COLUMNS, read_logs

STREAM_A = "2024/05/01/[$LATEST]0123456789abcdef0123456789abcdef"
STREAM_B = "2024/05/01/[$LATEST]fedcba9876543210fedcba9876543210"
RID1 = "3f1c9d0e-5b6a-4c1e-9a57-1c2b3d4e5f60"
RID2 = "8a2e4c6d-1f3b-4a5c-8e7d-9b0a1c2d3e4f"
RID3 = "c0ffee00-1234-4abc-9def-0123456789ab"
T0 = 1714564800.0  # 2024-05-01T12:00:00Z

COLD = f"REPORT RequestId: {RID1}\tDuration: 102.25 ms\tBilled Duration: 103 ms\tMemory Size: 128 MB\tMax Memory Used: 70 MB\tInit Duration: 150.51 ms\t"
WARM = f"REPORT RequestId: {RID2}\tDuration: 3.10 ms\tBilled Duration: 4 ms\tMemory Size: 128 MB\tMax Memory Used: 71 MB\t"
XRAY = "XRAY TraceId: 1-66322f40-0a1b2c3d4e5f60718293a4b5\tSegmentId: 5e6f7a8b9c0d1e2f\tSampled: true\t"


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def row(parsed, request_id):
    rows = parsed.invocations[parsed.invocations.request_id == request_id]
    assert len(rows) == 1, rows
    return rows.iloc[0]


def nan(x):
    return isinstance(x, float) and math.isnan(x)


# --- text ----------------------------------------------------------------------------------


def test_tail_detailed_cold_and_warm_with_xray_suffix(tmp_path):
    log = write(
        tmp_path / "checkout.log",
        f"2024-05-01T12:00:00.000000+00:00 {STREAM_A} INIT_START Runtime Version: python:3.12.v20\tRuntime Version ARN: arn:aws:lambda:eu-west-1::runtime:0abc\n"
        f"2024-05-01T12:00:00.151000+00:00 {STREAM_A} START RequestId: {RID1} Version: $LATEST\n"
        f"2024-05-01T12:00:00.250000+00:00 {STREAM_A} 2024-05-01T12:00:00.250Z\t{RID1}\tINFO\torder 17 paid\n"
        f"2024-05-01T12:00:00.253000+00:00 {STREAM_A} END RequestId: {RID1}\n"
        f"2024-05-01T12:00:00.253000+00:00 {STREAM_A} {COLD}\n{XRAY}\n"
        f"2024-05-01T12:00:05.000000+00:00 {STREAM_A} START RequestId: {RID2} Version: $LATEST\n"
        f"2024-05-01T12:00:05.004000+00:00 {STREAM_A} {WARM}\n",
    )
    parsed = read_logs([log])
    inv = parsed.invocations
    assert list(inv.columns) == COLUMNS
    assert parsed.files == {str(log): "text"} and parsed.malformed == 0 and parsed.examples == []
    assert inv.request_id.tolist() == [RID1, RID2]  # sorted by end_s
    cold, warm = row(parsed, RID1), row(parsed, RID2)
    assert cold.function == "checkout" and cold.stream == STREAM_A  # the file's stem
    assert cold.end_s == pytest.approx(T0 + 0.253)
    assert (cold.duration_ms, cold.billed_ms, cold.memory_mb, cold.max_memory_mb) == (102.25, 103, 128, 70)
    assert cold.init_ms == 150.51 and nan(cold.restore_ms)
    assert cold.status == "success" and cold.init_type == ""  # INIT_START does not say which
    assert nan(warm.init_ms) and warm.max_memory_mb == 71


def test_tail_short_and_console_download_with_tabs_and_missing_max_memory(tmp_path):
    short = write(
        tmp_path / "short.txt",
        f"2024-05-01T12:00:00 START RequestId: {RID1} Version: $LATEST\n"
        f"2024-05-01T12:00:00 {COLD}\n",
    )
    console = write(
        tmp_path / "console.txt",
        f"2024-05-01T12:00:07.500Z\tREPORT RequestId: {RID2}  Duration: 3.10 ms  Billed Duration: 4 ms  Memory Size: 256 MB\n",
    )
    parsed = read_logs([short, console], function="checkout")
    a, b = row(parsed, RID1), row(parsed, RID2)
    assert a.function == b.function == "checkout" and a.stream == b.stream == ""
    assert a.end_s == T0  # short format: whole seconds, UTC
    assert b.end_s == pytest.approx(T0 + 7.5) and b.memory_mb == 256 and nan(b.max_memory_mb)


def test_snapstart_restore_status_fields_and_task_timed_out_line(tmp_path):
    log = write(
        tmp_path / "orders.log",
        f"2024-05-01T12:00:00.400Z REPORT RequestId: {RID1}\tDuration: 26.63 ms\tBilled Duration: 354 ms\tMemory Size: 512 MB\tMax Memory Used: 93 MB\tRestore Duration: 326.96 ms\tBilled Restore Duration: 327 ms\t\n"
        f"2024-05-01T12:00:03.010Z REPORT RequestId: {RID2}\tDuration: 3000.00 ms\tBilled Duration: 3000 ms\tMemory Size: 512 MB\tMax Memory Used: 90 MB\tStatus: timeout\n"
        f"2024-05-01T12:00:04.020Z REPORT RequestId: {RID3}\tDuration: 12.00 ms\tBilled Duration: 12 ms\tMemory Size: 512 MB\tMax Memory Used: 90 MB\tStatus: error\tError Type: Runtime.ExitError\n"
        # the older way: a line of its own, after the REPORT
        "2024-05-01T12:01:00.000Z REPORT RequestId: 11111111-2222-4333-8444-555555555555\tDuration: 3003.12 ms\tBilled Duration: 3000 ms\tMemory Size: 512 MB\tMax Memory Used: 88 MB\t\n"
        "2024-05-01T12:01:00.001Z 2024-05-01T12:01:00.001Z 11111111-2222-4333-8444-555555555555 Task timed out after 3.00 seconds\n"
        # the async retry of that request, two minutes later, succeeded
        "2024-05-01T12:03:00.000Z REPORT RequestId: 11111111-2222-4333-8444-555555555555\tDuration: 40.00 ms\tBilled Duration: 40 ms\tMemory Size: 512 MB\tMax Memory Used: 88 MB\t\n",
    )
    parsed = read_logs([log])
    snap = row(parsed, RID1)
    assert snap.restore_ms == 326.96 and nan(snap.init_ms) and snap.billed_ms == 354
    assert row(parsed, RID2).status == "timeout"
    assert row(parsed, RID3).status == "error"
    retried = parsed.invocations[parsed.invocations.request_id.str.startswith("11111111")]
    assert retried.status.tolist() == ["timeout", "success"]


def test_text_report_without_timestamp_is_malformed_and_says_how_to_export(tmp_path):
    log = write(
        tmp_path / "pasted.log",
        f"2024-05-01T12:00:00.253Z {COLD}\n"
        f"START RequestId: {RID2} Version: $LATEST\n"
        f"{WARM}\n",
    )
    parsed = read_logs([log])
    assert len(parsed.invocations) == 1 and parsed.malformed == 1
    assert parsed.examples[0].startswith(f"{log}:3: REPORT without a timestamp")
    assert "aws logs tail" in parsed.examples[0] and "--format detailed" in parsed.examples[0]


def test_malformed_reports_are_counted_with_file_and_line(tmp_path):
    bad = [
        f"REPORT RequestId: {RID1}\tDuration: -1.00 ms\tBilled Duration: 1 ms\tMemory Size: 128 MB",
        f"REPORT RequestId: {RID1}\tDuration: nan ms\tBilled Duration: 1 ms\tMemory Size: 128 MB",
        f"REPORT RequestId: {RID1}\tDuration: 1.00 ms\tMemory Size: 128 MB",  # no billed
        f"REPORT RequestId: {RID1}\tDuration: 1.00 ms\tBilled Duration: 1 ms\tMemory Size: 128 GB",
        "REPORT RequestId: \tDuration: 1.00 ms\tBilled Duration: 1 ms\tMemory Size: 128 MB",
        f"REPORT RequestId: {RID1}\tDuration: 1.00 ms\tBilled Duration: 1 ms\tMemory Size: 128 MB\tInit Duration: inf ms",
    ]
    lines = [f"2024-05-01T12:00:0{i}.000Z {line}" for i, line in enumerate(bad)]
    lines.insert(2, f"2024-05-01T12:00:09.000Z {WARM}")
    lines.append(f"2024-13-45T99:00:00Z {WARM}")  # not a date
    log = write(tmp_path / "bad.log", "\n".join(lines) + "\n")
    parsed = read_logs([log])
    assert parsed.invocations.request_id.tolist() == [RID2]
    assert parsed.malformed == 7 and len(parsed.examples) == 5
    assert parsed.examples[0] == f"{log}:1: Duration '-1.00' is not a finite number >= 0"
    assert parsed.examples[1].startswith(f"{log}:2: Duration 'nan'")
    assert parsed.examples[2] == f"{log}:4: REPORT {RID1} has no Billed Duration"
    assert parsed.examples[3].startswith(f"{log}:5: REPORT {RID1}: Memory Size '128' is not followed by MB")
    assert parsed.examples[4] == f"{log}:6: REPORT without a request id"


def test_colored_tail_output_and_tail_format_json(tmp_path):
    green, cyan, reset = "\x1b[32m", "\x1b[36m", "\x1b[0m"
    colored = f"{green}2024-05-01T12:00:00.253000+00:00{reset} {cyan}{STREAM_A}{reset} {COLD}\n"
    report = {
        "time": "2024-05-01T12:00:05.004Z",
        "type": "platform.report",
        "record": {"requestId": RID2, "metrics": {"durationMs": 3.1, "billedDurationMs": 4, "memorySizeMB": 128, "maxMemoryUsedMB": 71}, "status": "success"},
    }
    pretty = f"2024-05-01T12:00:05.004000+00:00 {STREAM_A} \n" + json.dumps(report, indent=4) + "\n"
    parsed = read_logs([write(tmp_path / "a.log", colored), write(tmp_path / "b.log", pretty)], function="fn")
    assert row(parsed, RID1).stream == STREAM_A and row(parsed, RID1).init_ms == 150.51
    b = row(parsed, RID2)
    assert b.stream == STREAM_A and b.duration_ms == 3.1 and b.end_s == pytest.approx(T0 + 5.004)
    assert parsed.malformed == 0


# --- JSON of aws logs ----------------------------------------------------------------------


def event(stream, ms, message, **extra):
    e = {"logStreamName": stream, "timestamp": ms, "message": message, "ingestionTime": ms + 400, "eventId": str(37000000000000000000000000000000000000000000000000000000 + ms)}
    e.update(extra)
    if stream is None:
        del e["logStreamName"], e["eventId"]
    return e


def test_filter_log_events_pages_appended_pretty_and_one_per_line(tmp_path):
    ms = int(T0 * 1000)
    page1 = {"events": [event(STREAM_A, ms + 253, COLD + "\n" + XRAY + "\n"), event(STREAM_A, ms + 254, "END RequestId: x\n")], "searchedLogStreams": [], "nextToken": "Bxkq6kVGFtq2y_MoigeqscPOdhXVbhiVtLoAmXb5jCrI7fXnbeMl-Nsh2cq"}
    page2 = {"events": [event(STREAM_B, ms + 5004, WARM + "\n")], "searchedLogStreams": []}
    pretty = write(tmp_path / "pages.json", json.dumps(page1, indent=4) + "\n" + json.dumps(page2, indent=4) + "\n")
    lines = write(tmp_path / "pages.jsonl", json.dumps(page1) + "\n" + json.dumps(page2) + "\n")
    for path in (pretty, lines):
        parsed = read_logs([path], function="checkout")
        assert parsed.files == {str(path): "filter-log-events"} and parsed.malformed == 0
        inv = parsed.invocations
        assert inv.request_id.tolist() == [RID1, RID2] and inv.stream.tolist() == [STREAM_A, STREAM_B]
        assert inv.function.unique().tolist() == ["checkout"]
        assert inv.end_s.tolist() == pytest.approx([T0 + 0.253, T0 + 5.004])
        assert row(parsed, RID1).init_ms == 150.51


def test_get_log_events_uses_the_file_stem_as_stream_and_a_page_saved_twice_counts_once(tmp_path):
    ms = int(T0 * 1000)
    page = {"events": [event(None, ms + 253, COLD), event(None, ms + 5004, WARM)], "nextForwardToken": "f/3796", "nextBackwardToken": "b/3796"}
    path = write(tmp_path / "env-0123.json", json.dumps(page, indent=2) + json.dumps(page, indent=2))
    parsed = read_logs([path], function="checkout")
    assert parsed.files == {str(path): "get-log-events"}
    assert parsed.invocations.stream.tolist() == ["env-0123", "env-0123"]


def test_bare_event_array_and_broken_events(tmp_path):
    ms = int(T0 * 1000)
    events = [event(STREAM_A, ms + 253, COLD), "not an event", event(STREAM_A, ms + 300, WARM, timestamp=None)]
    path = write(tmp_path / "events.json", json.dumps(events))
    parsed = read_logs([path])
    assert parsed.files == {str(path): "log-events"}
    assert parsed.invocations.request_id.tolist() == [RID1]
    assert parsed.malformed == 2
    assert parsed.examples == [f"{path}:1, event 2: a log event without a message", f"{path}:1, event 3: the event has no valid timestamp"]


def test_truncated_pretty_json_is_a_clean_error(tmp_path):
    path = write(tmp_path / "cut.json", '{\n    "events": [\n        {"timestamp": 1, "message": "x"\n')
    with pytest.raises(ScenarioError, match=r"cut\.json: line \d+, column \d+: not valid JSON"):
        read_logs([path])


# --- Lambda's JSON log format ---------------------------------------------------------------


def record(kind, time, **body):
    return json.dumps({"time": time, "type": kind, "record": body})


def report(rid, time, status="success", **metrics):
    m = {"durationMs": 102.25, "billedDurationMs": 103, "memorySizeMB": 128, "maxMemoryUsedMB": 70}
    m.update(metrics)
    return record("platform.report", time, requestId=rid, metrics=m, status=status)


def test_json_log_format_in_filter_log_events_with_init_types_per_stream(tmp_path):
    ms = int(T0 * 1000)
    pc = "2024/05/01/[3]aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
    events = [
        # on-demand cold start in stream A; stream B's provisioned environment was made earlier
        event(pc, ms - 3_600_000, record("platform.initStart", "2024-05-01T11:00:00.000Z", initializationType="provisioned-concurrency", phase="init", runtimeVersion="python:3.12.v20", functionName="checkout")),
        event(STREAM_A, ms, record("platform.initStart", "2024-05-01T12:00:00.000Z", initializationType="on-demand", phase="init")),
        event(STREAM_A, ms + 150, record("platform.initReport", "2024-05-01T12:00:00.150Z", initializationType="on-demand", phase="init", status="success", metrics={"durationMs": 150.5})),
        event(STREAM_A, ms + 151, record("platform.start", "2024-05-01T12:00:00.151Z", requestId=RID1, version="$LATEST")),
        event(STREAM_A, ms + 151, json.dumps({"timestamp": "2024-05-01T12:00:00.200Z", "level": "INFO", "requestId": RID1, "message": "order 17 paid"})),
        event(STREAM_A, ms + 253, report(RID1, "2024-05-01T12:00:00.253Z", initDurationMs=150.5)),
        event(pc, ms + 300, report(RID2, "2024-05-01T12:00:00.300Z")),
        event(STREAM_A, ms + 3400, report(RID3, "2024-05-01T12:00:03.400Z", status="timeout", durationMs=3000.0, billedDurationMs=3000)),
        event(pc, ms + 4000, report("4b6f0c1a-7e2d-4f3b-9a8c-5d6e7f8a9b0c", "2024-05-01T12:00:04.000Z", status="failure")),
        event(STREAM_A, ms + 5000, '{"time": "2024-05-01T12:00:05.000Z", "type": "platform.report", "record": {'),  # cut
    ]
    path = write(tmp_path / "checkout.json", json.dumps({"events": events, "searchedLogStreams": []}))
    parsed = read_logs([path])
    cold, provisioned, timed_out = row(parsed, RID1), row(parsed, RID2), row(parsed, RID3)
    assert cold.init_type == "on-demand" and cold.init_ms == 150.5 and cold.stream == STREAM_A
    assert provisioned.init_type == "provisioned-concurrency" and nan(provisioned.init_ms)
    assert timed_out.status == "timeout" and timed_out.init_type == ""  # warm: its stream's init went to RID1
    assert row(parsed, "4b6f0c1a-7e2d-4f3b-9a8c-5d6e7f8a9b0c").status == "error"
    assert parsed.malformed == 1 and "platform.report record that is not valid JSON" in parsed.examples[0]
    assert cold.end_s == pytest.approx(T0 + 0.253)


def test_lambda_json_lines_without_envelope_take_the_records_time(tmp_path):
    lines = [
        record("platform.initStart", "2024-05-01T12:00:00.000Z", initializationType="snap-start", phase="init"),
        json.dumps({"time": "2024-05-01T12:00:00.300Z", "type": "platform.restoreStart", "record": {"runtimeVersion": "java:21.v12"}}),
        report(RID1, "2024-05-01T12:00:00.400Z", restoreDurationMs=326.96, durationMs=26.63),
        json.dumps({"timestamp": "2024-05-01T12:00:03.001Z", "level": "ERROR", "requestId": RID2, "message": "Task timed out after 3.00 seconds"}),
        report(RID2, "2024-05-01T12:00:03.000Z", durationMs=3000.0),
        record("platform.report", "2024-05-01T12:00:04.000Z", requestId=RID3, metrics={"durationMs": 1.0}),
    ]
    path = write(tmp_path / "thumbnails.jsonl", "\n".join(lines) + "\n")
    parsed = read_logs([path])
    assert parsed.files == {str(path): "lambda-json"}
    snap = row(parsed, RID1)
    assert snap.function == "thumbnails" and snap.stream == "" and snap.end_s == pytest.approx(T0 + 0.4)
    assert snap.restore_ms == 326.96 and snap.init_type == "snap-start"
    assert row(parsed, RID2).status == "timeout"
    assert parsed.malformed == 1 and parsed.examples == [f"{path}:6: platform.report {RID3} has no billedDurationMs"]


# --- subscription payloads ----------------------------------------------------------------


def payload(group, stream, *events):
    return json.dumps({"messageType": "DATA_MESSAGE", "owner": "123456789012", "logGroup": group, "logStream": stream, "subscriptionFilters": ["to-firehose"], "logEvents": [{"id": str(i), "timestamp": ms, "message": m} for i, (ms, m) in enumerate(events)]})


def test_firehose_subscription_payloads_gzipped_keep_two_functions_apart(tmp_path):
    ms = int(T0 * 1000)
    body = (
        payload("/aws/lambda/checkout", STREAM_A, (ms + 253, COLD), (ms + 5004, WARM))
        + payload("/aws/lambda/thumbnails", STREAM_B, (ms + 100, COLD.replace(RID1, RID3)))  # Firehose concatenates: "}{"
        + "\n"
        + payload("/aws/lambda/thumbnails", STREAM_B, (ms + 7000, report(RID2, "2024-05-01T12:00:07.000Z")))
    )
    path = tmp_path / "firehose-1-2024-05-01-12-00-00-abcd"  # no suffix, as Firehose names them
    path.write_bytes(gzip.compress(body.encode()))
    parsed = read_logs([path], function="ignored")
    assert parsed.files == {str(path): "subscription"}
    inv = parsed.invocations
    assert inv.function.tolist() == ["checkout", "checkout", "thumbnails", "thumbnails"]  # sorted
    assert inv.request_id.tolist() == [RID1, RID2, RID3, RID2]
    assert inv.stream.tolist() == [STREAM_A, STREAM_A, STREAM_B, STREAM_B]
    assert inv[inv.function == "thumbnails"].end_s.tolist() == pytest.approx([T0 + 0.1, T0 + 7.0])


# --- Logs Insights CSV ---------------------------------------------------------------------


def test_insights_csv_of_messages_with_log_groups_and_multiline_messages(tmp_path):
    csv = (
        "@timestamp,@logStream,@log,@message\n"
        f'2024-05-01 12:00:05.004,{STREAM_B},123456789012:/aws/lambda/thumbnails,"{WARM}"\n'
        f'2024-05-01 12:00:00.253,{STREAM_A},123456789012:/aws/lambda/checkout,"{COLD}\n{XRAY}\n"\n'
        f'2024-05-01 12:00:00.151,{STREAM_A},123456789012:/aws/lambda/checkout,"START RequestId: {RID1} Version: $LATEST"\n'
        f'not a time,{STREAM_A},123456789012:/aws/lambda/checkout,"{WARM.replace(RID2, RID3)}"\n'
    )
    path = write(tmp_path / "logs-insights-results.csv", csv)
    parsed = read_logs([path])
    assert parsed.files == {str(path): "insights-csv"}
    inv = parsed.invocations
    assert inv.function.tolist() == ["checkout", "thumbnails"]
    assert row(parsed, RID1).end_s == pytest.approx(T0 + 0.253) and row(parsed, RID1).init_ms == 150.51
    assert parsed.malformed == 1 and parsed.examples == [f"{path}:row 4: the event has no valid timestamp"]


def test_insights_csv_of_report_fields_converts_bytes_to_mb(tmp_path):
    csv = (
        "@timestamp,@requestId,@duration,@billedDuration,@initDuration,@memorySize,@maxMemoryUsed,@type\n"
        f"2024-05-01 12:00:00.253,{RID1},102.25,103,150.51,128000000,70000000,REPORT\n"
        f"2024-05-01 12:00:05.004,{RID2},3.1,4,,134217728,74448896,REPORT\n"  # MiB-based: 128, 71
        f"2024-05-01 12:00:05.001,{RID2},,,,,,START\n"
        f"2024-05-01 12:00:06.000,{RID3},-3,4,,128000000,,REPORT\n"
    )
    path = write(tmp_path / "report-fields.csv", csv)
    parsed = read_logs([path], function="checkout")
    cold, warm = row(parsed, RID1), row(parsed, RID2)
    assert (cold.memory_mb, cold.max_memory_mb, cold.init_ms) == (128, 70, 150.51)
    assert (warm.memory_mb, warm.max_memory_mb) == (128, 71) and nan(warm.init_ms)
    assert cold.function == "checkout" and cold.stream == "" and cold.status == "success"
    assert cold.end_s == pytest.approx(T0 + 0.253)
    assert parsed.malformed == 1 and parsed.examples == [f"{path}:row 4: @duration '-3' is not a finite number >= 0"]


def test_insights_csv_without_timestamp_is_a_clean_error(tmp_path):
    path = write(tmp_path / "q.csv", f"@requestId,@duration\n{RID1},1.0\n")
    with pytest.raises(ScenarioError, match=r"q\.csv: a Logs Insights CSV needs @timestamp"):
        read_logs([path])


# --- folders, several inputs, bad files -----------------------------------------------------


def test_a_folder_is_read_recursively_in_name_order(tmp_path):
    ms = int(T0 * 1000)
    (tmp_path / "logs" / "b").mkdir(parents=True)
    text = write(tmp_path / "logs" / "a.log", f"2024-05-01T12:00:00.253Z {COLD}\n")
    page = write(tmp_path / "logs" / "b" / "page.json", json.dumps({"events": [event(STREAM_B, ms + 5004, WARM)]}))
    write(tmp_path / "logs" / ".DS_Store", "\0\0\1Bud1")  # hidden: skipped
    parsed = read_logs(tmp_path / "logs", function="checkout")  # one path alone is fine too
    assert parsed.files == {str(text): "text", str(page): "filter-log-events"}
    assert parsed.invocations.request_id.tolist() == [RID1, RID2]


def test_binary_utf16_latin1_empty_and_unknown_files_are_clean_errors(tmp_path):
    binary = tmp_path / "logs.zip"
    binary.write_bytes(b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + bytes(range(256)))
    with pytest.raises(ScenarioError, match=r"logs\.zip: a binary file, not a log \(accepted: text lines"):
        read_logs([binary])
    utf16 = tmp_path / "ps.log"
    utf16.write_bytes(f"2024-05-01T12:00:00Z {COLD}\n".encode("utf-16"))
    with pytest.raises(ScenarioError, match=r"ps\.log: UTF-16 text: save it as UTF-8"):
        read_logs([utf16])
    latin = tmp_path / "latin.log"
    latin.write_bytes(f"2024-05-01T12:00:00Z caf\xe9\n2024-05-01T12:00:00Z {COLD}\n".encode("latin-1"))
    with pytest.raises(ScenarioError, match=r"latin\.log: not UTF-8 text"):
        read_logs([latin])
    empty = write(tmp_path / "empty.log", "")
    with pytest.raises(ScenarioError, match=r"no REPORT line \(one per invocation\) in .*empty\.log \(empty\)"):
        read_logs([empty])
    readme = write(tmp_path / "README.md", "# my function\n\nSome notes.\n")
    with pytest.raises(ScenarioError, match=r"README\.md: not a CloudWatch log of a known format \(accepted:"):
        read_logs([readme])
    other = write(tmp_path / "package.json", '{"name": "checkout", "version": "1.0.0"}')
    with pytest.raises(ScenarioError, match=r"package\.json: JSON without CloudWatch log events"):
        read_logs([other])
    with pytest.raises(ScenarioError, match=r"missing\.log: file not found"):
        read_logs([tmp_path / "missing.log"])


def test_no_report_anywhere_names_the_files_and_the_malformed_ones(tmp_path):
    a = write(tmp_path / "a.log", f"2024-05-01T12:00:00Z START RequestId: {RID1} Version: $LATEST\n")
    b = write(tmp_path / "b.log", f"{WARM}\n")
    with pytest.raises(ScenarioError) as err:
        read_logs([a, b])
    message = str(err.value)
    assert f"{a} (text), {b} (text)" in message and f"1 could not be read, e.g. {b}:1: REPORT without a timestamp" in message


def test_insights_timestamps_outside_pandas_nanosecond_range_do_not_overflow(tmp_path):
    # A fuzzed year: read, or refused with a clean message naming the row, never a crash.
    csv = f'@timestamp,@message\n1253-01-01 00:00:00.000,"{COLD}"\n'
    try:
        parsed = read_logs([write(tmp_path / "old.csv", csv)])
    except ScenarioError as err:
        assert "old.csv:row 1" in str(err)
    else:
        assert row(parsed, RID1).end_s == pytest.approx(-22626259200.0)


def test_deeply_nested_json_is_a_clean_error(tmp_path):
    path = write(tmp_path / "deep.json", "[" * 100_000 + "]" * 100_000)
    with pytest.raises(ScenarioError, match=r"deep\.json: JSON nested too deeply"):
        read_logs([path])


# --- runtime versions: INIT_START / RESTORE_START, platform.initStart / restoreStart --------

ARN = "arn:aws:lambda:us-east-1::runtime:7b620fc2e66107a1046b140b9d320295811af3ad5d4c6a011fad1fa65127e9e6"


def start_line(version, kind="INIT_START"):
    # As Lambda writes it (AWS's example: "INIT_START Runtime Version: python:3.13.v14
    # Runtime Version ARN: arn:aws:lambda:eu-south-1::runtime:7b62..."), a tab between.
    return f"{kind} Runtime Version: {version}\tRuntime Version ARN: {ARN}"


def test_init_start_lines_in_text_give_each_functions_most_common_runtime(tmp_path):
    detailed = write(
        tmp_path / "checkout.log",
        f"2024-05-01T12:00:00.000000+00:00 {STREAM_A} {start_line('python:3.12.v18')}\n"
        f"2024-05-01T12:00:00.253000+00:00 {STREAM_A} {COLD}\n"
        f"2024-05-01T12:00:04.000000+00:00 {STREAM_B} {start_line('python:3.12.v20')}\n"
        f"2024-05-01T12:00:04.100000+00:00 {STREAM_B} {start_line('python:3.12.v20')}\n"
        f"2024-05-01T12:00:05.004000+00:00 {STREAM_B} {WARM}\n",
    )
    short = write(
        tmp_path / "api.txt",  # aws logs tail --format short: no stream
        f"2024-05-01T12:00:00 {start_line('nodejs:22.v40')}\n"
        f"2024-05-01T12:00:00 {COLD.replace(RID1, RID3)}\n",
    )
    console = write(
        tmp_path / "orders.txt",  # the console's download: a tab after the time
        f"2024-05-01T12:00:00.100Z\t{start_line('java:21.v20', 'RESTORE_START')}\n"
        f"2024-05-01T12:00:00.400Z\tREPORT RequestId: {RID2}\tDuration: 26.63 ms\t"
        "Billed Duration: 354 ms\tMemory Size: 512 MB\tRestore Duration: 326.96 ms\t"
        "Billed Restore Duration: 327 ms\t\n",
    )
    parsed = read_logs([detailed, short, console])
    assert parsed.malformed == 0 and len(parsed.invocations) == 4
    assert parsed.runtimes == {
        "api": "nodejs:22.v40",
        "checkout": "python:3.12.v20",  # two environments of three
        "orders": "java:21.v20",
    }


def test_init_and_restore_start_messages_in_json_csv_and_subscriptions(tmp_path):
    ms = int(T0 * 1000)
    page = {
        "events": [
            event(STREAM_A, ms, start_line("ruby:3.3.v12") + "\n"),
            event(STREAM_A, ms + 253, COLD + "\n"),
        ],
        "searchedLogStreams": [],
    }
    fle = write(tmp_path / "billing.json", json.dumps(page))
    csv = (
        "@timestamp,@logStream,@log,@message\n"
        f'2024-05-01 12:00:00.000,{STREAM_A},123456789012:/aws/lambda/thumbs,"{start_line("dotnet:8.v31")}"\n'
        f'2024-05-01 12:00:00.253,{STREAM_A},123456789012:/aws/lambda/thumbs,"{COLD}"\n'
    )
    insights = write(tmp_path / "insights.csv", csv)
    restore = start_line("java:17.v33", "RESTORE_START")
    firehose = write(
        tmp_path / "firehose-1",
        payload("/aws/lambda/ledger", STREAM_B, (ms + 1, restore), (ms + 5004, WARM)),
    )
    for path, function, version, kind in [
        (fle, "billing", "ruby:3.3.v12", "filter-log-events"),
        (insights, "thumbs", "dotnet:8.v31", "insights-csv"),
        (firehose, "ledger", "java:17.v33", "subscription"),
    ]:
        parsed = read_logs([path])
        assert parsed.files == {str(path): kind}
        assert parsed.runtimes == {function: version} and parsed.malformed == 0
        assert len(parsed.invocations) == 1


def test_lambda_json_init_start_and_restore_start_records_carry_the_runtime_version(tmp_path):
    ms = int(T0 * 1000)
    init = record(
        "platform.initStart",
        "2024-05-01T12:00:00.000Z",
        initializationType="on-demand",
        phase="init",
        runtimeVersion="python:3.13.v14",
        runtimeVersionArn=ARN,
    )
    restore = record(
        "platform.restoreStart",
        "2024-05-01T12:00:00.000Z",
        runtimeVersion="java:21.v20",
        runtimeVersionArn=ARN,
        functionName="orders",
        functionVersion="1",
    )
    lines = write(
        tmp_path / "orders.jsonl",  # no envelope: the function is the file's stem
        restore + "\n" + report(RID1, "2024-05-01T12:00:00.400Z", restoreDurationMs=326.96) + "\n",
    )
    wrapped = write(
        tmp_path / "checkout.json",  # in filter-log-events
        json.dumps(
            {
                "events": [
                    event(STREAM_A, ms, init),
                    event(STREAM_A, ms + 253, report(RID2, "2024-05-01T12:00:00.253Z")),
                ]
            }
        ),
    )
    parsed = read_logs([lines, wrapped])
    assert parsed.runtimes == {"checkout": "python:3.13.v14", "orders": "java:21.v20"}
    assert parsed.malformed == 0 and len(parsed.invocations) == 2
    assert row(parsed, RID1).init_type == "snap-start"
    assert row(parsed, RID2).init_type == "on-demand"


def test_start_lines_without_a_runtime_version_are_neither_runtimes_nor_malformed(tmp_path):
    log = write(
        tmp_path / "odd.log",
        "2024-05-01T12:00:00.000Z INIT_START\n"
        f"2024-05-01T12:00:00.001Z {STREAM_A} INIT_START Runtime Version:\n"
        "2024-05-01T12:00:00.002Z RESTORE_START something else\n"
        "2024-05-01T12:00:00.003Z INIT_START Runtime Version: \tRuntime Version ARN: arn\n"
        f"2024-05-01T12:00:00.253Z {COLD}\n",
    )
    parsed = read_logs([log])
    assert parsed.runtimes == {} and parsed.malformed == 0 and len(parsed.invocations) == 1


@pytest.mark.parametrize(
    ("version", "runtime"),
    [
        ("python:3.12.v18", "python3.12"),
        ("python:3.13.v14", "python3.13"),
        ("python:3.11.v2", "python3.11"),
        ("java:21.v20", "java21"),
        ("java:17.v33", "java17"),
        ("nodejs:22.v40", "nodejs22.x"),
        ("dotnet:8.v31", "dotnet8"),
        ("ruby:3.3.v12", "ruby3.3"),
        ("provided:al2023.v95", "provided.al2023"),
        # supported by Lambda, without a measured preset of their own (LAMBDA_RUNTIMES)
        ("java:11.v21", "java11"),
        ("nodejs:20.v30", "nodejs20.x"),
        ("nodejs:24.v3", "nodejs24.x"),
        ("provided:al2.v100", "provided.al2"),
        ("java:8.al2.v40", "java8.al2"),
        ("dotnet:10.v2", "dotnet10"),
        # no longer supported by Lambda
        ("python:3.9.v14", None),
        ("nodejs:18.v50", None),
        ("nodejs-14.v3", None),  # the Telemetry API reference's example
        ("coldsim", None),
        ("", None),
        (None, None),
    ],
)
def test_runtime_versions_map_to_coldsims_runtimes(version, runtime):
    from coldsim.cloudwatch.parse import runtime_name

    assert runtime_name(version) == runtime


def test_exported_runtime_versions_read_back_as_the_same_runtime():
    from coldsim.cloudwatch.export import runtime_version
    from coldsim.cloudwatch.parse import runtime_name
    from coldsim.runtimes import MEASURED_MS

    assert runtime_version("python3.12") == "python:3.12.v1" == runtime_version(None)
    assert runtime_version("java21") == "java:21.v1"
    assert runtime_version("nodejs22.x") == "nodejs:22.v1"
    assert runtime_version("rust") == "provided:al2023.v1"  # Rust and Go run on it
    for runtime in set(MEASURED_MS) - {"go", "rust"}:
        assert runtime_name(runtime_version(runtime)) == runtime


def test_fit_sets_the_logged_runtime_whose_preset_gives_an_unseen_init(tmp_path):
    pytest.importorskip("lifelines")
    from coldsim import parse_scenario
    from coldsim.cloudwatch.fit import fit

    log = write(
        tmp_path / "api.log",  # a warm request only: no Init Duration to fit
        f"2024-05-01T11:00:00.000Z {start_line('nodejs:22.v40')}\n"
        f"2024-05-01T12:00:05.004Z {WARM}\n",
    )
    got = fit(read_logs([log]), "fitted")
    (entry,) = got.scenario["functions"]
    assert entry["runtime"] == "nodejs22.x" and "init" not in entry
    m = got.report["per_function"]["api"]
    assert (m["runtime"], m["runtime_version"]) == ("nodejs22.x", "nodejs:22.v40")
    assert "nodejs22.x's measured hello-world preset" in m["note"]
    poisson = {**entry, "arrivals": {"process": "poisson", "rate_per_s": 1.0}}
    init = parse_scenario({**got.scenario, "functions": [poisson]}).functions[0].init
    assert init.median == 145.0  # nodejs22.x's, not python3.12's 86 ms


# --- values beyond Lambda's limits, doubtful REPORTs (issue 18 §6.1, §6.12) -----------------


def test_values_beyond_lambdas_limits_are_malformed_with_file_and_line(tmp_path):
    ok = "Billed Duration: 4 ms\tMemory Size: 128 MB"
    bad = [
        f"REPORT RequestId: {RID1}\tDuration: 1e308 ms\t{ok}",
        f"REPORT RequestId: {RID1}\tDuration: 900000.01 ms\t{ok}",
        f"REPORT RequestId: {RID1}\tDuration: 3.1 ms\tBilled Duration: 4 ms\tMemory Size: 10241 MB",
        f"REPORT RequestId: {RID1}\tDuration: 3.1 ms\tBilled Duration: 4 ms\tMemory Size: 64 MB",
        f"REPORT RequestId: {RID1}\tDuration: 3.1 ms\t{ok}\tMax Memory Used: 20000 MB",
    ]
    edge = f"REPORT RequestId: {RID2}\tDuration: 900000.00 ms\tBilled Duration: 900000 ms\tMemory Size: 10240 MB"
    lines = [f"2024-05-01T12:00:0{i}.000Z {line}" for i, line in enumerate([*bad, edge])]
    log = write(tmp_path / "limits.log", "\n".join(lines) + "\n")
    parsed = read_logs([log])
    assert parsed.invocations.request_id.tolist() == [RID2]  # Lambda's limits themselves pass
    assert parsed.malformed == 5
    assert parsed.examples[0] == f"{log}:1: Duration '1e308' is outside Lambda's limits (0-900,000 ms)"
    assert parsed.examples[2] == f"{log}:3: Memory Size '10241' is outside Lambda's limits (128-10,240 MB)"
    assert [e.split(": ")[1].split(" ")[0] for e in parsed.examples] == [
        "Duration", "Duration", "Memory", "Memory", "Max"]  # fmt: skip
    # The same in Lambda's JSON log format and in Insights' REPORT fields.
    record = {"time": "2024-05-01T12:00:00.000Z", "type": "platform.report", "record": {
        "requestId": RID3, "metrics": {"durationMs": 1e308, "billedDurationMs": 4,
                                       "memorySizeMB": 128}}}  # fmt: skip
    good = {**record, "record": {**record["record"], "requestId": RID2,
                                 "metrics": {**record["record"]["metrics"], "durationMs": 3}}}  # fmt: skip
    path = write(tmp_path / "fn.json", json.dumps(record) + "\n" + json.dumps(good) + "\n")
    parsed = read_logs([path])
    assert parsed.malformed == 1 and parsed.examples == [
        f"{path}:1: durationMs 1e+308 is outside Lambda's limits (0-900,000 ms)"]  # fmt: skip
    csv = (
        "@timestamp,@requestId,@duration,@billedDuration,@memorySize,@type\n"
        f"2024-05-01 12:00:00.253,{RID1},3.1,4,20480000000,REPORT\n"
        f"2024-05-01 12:00:00.253,{RID2},3.1,4,128000000,REPORT\n"
    )
    path = write(tmp_path / "fields.csv", csv)
    parsed = read_logs([path], function="f")
    assert parsed.malformed == 1 and parsed.examples == [
        f"{path}:row 1: @memorySize '20480000000' is outside Lambda's limits (128-10,240 MB)"]  # fmt: skip


def test_a_report_cut_off_mid_line_is_counted_with_a_warning(tmp_path):
    cut = f"REPORT RequestId: {RID1}\tDuration: 102.25 ms\tBilled Duration: 103 ms\tMemory Size: 128 MB\tInit Dur"
    lines = [
        f"2024-05-01T12:00:00.253Z {STREAM_A} {cut}",
        f"2024-05-01T12:00:05.004Z {STREAM_A} {WARM}{XRAY}",  # X-Ray's fields are whole
        f"2024-05-01T12:00:06.004Z {STREAM_A} {WARM.replace(RID2, RID3)}Status: error\tError Type: Runtime.ExitError",
    ]
    log = write(tmp_path / "cut.log", "\n".join(lines) + "\n")
    parsed = read_logs([log])
    assert len(parsed.invocations) == 3 and parsed.malformed == 0
    assert len(parsed.warnings) == 1
    assert parsed.warnings[0].startswith("1 REPORT line(s) cut off mid-line")
    assert f"{log}:1: REPORT {RID1} ends in 'Init Dur', cut off mid-field" in parsed.warnings[0]


def test_a_request_id_reported_again_with_other_values_is_warned_about(tmp_path):
    again = WARM.replace("3.10 ms", "9.10 ms")
    lines = [
        f"2024-05-01T12:00:05.004Z {STREAM_A} {WARM}",
        f"2024-05-01T12:00:05.004Z {STREAM_A} {again}",  # the same time, other values
        f"2024-05-01T12:00:00.253Z {STREAM_A} {COLD}",
    ]
    log = write(tmp_path / "dup.log", "\n".join(lines) + "\n")
    parsed = read_logs([log])
    assert len(parsed.invocations) == 3  # counted, but not silently
    assert len(parsed.warnings) == 1 and parsed.warnings[0].startswith("1 REPORT(s) repeat")
    assert f"{log}:2 repeats request id {RID2} of {log}:1 with other values" in parsed.warnings[0]
    # One export read in two formats (timestamps and durations rounded differently): no warning.
    csv = (
        "@timestamp,@logStream,@log,@message\n"
        f'2024-05-01 12:00:05.004,{STREAM_A},123456789012:/aws/lambda/dup,"{WARM.replace("3.10", "3.104")}"\n'
    )
    path = write(tmp_path / "insights.csv", csv)
    one = write(tmp_path / "one.log", lines[0] + "\n")
    parsed = read_logs([one, path], function="dup")
    assert len(parsed.invocations) == 1 and parsed.warnings == []


def test_every_runtime_lambda_supports_has_a_measured_init_or_a_stated_stand_in(tmp_path):
    pytest.importorskip("lifelines")
    from coldsim import parse_scenario
    from coldsim.cloudwatch.fit import fit
    from coldsim.runtimes import LAMBDA_RUNTIMES, MEASURED_MS

    for runtime, preset in LAMBDA_RUNTIMES.items():
        assert preset in MEASURED_MS
        # the same language (OS-only runtimes: provided.al2023)
        assert re.match("[a-z]+", preset).group() == re.match("[a-z]+", runtime).group()
    log = write(
        tmp_path / "api.log",  # Node.js 20: a warm request only, no Init Duration to fit
        f"2024-05-01T11:00:00.000Z {start_line('nodejs:20.v40')}\n"
        f"2024-05-01T12:00:05.004Z {WARM}\n",
    )
    got = fit(read_logs([log]), "fitted")
    (entry,) = got.scenario["functions"]
    assert entry["runtime"] == "nodejs22.x"  # not python3.12
    m = got.report["per_function"]["api"]
    assert (m["runtime"], m["runtime_version"]) == ("nodejs22.x", "nodejs:20.v40")
    assert m["note"].startswith("nodejs20.x (logged as nodejs:20.v40) has no measured init in "
                                "coldsim: nodejs22.x, the nearest measured release of its "
                                "language, stands in for it; no on-demand init seen")  # fmt: skip
    poisson = {**entry, "arrivals": {"process": "poisson", "rate_per_s": 1.0}}
    assert parse_scenario({**got.scenario, "functions": [poisson]}).functions[0].init.median == 145
