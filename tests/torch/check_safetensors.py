#!/usr/bin/env python3
"""Checks nabla's safetensors files against an independent reader and writer.

    check_safetensors.py NABLA_FILE OUT_FILE

1. Parses NABLA_FILE (written by tests/test_safetensors.c, make_writer()) with
   nothing but json, numpy and torch.frombuffer, and checks the layout nabla
   promises (8-byte little-endian length, header padded with spaces to a
   multiple of 8, metadata first with sorted keys, tensors contiguous in the
   order added) and every value.
2. Writes OUT_FILE with its own small writer for nabla to read back
   (check_python_file() in the C test): an unpadded, indented header with
   ASCII-only escapes (\\uXXXX, surrogate pairs), tensors listed in another
   order than their data, and an int64 tensor at an offset that is not a
   multiple of 8.
3. When the `safetensors` package is importable, also loads NABLA_FILE with
   it and writes OUT_FILE.ref with it.

Exit status: 0 passed, 1 failed, 2 numpy or torch is missing (skipped).
"""
import json
import struct
import sys

try:
    import numpy as np
    import torch
except ImportError as e:  # pragma: no cover - depends on the machine
    print("skip: %s" % e)
    sys.exit(2)

NOTE = ("quote \" backslash \\ newline \n tab \t ctrl \x01 e-acute \u00e9 "
        "nihon \u65e5\u672c smile \U0001F642 end")

DT = {"F32": (np.dtype("<f4"), torch.float32, 4), "I64": (np.dtype("<i8"), torch.int64, 8)}


def expected():
    """The tensors of make_writer() in tests/test_safetensors.c, in order."""
    f32 = np.float32
    return [
        ("w", "F32", [2, 3], np.array([f32(i) * f32(0.25) - f32(1) for i in range(6)], dtype=f32)),
        ("step", "I64", [], np.array([1234567890123], dtype=np.int64)),
        ("b", "F32", [1], np.array([3.5], dtype=f32)),
        ("conv", "F32", [2, 1, 2, 3], np.array([(i - 6) / 8 for i in range(12)], dtype=f32)),
        ("ids", "I64", [3], np.array([-1, 0, (1 << 40) + 7], dtype=np.int64)),
        ("empty", "F32", [0, 4], np.zeros(0, dtype=f32)),
    ]


def fail(msg):
    print("check_safetensors.py: FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def check_nabla_file(path):
    raw = open(path, "rb").read()
    if len(raw) < 8:
        fail("file too short")
    (n,) = struct.unpack("<Q", raw[:8])
    if n % 8 != 0:
        fail("header length %d is not a multiple of 8" % n)
    text = raw[8:8 + n].decode("utf-8")
    body = text.rstrip(" ")
    if not body.endswith("}") or len(text) - len(body) >= 8:
        fail("header padding is not up to 7 spaces after the JSON")
    header = json.loads(text)
    keys = list(header)
    want = expected()
    if keys != ["__metadata__"] + [t[0] for t in want]:
        fail("header keys %r" % keys)
    meta = header["__metadata__"]
    if list(meta) != ["format", "note"] or meta["format"] != "pt" or meta["note"] != NOTE:
        fail("metadata %r" % meta)
    data = bytearray(raw[8 + n:])
    off = 0
    for name, dtype, shape, values in want:
        info = header[name]
        if set(info) != {"dtype", "shape", "data_offsets"}:
            fail("%s: keys %r" % (name, sorted(info)))
        if info["dtype"] != dtype or info["shape"] != shape:
            fail("%s: dtype %r shape %r" % (name, info["dtype"], info["shape"]))
        npdt, tdt, size = DT[dtype]
        b, e = info["data_offsets"]
        if b != off or e - b != values.size * size:
            fail("%s: data_offsets %r, expected [%d, %d]" % (name, [b, e], off, off + values.size * size))
        off = e
        got = np.frombuffer(bytes(data[b:e]), dtype=npdt).reshape(shape)
        if not np.array_equal(got, values.reshape(shape)):
            fail("%s: numpy sees %r, expected %r" % (name, got, values))
        if values.size:
            t = torch.frombuffer(data, dtype=tdt, count=values.size, offset=b).reshape(shape)
            if not torch.equal(t, torch.from_numpy(values).reshape(shape)):
                fail("%s: torch sees %r" % (name, t))
    if off != len(data):
        fail("data region is %d bytes, tensors cover %d" % (len(data), off))


def write_own(path):
    """A file written without nabla: see check_python_file() in the C test."""
    x = (torch.arange(6, dtype=torch.float32) * 1.5 - 2).reshape(3, 2)
    scalar = torch.tensor(0.1, dtype=torch.float32)
    big = torch.tensor([((i * 7) % 11) / 4 for i in range(120)], dtype=torch.float32).reshape(4, 5, 6)
    ids = torch.tensor([5, -6, 1 << 62, -(1 << 63)], dtype=torch.int64)
    # data order: x, scalar, big, ids (ids at offset 508: not 8-aligned)
    blobs, infos, off = [], {}, 0
    for name, t, dtype in (("py.x", x, "F32"), ("py.scalar", scalar, "F32"),
                           ("py.big", big, "F32"), ("py.ids", ids, "I64")):
        npdt = DT[dtype][0]
        blob = t.numpy().astype(npdt).tobytes()
        infos[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [off, off + len(blob)]}
        blobs.append(blob)
        off += len(blob)
    header = {"__metadata__": {"producer": "check_safetensors.py",
                               "unicode": "\u00e9 \u65e5\u672c \U0001F642",
                               "escapes": "a\"b\\c\nd\x01"}}
    for name in ("py.ids", "py.big", "py.x", "py.scalar"):  # not the data order
        header[name] = infos[name]
    text = json.dumps(header, ensure_ascii=True, indent=1).encode("ascii")
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)
    return {"py.x": x, "py.scalar": scalar, "py.big": big, "py.ids": ids}


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 1
    src, out = sys.argv[1], sys.argv[2]
    check_nabla_file(src)
    tensors = write_own(out)
    try:
        import safetensors.numpy as stnp
    except ImportError:
        stnp = None
    if stnp is not None:
        loaded = stnp.load_file(src)
        for name, _, shape, values in expected():
            if not np.array_equal(loaded[name], values.reshape(shape)):
                fail("safetensors package: %s differs" % name)
        stnp.save_file({k: v.numpy() for k, v in tensors.items()}, out + ".ref",
                       metadata={"producer": "check_safetensors.py",
                                 "unicode": "\u00e9 \u65e5\u672c \U0001F642",
                                 "escapes": "a\"b\\c\nd\x01"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
