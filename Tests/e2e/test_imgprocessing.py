"""End-to-end: the `imgprocessing` example against OpenCV (opencv-python-headless) as the oracle:
decoding pixel-identical to `cv2.imdecode`, gray identical to `cv2.cvtColor`, the JPEG it replies
with within 0.5 dB PSNR of cv2's own round trip; the `fximage` streaming client and the seed's
Python client against a real watcher."""

import io
import os
import subprocess
from pathlib import Path

import cv2
import grpc
import numpy as np
import pytest
from PIL import Image

from conftest import REPO

FXIMAGE = Path(os.environ.get("FXIMAGE_BIN", REPO / ".build" / "debug" / "fximage"))


def natural(rng, height, width, channels=3):
    """A smooth picture with noise: what JPEG is made for, and not trivially compressible."""
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 // max(width - 1, 1), y * 255 // max(height - 1, 1),
                     (x + y) * 128 // max(width + height - 2, 1)], -1).astype(np.int32)
    image = np.clip(base + rng.integers(-40, 40, (height, width, 3)), 0, 255).astype(np.uint8)
    return image if channels == 3 else image[..., 0]


def encoded(image, mode, fmt="PNG", **options):
    buffer = io.BytesIO()
    Image.fromarray(image[..., ::-1]).convert(mode).save(buffer, fmt, **options)
    return buffer.getvalue()


