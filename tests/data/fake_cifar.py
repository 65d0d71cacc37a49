"""Builders of CIFAR-10 archives in the publisher's format, at a tiny size, and a local
HTTP server (127.0.0.1 only) that serves them, whole or truncated."""

from __future__ import annotations

import hashlib
import http.server
import io
import pickle
import socket
import tarfile
import threading
from pathlib import Path

import numpy as np

FOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
N_PER_BATCH = 20


def make_batches(seed: int = 0, n: int = N_PER_BATCH) -> dict[str, dict[bytes, object]]:
    """The dicts the real batch files hold: b"data" a uint8 (n, 3072) array in
    channel-major order, b"labels" a list of ints in 0..9, plus b"batch_label" and
    b"filenames" as in the real files."""
    rng = np.random.default_rng(seed)
    batches = {}
    for name in (*TRAIN_BATCHES, "test_batch"):
        batches[name] = {
            b"batch_label": f"{name} of the fake set".encode(),
            b"labels": [int(v) for v in rng.integers(0, 10, size=n)],
            b"data": rng.integers(0, 256, size=(n, 3072), dtype=np.uint8),
            b"filenames": [f"img_{i}.png".encode() for i in range(n)],
        }
    return batches


def meta() -> dict[bytes, object]:
    names = [b"airplane", b"automobile", b"bird", b"cat", b"deer"]
    names += [b"dog", b"frog", b"horse", b"ship", b"truck"]
    return {b"num_cases_per_batch": N_PER_BATCH, b"label_names": names, b"num_vis": 3072}


def expected_arrays(batches, split: str) -> tuple[np.ndarray, np.ndarray]:
    """The (N, 32, 32, 3) uint8 images and (N,) labels a split should parse to,
    computed pixel by pixel from the channel-major rows (independently of reshape)."""
    names = TRAIN_BATCHES if split == "train" else ("test_batch",)
    rows = np.concatenate([batches[k][b"data"] for k in names])
    labels = np.concatenate([batches[k][b"labels"] for k in names]).astype(np.int64)
    images = np.empty((rows.shape[0], 32, 32, 3), dtype=np.uint8)
    for c in range(3):
        images[..., c] = rows[:, c * 1024 : (c + 1) * 1024].reshape(-1, 32, 32)
    return images, labels


def write_folder(parent: Path, batches) -> Path:
    """A torchvision-style extracted folder parent/cifar-10-batches-py."""
    folder = parent / FOLDER
    folder.mkdir(parents=True)
    for name, batch in batches.items():
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    (folder / "batches.meta").write_bytes(pickle.dumps(meta(), protocol=2))
    (folder / "readme.html").write_bytes(b"<html></html>")
    return folder


def _add(tar: tarfile.TarFile, name: str, data: bytes, **fields) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    for key, value in fields.items():
        setattr(info, key, value)
    tar.addfile(info, io.BytesIO(data) if info.isfile() else None)


def make_archive(batches, *, extra: list[tarfile.TarInfo] | None = None, replace=None) -> bytes:
    """A .tar.gz with the publisher's layout (the folder entry, then its files).

    Args:
        extra: further members (e.g. hostile ones), added after the real ones.
        replace: a dict {file name: bytes} overriding a batch's pickled content.
    """
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        folder = tarfile.TarInfo(FOLDER)
        folder.type, folder.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(folder)
        contents = {name: pickle.dumps(batch, protocol=2) for name, batch in batches.items()}
        contents["batches.meta"] = pickle.dumps(meta(), protocol=2)
        contents["readme.html"] = b"<html></html>"
        contents.update(replace or {})
        for name, data in contents.items():
            _add(tar, f"{FOLDER}/{name}", data)
        for info in extra or []:
            tar.addfile(info, io.BytesIO(b"x" * info.size) if info.isfile() else None)
    return buffer.getvalue()


def md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


class LocalServer:
    """An HTTP server on 127.0.0.1 (port chosen by the OS) serving registered bodies.

    ``serve(path, body, send=k)`` announces ``Content-Length: len(body)`` but sends only
    the first k bytes and closes the connection (a truncated download).
    """

    def __init__(self) -> None:
        routes: dict[str, tuple[bytes, int]] = {}
        self.routes = routes

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path not in routes:
                    self.send_error(404)
                    return
                body, send = routes[self.path]
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[:send])
                self.wfile.flush()
                self.close_connection = True

            def log_message(self, *args) -> None:  # keep test output quiet
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def serve(self, path: str, body: bytes, *, send: int | None = None) -> str:
        self.routes[path] = (body, len(body) if send is None else send)
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


def closed_port_url() -> str:
    """A URL on 127.0.0.1 whose port was just bound and closed: connections are refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/cifar-10-python.tar.gz"
