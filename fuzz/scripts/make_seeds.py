#!/usr/bin/env python3
"""Write the small seed corpora under fuzz/corpus/TARGET/seed-*.

Seeds are valid (and a few nearly valid) inputs in each target's own layout, so
libFuzzer starts from the interesting part of the input space. Run from anywhere;
re-running rewrites the same files. Regression inputs (seed-regress-*) are added
by hand next to these, and seed-found-* are a few inputs kept from a fuzz run (for
targets whose `arbitrary` layout is hard to write by hand); neither is touched here.
"""
import hashlib
import os
import struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "corpus")


def ben(v):
    """Canonical bencode: dict keys sorted as raw bytes."""
    if isinstance(v, int):
        return b"i%de" % v
    if isinstance(v, str):
        v = v.encode()
    if isinstance(v, bytes):
        return b"%d:%s" % (len(v), v)
    if isinstance(v, list):
        return b"l" + b"".join(ben(x) for x in v) + b"e"
    if isinstance(v, dict):
        items = sorted(((k.encode() if isinstance(k, str) else k), x) for k, x in v.items())
        return b"d" + b"".join(ben(k) + ben(x) for k, x in items) + b"e"
    raise TypeError(v)


def write(target, name, data):
    folder = os.path.join(ROOT, target)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "seed-" + name), "wb") as f:
        f.write(data)


def torrent(name, files, piece_length, announce=None):
    """files: list of (path components, content bytes)."""
    data = b"".join(c for _, c in files)
    pieces = b"".join(
        hashlib.sha1(data[i : i + piece_length]).digest()
        for i in range(0, len(data), piece_length)
    )
    info = {
        "files": [
            {"length": len(c), "path": p, "sha256": hashlib.sha256(c).digest()}
            for p, c in files
        ],
        "name": name,
        "piece length": piece_length,
        "pieces": pieces,
        "private": 1,
    }
    top = {"info": info}
    if announce:
        top["announce"] = announce
    return ben(top)


def metainfo():
    one = torrent("app:1.0", [(["app.bin"], b"x" * 40000)], 16384)
    write("metainfo", "one-file", one)
    write(
        "metainfo",
        "two-files-announce",
        torrent(
            "os:24.04",
            [(["etc", "conf"], b"a" * 100), (["empty"], b""), (["big"], b"b" * 20000)],
            16384,
            announce="https://hub.example:7070/announce",
        ),
    )
    # Nearly valid: not private, and a path that climbs out.
    write("metainfo", "not-private", one.replace(b"7:privatei1e", b"7:privatei0e"))
    write(
        "metainfo",
        "dotdot-path",
        torrent("x:1", [(["..", "evil"], b"z" * 10)], 16384),
    )


def wire():
    hs = bytes([19]) + b"BitTorrent protocol" + bytes(5) + b"\x10" + bytes(2)
    hs += b"\xab" * 20 + b"-SH0100-abcdefghijkl"
    ext = ben({"m": {}, "p": 6881, "reqq": 250, "v": "swarmhub 0.1", "swarmhub_epoch": 3})
    msgs = b"".join(
        [
            struct.pack(">IB", len(ext) + 2, 20) + b"\x00" + ext,
            struct.pack(">I", 0),  # keep-alive
            struct.pack(">IBB", 2, 5, 0xE0),  # bitfield, 3 pieces
            struct.pack(">IB", 1, 2),  # interested
            struct.pack(">IB", 1, 1),  # unchoke
            struct.pack(">IBI", 5, 4, 2),  # have 2
            struct.pack(">IBIII", 13, 6, 1, 0, 16384),  # request
            struct.pack(">IBII", 9 + 4, 7, 1, 0) + b"data",  # piece
            struct.pack(">IBIII", 13, 8, 1, 0, 16384),  # cancel
            struct.pack(">IBB", 5, 20, 3) + b"abc",  # other extended message
        ]
    )
    # Layout of the target's `Input`: handshake flag, Option<u16> num_pieces
    # (tag, little-endian u16), splits (continue flag + length)*, 0, stream.
    def layout(handshake, num_pieces, splits, stream):
        out = bytes([1 if handshake else 0])
        out += b"\x00" if num_pieces is None else b"\x01" + struct.pack("<H", num_pieces)
        for s in splits:
            out += bytes([1, s])
        return out + b"\x00" + stream

    write("wire_decoder", "handshake-then-all", layout(True, 3, [1, 67, 5, 30, 200], hs + msgs))
    write("wire_decoder", "messages-byte-by-byte", layout(False, None, [1] * 40, msgs))
    write("wire_decoder", "bad-bitfield", layout(False, 9, [], struct.pack(">IBB", 2, 5, 0xFF)))
    write("extended_handshake", "ours", ext)
    write("extended_handshake", "empty-m", b"d1:mdee")
    write(
        "extended_handshake",
        "stock-client",
        ben(
            {
                "m": {"ut_metadata": 3, "ut_pex": 1},
                "p": 70000,
                "reqq": -1,
                "v": "rqbit",
                "yourip": b"\x7f\x00\x00\x01",
                "upload_only": 1,
                "swarmhub_super_seed": 1,
            }
        ),
    )


