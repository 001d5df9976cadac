"""Uploads for the crash harness, one class per protocol. Each keeps what the server
acknowledged (an offset, stored chunks, a finished file), takes one request per
`advance`, and after a restart checks with `verify` that everything acknowledged is
still there before carrying on from the server's own offset.

Any request may die with the server; the harness catches that. What a client saw in a
response is recorded only after the response arrived, so an acknowledgement is never
assumed."""

import hashlib
from urllib.parse import urlencode, urlsplit

TUS = {"Tus-Resumable": "1.0.0"}
TIMEOUT = 30


class Lost(AssertionError):
    """An acknowledged byte or file the server can no longer serve."""


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def path_of(url):
    return urlsplit(url).path


class Upload:
    protocol = "?"

    def __init__(self, rng, max_size, data=None):
        if data is None:
            size = rng.choice([0, 1, rng.randrange(2, 300_000), rng.randrange(300_000, max_size)])
            data = rng.randbytes(max(size, self.min_size()))
        self.data = data
        self.size = len(data)
        self.rng = rng
        self.phase = "create"
        self.finished = False  # the server said the whole file is stored
        self.download = None  # its path, once known

    def min_size(self):
        return 0

    def check_download(self, s, base):
        r = s.get(base + self.download, timeout=TIMEOUT)
        if r.status_code != 200 or sha256(r.content) != sha256(self.data):
            raise Lost(f"{self.protocol} {self.download}: {r.status_code}, {len(r.content)} of {self.size} bytes, sha256 differs")

    def chunk_end(self, offset):
        return min(self.size, offset + self.rng.choice([64 << 10, 512 << 10, 2 << 20, 8 << 20]))


class Tus(Upload):
    protocol = "tus"

    def __init__(self, rng, max_size, concat=None, data=None):
        super().__init__(rng, max_size, data)
        self.url = None
        self.acked = 0
        self.offset = 0
        self.concat = concat

    def create_headers(self):
        headers = {**TUS, "Upload-Length": str(self.size)}
        if self.concat:
            headers["Upload-Concat"] = self.concat
        return headers

    def advance(self, s, base):
        if self.url is None:
            self.phase = "create"
            r = s.post(base + "/files/", headers=self.create_headers(), timeout=TIMEOUT)
            assert r.status_code == 201, (r.status_code, r.text)
            self.url = path_of(r.headers["Location"])
            self.download = self.url
            self.finished = self.size == 0
            return
        end = self.chunk_end(self.offset)
        self.phase = "finish" if end == self.size else "body"
        r = s.patch(
            base + self.url,
            data=self.data[self.offset : end],
            headers={**TUS, "Upload-Offset": str(self.offset), "Content-Type": "application/offset+octet-stream"},
            timeout=TIMEOUT,
        )
        if r.status_code == 409:  # a checkpoint past what this client last heard
            self.offset = self.server_offset(s, base)
            return
        assert r.status_code == 204, (r.status_code, r.text)
        self.offset = self.acked = int(r.headers["Upload-Offset"])
        self.finished = self.acked == self.size

    def server_offset(self, s, base):
        r = s.head(base + self.url, headers=TUS, timeout=TIMEOUT)
        if r.status_code != 200:
            raise Lost(f"tus {self.url}: HEAD {r.status_code} after {self.acked} acknowledged bytes")
        return int(r.headers["Upload-Offset"])

    def verify(self, s, base):
        if self.url is None:
            return
        offset = self.server_offset(s, base)
        if not self.acked <= offset <= self.size:
            raise Lost(f"tus {self.url}: offset {offset}, {self.acked} acknowledged of {self.size}")
        if self.finished and self.concat != "partial":
            self.check_download(s, base)
        self.offset = offset
        self.finished = offset == self.size


