"""The page's HTTP API end to end with a tiny network: a photo and a clip with sound stylized, every bad upload
refused in one line with nothing left behind, path tricks, cancel, a crashing job, a restart, the token."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nst.errors import NSTError
from nst.io.video import open_video
from nst.web.settings import WebSettings
from tests.helpers import make_image
from tests.io.helpers import audio_seconds, write_clip
from tests.web.conftest import post_job, wait

pytestmark = pytest.mark.usefixtures("one_thread")


def _image(content: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(content)).convert("RGB"))


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def test_photo_keeps_its_size_and_gets_a_side_by_side(serve, tmp_path: Path) -> None:
    client = serve()
    photo = make_image(tmp_path / "photo.png", (64, 48))
    response = post_job(client, photo, name="../../etc/passwd.png", method="fast", side_by_side="true")
    assert response.status_code == 201, response.text
    job = wait(client, response.json()["id"])
    assert job["status"] == "done", job["error"]
    assert job["name"] == "passwd.png" and job["progress"]["done"] == job["progress"]["total"] == 1
    result = client.get(f"/api/jobs/{job['id']}/result")
    stylized = _image(result.content)
    assert stylized.shape == (48, 64, 3) and np.abs(stylized.astype(int) - _image(photo.read_bytes())).mean() > 5
    pair = _image(client.get(f"/api/jobs/{job['id']}/result", params={"view": "side_by_side"}).content)
    assert pair.shape == (48, 128, 3) and np.array_equal(pair[:, 64:], stylized)
    download = client.get(f"/api/jobs/{job['id']}/result", params={"download": 1})
    assert download.headers["content-disposition"].startswith("attachment") and download.content == result.content
    assert _leftovers(tmp_path / "web") == [job["id"]] and not (tmp_path.parent / "etc").exists()
    kept = wait(client, post_job(client, photo, method="fast", preserve_color="true").json()["id"])
    coloured = _image(client.get(f"/api/jobs/{kept['id']}/result").content)
    assert np.abs(_chroma(coloured) - _chroma(_image(photo.read_bytes()))).mean() < 0.5 * np.abs(
        _chroma(stylized) - _chroma(_image(photo.read_bytes()))).mean()  # the photo's colours, the network's strokes


def _chroma(rgb: np.ndarray) -> np.ndarray:
    """The I and Q channels of YIQ (what colour preservation keeps of the photo)."""
    r, g, b = (rgb[..., c] / 255.0 for c in range(3))
    return np.stack([0.596 * r - 0.274 * g - 0.322 * b, 0.211 * r - 0.523 * g + 0.312 * b])


def test_clip_keeps_its_frames_size_and_sound_and_is_measured(serve, tmp_path: Path) -> None:
    client = serve()
    clip = write_clip(tmp_path / "clip.mp4", frames=4, size=(64, 48), fps=4)
    probe = client.post("/api/probe", files={"input": ("clip.mp4", clip.read_bytes())}).json()
    assert (probe["kind"], probe["frames"], probe["seconds"], probe["has_audio"]) == ("video", 4, 1.0, True)
    job = wait(client, post_job(client, clip, method="fast", metrics="true").json()["id"])
    assert job["status"] == "done", job["error"]
    assert job["progress"]["done"] == 4 and job["metrics"]["warp_error_input"] > 0
    out = tmp_path / "result.mp4"
    out.write_bytes(client.get(f"/api/jobs/{job['id']}/result").content)
    with open_video(out) as video:
        assert (video.frame_count, video.width, video.height, video.has_audio) == (4, 64, 48, True)
    assert abs(audio_seconds(out) - 1.0) < 0.05


def test_optimize_a_clip_with_the_consistent_method(serve, tmp_path: Path) -> None:
    client = serve()
    clip = write_clip(tmp_path / "clip.mp4", frames=2, size=(64, 48), fps=2)
    job = wait(client, post_job(client, clip, method="optimize", style="udnie", iterations=2).json()["id"], 120)
    assert job["status"] == "done", job["error"]
    assert (job["unit"], job["progress"]["done"], job["progress"]["total"]) == ("frame", 2, 2)
    out = tmp_path / "result.mp4"
    out.write_bytes(client.get(f"/api/jobs/{job['id']}/result").content)
    with open_video(out) as video:  # optimize.py's consistent method, at the clip's own size, with its sound
        assert (video.frame_count, video.width, video.height, video.has_audio) == (2, 64, 48, True)
    assert "method: consistent" in (tmp_path / "web" / job["id"] / "config.yaml").read_text()


def test_optimize_a_photo_with_a_blend_and_cancel_a_long_one(serve, tmp_path: Path) -> None:
    client = serve()
    photo = make_image(tmp_path / "photo.jpg", (48, 40))
    quick = post_job(client, photo, method="optimize", style="udnie", style2="great_wave", blend="0.3", iterations=2)
    assert quick.json()["style"] == "udnie 70% + great_wave 30%"
    long = post_job(client, photo, method="optimize", style="udnie", iterations=5000).json()["id"]
    job = wait(client, quick.json()["id"])
    assert job["status"] == "done" and _image(client.get(f"/api/jobs/{job['id']}/result").content).shape == (40, 48, 3)
    cfg = (tmp_path / "web" / job["id"] / "config.yaml").read_text()
    assert "great_wave.jpg" in cfg and "- 0.3" in cfg  # optimize.py's own style.image list and blend
    wait(client, long, until=lambda r: (r["progress"] or {}).get("done", 0) >= 2)
    assert client.delete(f"/api/jobs/{long}").json()["cancelled"] is True
    record = wait(client, long, timeout=20)
    assert record["status"] == "cancelled" and record["progress"]["done"] < 5000
    assert client.get(f"/api/jobs/{long}/result").status_code == 409
    assert not list((tmp_path / "web" / long).glob("result*"))
    assert client.delete(f"/api/jobs/{long}").json()["removed"] is True and not (tmp_path / "web" / long).exists()


def _bad_files(tmp: Path) -> dict[str, tuple[str, bytes]]:
    png = make_image(tmp / "ok.png", (64, 48)).read_bytes()
    clip = write_clip(tmp / "ok.mp4", frames=4, fps=4).read_bytes()
    return {
        "text named .mp4": ("clip.mp4", b"just some words, not a video\n" * 20),
        "empty": ("photo.jpg", b""),
        "truncated png": ("photo.png", png[: len(png) // 2]),
        "corrupt mp4": ("clip.mp4", clip[:32] + bytes(2000)),
        "tiny picture": ("dot.png", _png((4, 4))),
    }


def _png(size: tuple[int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buffer, "PNG")
    return buffer.getvalue()


def test_bad_uploads_are_one_line_4xx_and_leave_nothing(serve, tmp_path: Path) -> None:
    client = serve()
    answers = {}
    for case, (name, content) in _bad_files(tmp_path).items():
        response = client.post("/api/jobs", files={"input": (name, content)}, data={"method": "fast"})
        answers[case] = (response.status_code, response.json()["error"])
    photo = make_image(tmp_path / "p.png", (64, 48))
    answers["unknown style"] = _refused(post_job(client, photo, method="optimize", style="mona_lisa"))
    answers["painting for fast"] = _refused(post_job(client, photo, method="fast", painting=photo))
    answers["no file"] = _refused(client.post("/api/jobs", data={"method": "fast"}))
    answers["bad number"] = _refused(post_job(client, photo, method="fast", max_size="big"))
    assert answers["text named .mp4"] == (415, "the file is not a photo (JPEG, PNG, WebP) or a video (MP4, MOV, "
                                                 "WebM, GIF), whatever its name says")
    assert answers["empty"][0] == 400 and "empty" in answers["empty"][1]
    assert answers["truncated png"][0] == 400 and "cannot be decoded" in answers["truncated png"][1]
    assert answers["corrupt mp4"][0] == 400 and "not a readable video" in answers["corrupt mp4"][1]
    assert answers["tiny picture"][0] == 400 and "4x4" in answers["tiny picture"][1]
    assert answers["unknown style"] == (400, "unknown style 'mona_lisa'; choose one of composition_vii, great_wave, "
                                             "impression_sunrise, raft_of_the_medusa, starry_night, udnie")
    assert "method=optimize" in answers["painting for fast"][1] and "'input'" in answers["no file"][1]
    assert answers["bad number"] == (400, "max_size='big' is not a number")
    for status, line in answers.values():
        assert 400 <= status < 500 and "\n" not in line and str(tmp_path) not in line
    assert _leftovers(tmp_path / "web") == [] and client.get("/api/jobs").json()["jobs"] == []


def _refused(response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]


def test_limits_on_bytes_pixels_and_length(serve, tmp_path: Path) -> None:
    client = serve(max_upload_mb=0.02, max_pixels=64 * 48, max_video_seconds=0.5)
    big = make_image(tmp_path / "big.png", (100, 100))  # 30 kB of noise, 10000 pixels
    assert _refused(client.post("/api/probe", files={"input": ("big.png", big.read_bytes())})) == (
        413, "the file is larger than this server's limit of 0.02 MB")
    wide = make_image(tmp_path / "wide.jpg", (80, 48))
    status, line = _refused(client.post("/api/probe", files={"input": ("wide.jpg", wide.read_bytes())}))
    assert status == 413 and "80x48" in line and "megapixels" in line
    clip = write_clip(tmp_path / "clip.mp4", frames=4, fps=4, audio=False)
    assert _refused(client.post("/api/probe", files={"input": ("c.mp4", clip.read_bytes())}))[1].startswith(
        "the file lasts 1 s, longer than this server's limit of 0 s")
    form = {"content-type": "multipart/form-data; boundary=b"}  # the body: a photo and a painting, and 1 MB more
    huge = client.post("/api/jobs", content=b"x" * 1_200_000, headers=form)
    assert _refused(huge) == (413, "the upload is larger than this server's limit of 0.02 MB")
    streamed = client.post("/api/jobs", content=iter([b"x" * 400_000] * 3), headers=form)  # no Content-Length
    assert _refused(streamed) == (413, "the upload is larger than this server's limit of 0.02 MB")
    assert _leftovers(tmp_path / "web") == []


def test_unknown_ids_and_paths_outside_the_jobs_are_not_found(serve, tmp_path: Path) -> None:
    client = serve()
    (tmp_path / "secret.txt").write_text("secret")
    for path in ["/api/jobs/0123456789abcdef0123456789abcdef", "/api/jobs/..%2F..%2Fsecret.txt/result",
                 "/api/jobs/../../secret.txt", "/api/jobs/%2e%2e/result?view=../../secret.txt",
                 "/api/styles/..%2F..%2Fpyproject.toml/thumbnail", "/static/../../pyproject.toml"]:
        response = client.get(path)
        assert response.status_code == 404, path
        assert b"secret" not in response.content and b"[project]" not in response.content
    assert client.delete("/api/jobs/0123456789abcdef0123456789abcdef").status_code == 404


def test_a_crash_is_one_line_and_the_next_job_runs_and_a_restart_keeps_the_list(serve, tmp_path: Path,
                                                                                monkeypatch) -> None:
    import nst.web.runner

    real = nst.web.runner.infer
    monkeypatch.setattr(nst.web.runner, "infer", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("boom\nmore")))
    client = serve()
    photo = make_image(tmp_path / "photo.png", (64, 48))
    crashed = wait(client, post_job(client, photo, method="fast").json()["id"])
    assert (crashed["status"], crashed["error"]) == ("failed", "RuntimeError: boom")
    assert "Traceback" in (tmp_path / "web" / crashed["id"] / "error.txt").read_text()
    monkeypatch.setattr(nst.web.runner, "infer", real)
    done = wait(client, post_job(client, photo, method="fast").json()["id"])
    assert done["status"] == "done"
    record = tmp_path / "web" / done["id"] / "job.json"  # as if the server had stopped in the middle of it
    record.write_text(json.dumps({**json.loads(record.read_text()), "status": "running"}))

    again = serve()
    jobs = {job["id"]: job for job in again.get("/api/jobs").json()["jobs"]}
    assert list(jobs) == [done["id"], crashed["id"]]  # newest first
    assert jobs[done["id"]]["status"] == "failed" and "server stopped" in jobs[done["id"]]["error"]
    assert jobs[crashed["id"]]["error"] == "RuntimeError: boom"


def test_no_network_offers_only_optimize(serve, tmp_path: Path) -> None:
    client = serve(weights=tmp_path / "weights")
    styles = client.get("/api/styles").json()
    assert styles["fast"] is False and "only optimize" in styles["fast_message"] and len(styles["styles"]) == 6
    photo = make_image(tmp_path / "photo.png", (64, 48))
    assert _refused(post_job(client, photo, method="fast"))[0] == 400
    assert client.get("/api/styles/udnie/thumbnail").headers["content-type"] == "image/jpeg"


def test_token_host_and_origin(serve) -> None:
    with pytest.raises(NSTError, match="token"):
        WebSettings(jobs_dir=Path("x"), styles_dir=Path("x"), host="0.0.0.0").check()
    open_client = serve(host="0.0.0.0", token="s3cret")
    assert open_client.get("/api/jobs").status_code == 401
    assert open_client.get("/api/jobs", headers={"X-NST-Token": "s3cret"}).status_code == 200
    assert open_client.get("/api/jobs", params={"token": "s3cret"}).status_code == 200
    assert open_client.get("/api/jobs", params={"token": "wrong"}).status_code == 401
    assert open_client.get("/").status_code == 200  # the page itself holds nothing: it asks for the token
    local = serve()
    assert local.get("/api/jobs", headers={"host": "evil.example:8000"}).status_code == 403
    assert local.delete("/api/jobs/0123456789abcdef0123456789abcdef",
                        headers={"origin": "http://evil.example"}).status_code == 403