def tracker():
    ih = "%AB" * 20
    pid = "-SH0100-abcdefghijkl"
    announce = (
        f"info_hash={ih}&peer_id={pid}&port=6881&uploaded=0&downloaded=0"
        "&left=1000&compact=1&event=started&numwant=50"
    )
    write("tracker_query", "announce-v4", b"\x00" + announce.encode())
    write(
        "tracker_query",
        "announce-mapped-stock",
        b"\x02" + (announce + "&key=1a2b3c&ip=1.2.3.4&supportcrypto=1").encode(),
    )
    write("tracker_query", "scrape", b"\x01" + f"info_hash={ih}&info_hash={'x' * 20}".encode())
    peers = bytes([10, 0, 0, 1, 0x1A, 0xE1, 10, 0, 0, 2, 0x1A, 0xE2])
    peers6 = bytes(15) + b"\x01" + b"\x1a\xe1"
    write(
        "tracker_response",
        "announce",
        ben(
            {
                "complete": 1,
                "incomplete": 2,
                "interval": 1800,
                "min interval": 900,
                "peers": peers,
                "peers6": peers6,
                "swarmhub epoch": 3,
                "swarmhub revoked": ["alice", "bob"],
            }
        ),
    )
    write("tracker_response", "failure", ben({"failure reason": "not authenticated"}))
    stats = {
        "complete": 1,
        "incomplete": 2,
        "downloaded": 3,
        "swarmhub uploaded bytes": 4,
        "swarmhub downloaded bytes": 5,
    }
    write("tracker_response", "scrape", ben({"files": {b"\xab" * 20: stats, b"\x01" * 20: {}}}))


def scan():
    write("bencode_scan", "nested", b"\x20" + ben({"a": [1, -2, "x", {"b": []}], "c": 0}))
    write("bencode_scan", "torrent", b"\x05" + torrent("a:b", [(["f"], b"q")], 16384))
    write("bencode_scan", "deep-list", b"\x03" + b"l" * 5 + b"e" * 5)
    write("bencode_scan", "unsorted", b"\x10" + b"d1:bi1e1:ai2ee")
    write("bencode_scan", "long-int", b"\x10" + b"i99999999999999999999e")


def small_text():
    for i, r in enumerate(["bytes=0-99", " bytes= 5 - 10 ", "bytes=7-7", "bytes=0-"]):
        write("http_range", f"{i}", r.encode())
    for i, n in enumerate(["ubuntu:24.04", "my_app-x:1.2.3-rc_1", "a:b", "../x:1", "a:b:c"]):
        write("image_name", f"{i}", n.encode())


def scenarios():
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scenarios")
    for name in ["flash-crowd.toml", "churn.toml", "multi-site.toml", "heterogeneous.toml"]:
        with open(os.path.join(src, name), "rb") as f:
            write("scenario", name.removesuffix(".toml"), f.read())


if __name__ == "__main__":
    metainfo()
    wire()
    tracker()
    scan()
    small_text()
    scenarios()