class TusConcat(Upload):
    """Two partial uploads, then a final that concatenates them."""

    protocol = "tus-concat"

    def __init__(self, rng, max_size):
        super().__init__(rng, max_size)
        cut = rng.randrange(0, self.size + 1)
        self.parts = [Tus(rng, 0, "partial", d) for d in (self.data[:cut], self.data[cut:])]
        self.final = None

    def advance(self, s, base):
        for part in self.parts:
            if not part.finished:
                part.advance(s, base)
                self.phase = part.phase
                return
        self.phase = "concat"
        urls = " ".join(p.url for p in self.parts)
        r = s.post(base + "/files/", headers={**TUS, "Upload-Concat": f"final;{urls}"}, timeout=TIMEOUT)
        assert r.status_code == 201, (r.status_code, r.text)
        self.final = self.download = path_of(r.headers["Location"])
        self.finished = True

    def verify(self, s, base):
        for part in self.parts:
            part.verify(s, base)
        if self.finished:
            self.check_download(s, base)


class Ietf(Upload):
    protocol = "ietf"

    def __init__(self, rng, max_size):
        super().__init__(rng, max_size)
        self.url = None
        self.acked = 0
        self.offset = 0

    def advance(self, s, base):
        if self.url is None:
            self.phase = "create"
            complete = "?1" if self.size == 0 else "?0"
            r = s.post(base + "/uploads", headers={"Upload-Complete": complete}, data=b"", timeout=TIMEOUT)
            assert r.status_code in (200, 201), (r.status_code, r.text)
            self.url = path_of(r.headers["Location"])
            self.download = "/files/" + self.url.rstrip("/").split("/")[-1]
            self.finished = self.size == 0
            return
        end = self.chunk_end(self.offset)
        last = end == self.size
        self.phase = "finish" if last else "body"
        r = s.patch(
            base + self.url,
            data=self.data[self.offset : end],
            headers={
                "Upload-Offset": str(self.offset),
                "Upload-Complete": "?1" if last else "?0",
                "Content-Type": "application/partial-upload",
            },
            timeout=TIMEOUT,
        )
        if r.status_code == 409:
            self.offset = self.server_offset(s, base)
            return
        assert r.status_code in (200, 201, 204), (r.status_code, r.text)
        self.offset = self.acked = int(r.headers["Upload-Offset"])
        self.finished = last and self.acked == self.size

    def server_state(self, s, base):
        r = s.head(base + self.url, timeout=TIMEOUT)
        if r.status_code not in (200, 204):
            raise Lost(f"ietf {self.url}: HEAD {r.status_code} after {self.acked} acknowledged bytes")
        return int(r.headers["Upload-Offset"]), r.headers.get("Upload-Complete") == "?1"

    def server_offset(self, s, base):
        return self.server_state(s, base)[0]

    def verify(self, s, base):
        if self.url is None:
            return
        offset, complete = self.server_state(s, base)
        if not self.acked <= offset <= self.size or (self.finished and not complete):
            raise Lost(f"ietf {self.url}: offset {offset} (complete: {complete}), {self.acked} acknowledged of {self.size}")
        # A completing PATCH cut after its bytes leaves offset == size, not complete: the
        # next advance sends it again, empty.
        self.offset = offset
        self.finished = complete
        if complete:
            self.check_download(s, base)


