from harness.emulator.sagemaker.transform import _batches


def test_multi_record_batches_respect_the_payload_limit():
    body = b"aaaa\nbbbb\ncccc\n"
    assert list(_batches(body, "Line", "MultiRecord", max_payload=10)) == [b"aaaa\nbbbb\n", b"cccc\n"]


def test_single_record_sends_one_line_per_request_and_skips_blank_lines():
    assert list(_batches(b"a\n\nb\n", "Line", "SingleRecord", max_payload=100)) == [b"a\n", b"b\n"]


def test_without_a_split_the_whole_object_is_one_request():
    assert list(_batches(b"a\nb\n", "None", "MultiRecord", max_payload=1)) == [b"a\nb\n"]