def interlaced_png(image):
    """An Adam7-interlaced 8-bit RGB PNG (neither cv2 nor Pillow writes one), chunk by chunk."""
    import struct
    import zlib
    height, width = image.shape[:2]
    rgb = image[..., ::-1]
    passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
    raw = b""
    for x0, y0, dx, dy in passes:
        sub = rgb[y0::dy, x0::dx]
        if sub.size:
            raw += b"".join(b"\x00" + row.tobytes() for row in sub)
    chunk = lambda kind, data: struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 1)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def image_cases():
    """Every kind of input cv2 decodes differently from a plain libjpeg call, by name."""
    rng = np.random.default_rng(20261129)
    picture = natural(rng, 480, 640)
    jpeg = lambda image, *params: cv2.imencode(".jpg", image, list(params))[1].tobytes()
    cases = {
        "baseline 4:2:0": jpeg(picture),
        "progressive": jpeg(picture, cv2.IMWRITE_JPEG_PROGRESSIVE, 1),
        "4:4:4": jpeg(picture, cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444),
        "4:2:2": jpeg(picture, cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_422),
        "restart markers": jpeg(picture, cv2.IMWRITE_JPEG_RST_INTERVAL, 4),
        "gray JPEG": jpeg(natural(rng, 120, 90, 1)),
        "1x1": jpeg(natural(rng, 1, 1)),
        "odd size": jpeg(natural(rng, 17, 33)),
        "one row": jpeg(natural(rng, 1, 40)),
        "CMYK (Adobe)": encoded(natural(rng, 60, 80), "CMYK", "JPEG", quality=92),
        "PNG BGR": cv2.imencode(".png", picture[:100, :120])[1].tobytes(),
        "PNG 16-bit": cv2.imencode(".png", picture[:50, :60].astype(np.uint16) * 257 + 3)[1].tobytes(),
        "PNG gray 16-bit": cv2.imencode(".png", natural(rng, 40, 30, 1).astype(np.uint16) * 250)[1].tobytes(),
        "PNG with alpha": cv2.imencode(".png", np.dstack([picture[:40, :50], rng.integers(0, 255, (40, 50), dtype=np.uint8)]))[1].tobytes(),
        "PNG 1-bit": encoded(picture[:30, :40], "1"),
        "PNG gray + alpha": encoded(picture[:30, :40], "LA"),
        "PNG palette": encoded(picture[:30, :40], "P"),
        "PNG palette + tRNS": encoded(picture[:30, :40], "P", transparency=3),
        "PNG interlaced": interlaced_png(picture[:30, :40]),
    }
    damaged = bytearray(cases["baseline 4:2:0"])
    damaged[len(damaged) // 2:len(damaged) // 2 + 200] = bytes(200)
    cases["damaged middle"] = bytes(damaged)
    for orientation in range(1, 9):
        exif = Image.Exif()
        exif[0x0112] = orientation
        cases[f"EXIF orientation {orientation}"] = encoded(natural(rng, 30, 50), "RGB", "JPEG", exif=exif.tobytes(), quality=90)
        cases[f"PNG eXIf orientation {orientation}"] = encoded(natural(rng, 30, 50), "RGB", "PNG", exif=exif.tobytes())
    return cases


def decoded_by_fximage(path, gray=False, blur=False):
    result = subprocess.run([str(FXIMAGE), "decode", *(["--gray"] if gray else []), *(["--blur"] if blur else []), str(path)],
                            capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    header, _, pixels = result.stdout.partition(b"\n")
    width, height, channels = map(int, header.split())
    shape = (height, width) if channels == 1 else (height, width, channels)
    return np.frombuffer(pixels, np.uint8).reshape(shape)


def psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255 ** 2 / mse)


def call_bytes(pb, port, data):
    with grpc.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.max_receive_message_length", 64 << 20)]) as channel:
        return pb.services.FxWatcherStub(channel).CallBytes(pb.messages.Request(input=data), timeout=30).Output


@pytest.mark.parametrize("name", list(image_cases()))
def test_decoding_is_pixel_identical_to_cv2_and_gray_to_cvtcolor(name, tmp_path):
    data = image_cases()[name]
    path = tmp_path / "input"
    path.write_bytes(data)
    expected = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert expected is not None
    got = decoded_by_fximage(path)
    assert got.shape == expected.shape
    assert np.array_equal(got, expected), f"{np.count_nonzero(got != expected)} values differ"
    assert np.array_equal(decoded_by_fximage(path, gray=True), cv2.cvtColor(expected, cv2.COLOR_BGR2GRAY))
    assert np.array_equal(decoded_by_fximage(path, blur=True), cv2.blur(expected, (3, 3)))


@pytest.mark.parametrize("operation", ["reencode", "gray", "mirror", "blur"])
def test_replies_are_jpegs_within_half_a_db_of_cv2s_own_round_trip(start_watcher, pb, operation):
    watcher = start_watcher(env={"HANDLER_NAME": "imgprocessing", "IMG_OP": operation if operation != "reencode" else None})
    cases = image_cases()
    for name in ["baseline 4:2:0", "progressive", "4:4:4", "CMYK (Adobe)", "PNG with alpha", "EXIF orientation 6", "odd size"]:
        data = cases[name]
        source = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if operation == "gray":
            source = cv2.cvtColor(source, cv2.COLOR_BGR2GRAY)
        elif operation == "mirror":
            source = cv2.flip(source, 1)
        elif operation == "blur":
            source = cv2.blur(source, (3, 3))
        reply = call_bytes(pb, watcher.port, data)
        assert reply[:3] == b"\xff\xd8\xff", f"{name}: the reply is not a JPEG"
        ours = cv2.imdecode(np.frombuffer(reply, np.uint8), cv2.IMREAD_UNCHANGED)
        theirs = cv2.imdecode(cv2.imencode(".jpg", source)[1], cv2.IMREAD_UNCHANGED)
        assert ours.shape == source.shape, f"{name}: {ours.shape} vs {source.shape}"
        assert psnr(source, ours) >= psnr(source, theirs) - 0.5, f"{name}: {psnr(source, ours):.2f} vs cv2 {psnr(source, theirs):.2f} dB"


def test_gray_replies_are_cv2s_own_gray_jpegs_byte_for_byte_even_many_at_once(start_watcher, pb):
    """The gray operation decodes and encodes a plain JPEG on two threads, one frame at a time, and
    frames arriving meanwhile take the one-thread way: either way the reply is the JPEG cv2 makes
    of cvtColor(imdecode(…)), to the byte, whatever else arrives with it."""
    watcher = start_watcher(env={"HANDLER_NAME": "imgprocessing", "IMG_OP": "gray"})
    cases = image_cases()
    names = ["baseline 4:2:0", "progressive", "4:4:4", "4:2:2", "restart markers", "gray JPEG", "1x1", "odd size",
             "one row", "damaged middle", "EXIF orientation 1", "EXIF orientation 6", "CMYK (Adobe)", "PNG BGR"]
    expected = {}
    for name in names:
        source = cv2.imdecode(np.frombuffer(cases[name], np.uint8), cv2.IMREAD_COLOR)
        expected[name] = cv2.imencode(".jpg", cv2.cvtColor(source, cv2.COLOR_BGR2GRAY))[1].tobytes()
    for name in names:
        assert call_bytes(pb, watcher.port, cases[name]) == expected[name], name
    with grpc.insecure_channel(f"127.0.0.1:{watcher.port}", options=[("grpc.max_receive_message_length", 64 << 20)]) as channel:
        stub = pb.services.FxWatcherStub(channel)
        order = [names[i % len(names)] for i in range(96)]
        futures = [stub.CallBytes.future(pb.messages.Request(input=cases[name]), timeout=60) for name in order]
        for name, future in zip(order, futures):
            assert future.result().Output == expected[name], name


def test_undecodable_input_is_invalid_argument_and_the_watcher_serves_on(start_watcher, pb):
    watcher = start_watcher(env={"HANDLER_NAME": "imgprocessing"})
    good = image_cases()["baseline 4:2:0"]
    for bad in [b"", b"not an image at all", os.urandom(5000), good[:200], b"\xff\xd8\xff" + os.urandom(3000),
                b"\x89PNG\r\n\x1a\n" + os.urandom(100)]:
        with pytest.raises(grpc.RpcError) as raised:
            call_bytes(pb, watcher.port, bad)
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT, bad[:16]
        assert raised.value.details(), bad[:16]
    assert call_bytes(pb, watcher.port, good)[:2] == b"\xff\xd8"


def test_an_unknown_img_op_stops_the_start_naming_the_known_ones(start_watcher):
    watcher = start_watcher(env={"HANDLER_NAME": "imgprocessing", "IMG_OP": "sharpen"}, wait=False)
    assert watcher.wait_exit() == 64
    assert "sharpen" in watcher.log and "reencode, gray, mirror, blur" in watcher.log


def write_frames_and_video(folder, count=12):
    """`count` 320×240 frames as JPEG files and as one Motion-JPEG AVI (cv2's MJPG writer)."""
    rng = np.random.default_rng(5)
    frames = [np.roll(natural(rng, 240, 320), 8 * n, axis=1) for n in range(count)]
    folder.mkdir()
    for n, frame in enumerate(frames):
        cv2.imwrite(str(folder / f"{n:03d}.jpg"), frame)
    video = folder.parent / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (320, 240))
    for frame in frames:
        writer.write(frame)
    writer.release()
    return frames, video