class Resumable(Upload):
    """Resumable.js in `octet` mode: parameters in the query, chunks in any order."""

    protocol = "resumablejs"

    def __init__(self, rng, max_size):
        super().__init__(rng, max_size)
        self.chunk = rng.choice([64 << 10, 256 << 10, 1 << 20])
        self.total = max(1, self.size // self.chunk)
        self.ident = f"{self.size}-{rng.getrandbits(64):x}"
        self.pending = list(range(1, self.total + 1))
        rng.shuffle(self.pending)
        self.acked = set()

    def span(self, n):
        start = (n - 1) * self.chunk
        end = self.size if n == self.total else start + self.chunk
        return start, end

    def params(self, n):
        start, end = self.span(n)
        return urlencode({
            "resumableChunkNumber": n, "resumableChunkSize": self.chunk,
            "resumableCurrentChunkSize": end - start, "resumableTotalSize": self.size,
            "resumableTotalChunks": self.total, "resumableIdentifier": self.ident,
            "resumableFilename": "crash.bin", "resumableType": "application/octet-stream",
        })

    def advance(self, s, base):
        n = self.pending[0]
        start, end = self.span(n)
        self.phase = "assemble" if len(self.pending) == 1 else "body"
        r = s.post(f"{base}/resumable?{self.params(n)}", data=self.data[start:end], timeout=TIMEOUT)
        assert r.status_code == 200, (r.status_code, r.text)
        self.acked.add(n)
        self.pending.pop(0)
        body = r.json()
        if body["complete"]:
            self.download = f"/files/{body['id']}"
            self.finished = True
        elif not self.pending:
            st = s.get(f"{base}/resumable/status?{self.params(1)}", timeout=TIMEOUT).text
            raise AssertionError(f"resumablejs {self.ident}: every chunk sent, answered {body}; status {st}; acked {sorted(self.acked)}")

    def verify(self, s, base):
        r = s.get(f"{base}/resumable/status?{self.params(1)}", timeout=TIMEOUT)
        assert r.status_code == 200, (r.status_code, r.text)
        body = r.json()
        if body["complete"]:
            self.download = f"/files/{body['id']}"
            self.finished = True
            self.pending = []
            self.check_download(s, base)
            return
        if self.finished:
            raise Lost(f"resumablejs {self.ident}: acknowledged as complete, now {body}")
        stored = set(body["chunks"])
        if not self.acked <= stored:
            raise Lost(f"resumablejs {self.ident}: chunks {sorted(self.acked - stored)} acknowledged, not stored")
        self.pending = [n for n in range(1, self.total + 1) if n not in stored] or [self.total]


class ContentRange(Upload):
    """The drf-chunked-upload contract: PUT chunks to the upload's URL, POST the md5."""

    protocol = "content-range"

    def __init__(self, rng, max_size):
        super().__init__(rng, max_size)
        self.url = None
        self.acked = 0
        self.offset = 0

    def min_size(self):
        return 1  # Content-Range cannot describe an empty chunk

    def advance(self, s, base):
        if self.offset == self.size:
            self.phase = "finish"
            md5 = hashlib.md5(self.data).hexdigest()
            r = s.post(base + self.url, data={"md5": md5}, timeout=TIMEOUT)
            assert r.status_code == 200 and r.json()["status"] == "complete", (r.status_code, r.text)
            self.download = self.url + "/content"
            self.finished = True
            return
        end = self.chunk_end(self.offset)
        self.phase = "create" if self.url is None else "body"
        r = s.put(
            base + (self.url or "/chunked"),
            files={"file": ("crash.bin", self.data[self.offset : end])},
            headers={"Content-Range": f"bytes {self.offset}-{end - 1}/{self.size}"},
            timeout=TIMEOUT,
        )
        if r.status_code == 400 and "offset" in r.json():
            self.offset = r.json()["offset"]
            return
        assert r.status_code == 200, (r.status_code, r.text)
        self.url = path_of(r.json()["url"])
        self.offset = self.acked = r.json()["offset"]

    def verify(self, s, base):
        if self.url is None:
            return
        r = s.get(base + self.url, timeout=TIMEOUT)
        if r.status_code != 200:
            raise Lost(f"content-range {self.url}: GET {r.status_code} after {self.acked} acknowledged bytes")
        offset, complete = r.json()["offset"], r.json()["status"] == "complete"
        if not self.acked <= offset <= self.size or (self.finished and not complete):
            raise Lost(f"content-range {self.url}: offset {offset} ({r.json()['status']}), {self.acked} acknowledged of {self.size}")
        self.offset = offset
        if complete:
            self.download = self.url + "/content"
            self.finished = True
            self.check_download(s, base)


class Form(Upload):
    """One multipart POST; not resumable, so only a stored (answered) file must stay."""

    protocol = "form"

    def advance(self, s, base):
        self.phase = "form"
        r = s.post(base + "/upload", files={"file": ("crash.bin", self.data)}, timeout=TIMEOUT)
        assert r.status_code == 200, (r.status_code, r.text)
        self.download = path_of(r.json()["files"][0]["url"])
        self.finished = True

    def verify(self, s, base):
        if self.finished:
            self.check_download(s, base)


PROTOCOLS = [Tus, TusConcat, Ietf, Resumable, ContentRange, Form]