def test_the_streaming_client_sends_a_folder_and_a_video_and_writes_every_reply(start_watcher, tmp_path):
    watcher = start_watcher(env={"HANDLER_NAME": "imgprocessing", "IMG_OP": "gray"})
    frames, video = write_frames_and_video(tmp_path / "frames")
    for source in (["--frames", str(tmp_path / "frames")], ["--video", str(video)]):
        out = tmp_path / f"out-{source[0][2:]}"
        result = subprocess.run([str(FXIMAGE), "stream", "--address", f"127.0.0.1:{watcher.port}", *source,
                                 "--output", str(out)], capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr
        written = sorted(out.iterdir())
        assert [p.name for p in written] == [f"frame-{n:06d}.jpg" for n in range(1, len(frames) + 1)]
        for frame, path in zip(frames, written):
            reply = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
            assert reply.ndim == 2, "gray frames come back gray"
            assert psnr(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), reply) > 30, path.name


def test_the_streaming_client_refuses_a_file_that_is_no_video(tmp_path):
    bogus = tmp_path / "notes.txt"
    bogus.write_text("not a video")
    result = subprocess.run([str(FXIMAGE), "stream", "--video", str(bogus), "--output", str(tmp_path / "o")],
                            capture_output=True, text=True, timeout=60, env={"PATH": "/nonexistent"})
    assert result.returncode != 0
    assert "ffmpeg" in result.stderr


def test_the_seeds_python_client_streams_a_videos_frames_through_invokes(start_watcher, pb, tmp_path):
    """The seed's client, minus its window: cv2.VideoCapture frames, imencode, Invokes to the
    function by name, imdecode of each reply."""
    watcher = start_watcher(env={"HANDLER_NAME": "imgprocessing", "FUNCTION_NAME": "imgprocessing"})
    frames, video = write_frames_and_video(tmp_path / "frames", count=8)
    capture = cv2.VideoCapture(str(video))
    sent = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        sent.append(frame)
    capture.release()
    assert len(sent) == len(frames)
    requests = (pb.gateway_messages.InvokeServiceRequest(Service="imgprocessing", Input=cv2.imencode(".jpg", f)[1].tobytes())
                for f in sent)
    with grpc.insecure_channel(f"127.0.0.1:{watcher.port}") as channel:
        replies = list(pb.gateway_services.FxGatewayStub(channel).Invokes(requests, timeout=60))
    assert len(replies) == len(sent)
    for frame, reply in zip(sent, replies):
        new_frame = cv2.imdecode(np.frombuffer(reply.Output, np.uint8), cv2.IMREAD_COLOR)
        assert new_frame.shape == frame.shape and psnr(frame, new_frame) > 30
