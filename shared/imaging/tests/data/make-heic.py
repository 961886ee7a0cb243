#!/usr/bin/env python3
"""Makes the HEIC and AVIF fixtures in this folder (see README.md). Needs python3 and heif-enc
(Debian: libheif-examples). Run from anywhere: python3 make-heic.py

Each fixture starts as a PNG written here with four coloured quadrants (top-left red,
top-right green, bottom-left blue, bottom-right yellow), an EXIF block holding a GPS map
datum and a camera serial number, and an XMP packet, so that tests can check that no
metadata reaches the renditions. heif-enc copies the EXIF and XMP into the HEIC file.
"""

import os
import struct
import subprocess
import tempfile
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))

RED, GREEN, BLUE, YELLOW = (210, 40, 40), (40, 190, 50), (40, 60, 210), (220, 210, 40)


def quadrants(width, height):
    """Rows of RGB pixels, upright."""
    rows = []
    for y in range(height):
        row = []
        for x in range(width):
            right, bottom = x >= width // 2, y >= height // 2
            row.append({(False, False): RED, (True, False): GREEN,
                        (False, True): BLUE, (True, True): YELLOW}[(right, bottom)])
        rows.append(row)
    return rows


def rotate_ccw(rows):
    """The picture turned 90 degrees anticlockwise."""
    height, width = len(rows), len(rows[0])
    return [[rows[x][width - 1 - y] for x in range(height)] for y in range(width)]


def exif(orientation):
    """A big-endian TIFF block: Orientation and a GPS IFD with a map datum in IFD0, and an
    ExifIFD with a body serial number."""
    serial = b"SERIAL-4242-CAMERA\0"
    datum = b"SECRET-GPS-DATUM\0"
    ifd0 = 8
    exif_ifd = ifd0 + 2 + 3 * 12 + 4
    serial_at = exif_ifd + 2 + 12 + 4
    gps_ifd = serial_at + len(serial) + len(serial) % 2
    datum_at = gps_ifd + 2 + 12 + 4

    def entry(tag, typ, count, value):
        return struct.pack(">HHII", tag, typ, count, value)

    out = b"MM\0\x2a" + struct.pack(">I", ifd0)
    out += struct.pack(">H", 3)
    out += entry(0x0112, 3, 1, orientation << 16)
    out += entry(0x8769, 4, 1, exif_ifd)
    out += entry(0x8825, 4, 1, gps_ifd)
    out += struct.pack(">I", 0)
    out += struct.pack(">H", 1) + entry(0xA431, 2, len(serial), serial_at) + struct.pack(">I", 0)
    out += serial + b"\0" * (len(serial) % 2)
    out += struct.pack(">H", 1) + entry(0x0012, 2, len(datum), datum_at) + struct.pack(">I", 0)
    out += datum
    return out


XMP = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
       b'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description '
       b'xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:creator>SECRET-XMP-CREATOR'
       b'</dc:creator></rdf:Description></rdf:RDF></x:xmpmeta>')


def png(rows, orientation, depth=8, metadata=True):
    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    height, width = len(rows), len(rows[0])
    if depth == 16:
        # 16-bit samples, big-endian, each 8-bit value v as v * 257.
        raw = b"".join(b"\0" + b"".join(struct.pack(">H", c * 257) for px in row for c in px)
                       for row in rows)
    else:
        raw = b"".join(b"\0" + bytes(c for px in row for c in px) for row in rows)
    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, 2, 0, 0, 0))
            + (chunk(b"eXIf", exif(orientation)) if metadata else b"")
            + (chunk(b"iTXt", b"XML:com.adobe.xmp\0\0\0\0\0" + XMP) if metadata else b"")
            + chunk(b"IDAT", zlib.compress(raw, 9))
            + chunk(b"IEND", b""))


def boxes(data, start, end):
    """(offset, size, type) of each ISO BMFF box between start and end."""
    out = []
    while start < end:
        size, kind = struct.unpack(">I4s", data[start:start + 8])
        out.append((start, size, kind))
        start += size
    return out


def find(data, start, end, kind):
    return next(b for b in boxes(data, start, end) if b[2] == kind)


def add_irot(data, angle):
    """Adds an `irot` property (anticlockwise quarter turns) to the primary item (id 1) of a
    file heif-enc wrote: appended to ipco, associated in ipma, every enclosing box's size and
    every iloc file offset moved to match."""
    data = bytearray(data)
    meta = find(data, 0, len(data), b"meta")
    iprp = find(data, meta[0] + 12, meta[0] + meta[1], b"iprp")
    ipco = find(data, iprp[0] + 8, iprp[0] + iprp[1], b"ipco")
    ipma = find(data, iprp[0] + 8, iprp[0] + iprp[1], b"ipma")
    iloc = find(data, meta[0] + 12, meta[0] + meta[1], b"iloc")
    index = len(boxes(data, ipco[0] + 8, ipco[0] + ipco[1])) + 1
    irot = struct.pack(">I4sB", 9, b"irot", angle)
    # ipma: version 0, 8-bit property indices; find item 1's entry.
    version, flags = data[ipma[0] + 8], int.from_bytes(data[ipma[0] + 9:ipma[0] + 12], "big")
    assert version == 0 and flags & 1 == 0, "ipma layout heif-enc did not write"
    pos = ipma[0] + 16
    for _ in range(struct.unpack(">I", data[ipma[0] + 12:ipma[0] + 16])[0]):
        item, count = struct.unpack(">HB", data[pos:pos + 3])
        if item == 1:
            break
        pos += 3 + count
    else:
        raise SystemExit("item 1 has no properties")
    grow = len(irot) + 1
    # iloc: fix the file offsets of the item data, which all live after meta.
    v = data[iloc[0] + 8]
    sizes = data[iloc[0] + 12], data[iloc[0] + 13]
    offset_size, length_size = sizes[0] >> 4, sizes[0] & 15
    base_size, index_size = sizes[1] >> 4, (sizes[1] & 15) if v in (1, 2) else 0
    assert v in (0, 1) and offset_size in (0, 4) and base_size in (0, 4)
    at = iloc[0] + 14
    count = struct.unpack(">H", data[at:at + 2])[0]
    at += 2
    for _ in range(count):
        at += 2  # item id
        method = 0
        if v == 1:
            method = struct.unpack(">H", data[at:at + 2])[0] & 15
            at += 2
        at += 2  # data reference index
        base = 0
        if base_size == 4:
            base = struct.unpack(">I", data[at:at + 4])[0]
            if method == 0 and base:
                data[at:at + 4] = struct.pack(">I", base + grow)
            at += 4
        extents = struct.unpack(">H", data[at:at + 2])[0]
        at += 2
        for _ in range(extents):
            at += index_size
            if offset_size == 4 and method == 0 and not base:
                off = struct.unpack(">I", data[at:at + 4])[0]
                data[at:at + 4] = struct.pack(">I", off + grow)
            at += offset_size + length_size
    # Sizes first, then insertions from the back, so that no position above moves.
    for box, by in ((ipma, 1), (ipco, len(irot)), (iprp, grow), (meta, grow)):
        data[box[0]:box[0] + 4] = struct.pack(">I", box[1] + by)
    data[pos + 2] += 1
    data[pos + 3:pos + 3] = bytes([0x80 | index])
    data[ipco[0] + ipco[1]:ipco[0] + ipco[1]] = irot
    return bytes(data)


def heic(name, rows, orientation, irot=None, bits=8, avif=False):
    with tempfile.TemporaryDirectory() as tmp:
        source = os.path.join(tmp, "source.png")
        with open(source, "wb") as f:
            f.write(png(rows, orientation, 8 if bits == 8 else 16))
        out = os.path.join(HERE, name)
        options = ([] if bits == 8 else ["-b", str(bits)]) + (["-A"] if avif else [])
        subprocess.run(["heif-enc", "-q", "90", *options, "-o", out, source], check=True,
                       stdout=subprocess.DEVNULL)
        if irot is not None:
            with open(out, "rb") as f:
                data = add_irot(f.read(), irot)
            with open(out, "wb") as f:
                f.write(data)
        print(name, os.path.getsize(out), "bytes")


def item_extent(data, item_id):
    """(offset, length) of an item's single extent in a file heif-enc wrote."""
    meta = find(data, 0, len(data), b"meta")
    iloc = find(data, meta[0] + 12, meta[0] + meta[1], b"iloc")
    v = data[iloc[0] + 8]
    sizes = data[iloc[0] + 12], data[iloc[0] + 13]
    assert v in (0, 1) and sizes[0] == 0x44 and sizes[1] >> 4 in (0, 4), "unexpected iloc"
    base_size = sizes[1] >> 4
    at = iloc[0] + 14
    count = struct.unpack(">H", data[at:at + 2])[0]
    at += 2
    for _ in range(count):
        item = struct.unpack(">H", data[at:at + 2])[0]
        at += 2 + (2 if v == 1 else 0) + 2
        base = struct.unpack(">I", data[at:at + 4])[0] if base_size else 0
        at += base_size
        extents = struct.unpack(">H", data[at:at + 2])[0]
        at += 2
        if item == item_id:
            assert extents == 1
            offset, length = struct.unpack(">II", data[at:at + 8])
            return base + offset, length
        at += 8 * extents
    raise SystemExit(f"no item {item_id}")


def grid_heic(name, rows, tile_w, tile_h):
    """A grid image as iPhones write them: tiles coded one by one (here by heif-enc, each
    taken from its own file) and a `grid` item that places them and crops the result to the
    picture's size. The tiles cover more than the picture; the excess is grey."""
    height, width = len(rows), len(rows[0])
    columns, lines = -(-width // tile_w), -(-height // tile_h)
    canvas = [[rows[y][x] if y < height and x < width else (128, 128, 128)
               for x in range(columns * tile_w)] for y in range(lines * tile_h)]
    tiles = []  # (hvcC box, coded data)
    with tempfile.TemporaryDirectory() as tmp:
        for t in range(columns * lines):
            ty, tx = divmod(t, columns)
            tile = [row[tx * tile_w:(tx + 1) * tile_w]
                    for row in canvas[ty * tile_h:(ty + 1) * tile_h]]
            source, out = os.path.join(tmp, "tile.png"), os.path.join(tmp, "tile.heic")
            with open(source, "wb") as f:
                f.write(png(tile, 1, metadata=False))
            subprocess.run(["heif-enc", "-q", "90", "-o", out, source], check=True,
                           stdout=subprocess.DEVNULL)
            with open(out, "rb") as f:
                data = f.read()
            meta = find(data, 0, len(data), b"meta")
            iprp = find(data, meta[0] + 12, meta[0] + meta[1], b"iprp")
            ipco = find(data, iprp[0] + 8, iprp[0] + iprp[1], b"ipco")
            hvcc = find(data, ipco[0] + 8, ipco[0] + ipco[1], b"hvcC")
            offset, length = item_extent(data, 1)
            tiles.append((data[hvcc[0]:hvcc[0] + hvcc[1]], data[offset:offset + length]))

    def box(kind, payload):
        return struct.pack(">I4s", len(payload) + 8, kind) + payload

    def full(kind, payload, version=0, flags=0):
        return box(kind, struct.pack(">I", version << 24 | flags) + payload)

    grid_id, n = 100, len(tiles)
    grid_data = struct.pack(">BBBBHH", 0, 0, lines - 1, columns - 1, width, height)
    hdlr = full(b"hdlr", struct.pack(">I4s12s", 0, b"pict", b"") + b"\0")
    pitm = full(b"pitm", struct.pack(">H", grid_id))
    infe = b"".join(full(b"infe", struct.pack(">HH4s", i + 1, 0, b"hvc1") + b"\0", 2, 1)
                    for i in range(n))
    infe += full(b"infe", struct.pack(">HH4s", grid_id, 0, b"grid") + b"\0", 2)
    iinf = full(b"iinf", struct.pack(">H", n + 1) + infe)
    dimg = box(b"dimg", struct.pack(">HH", grid_id, n)
               + b"".join(struct.pack(">H", i + 1) for i in range(n)))
    iref = full(b"iref", dimg)
    # ipco: one hvcC per tile (1..n), the tiles' ispe (n+1), the picture's ispe (n+2).
    ipco = box(b"ipco", b"".join(h for h, _ in tiles)
               + full(b"ispe", struct.pack(">II", tile_w, tile_h))
               + full(b"ispe", struct.pack(">II", width, height)))
    entries = b"".join(struct.pack(">HBBB", i + 1, 2, 0x80 | (i + 1), n + 1) for i in range(n))
    entries += struct.pack(">HBB", grid_id, 1, n + 2)
    ipma = full(b"ipma", struct.pack(">I", n + 1) + entries)
    iprp = box(b"iprp", ipco + ipma)
    ftyp = box(b"ftyp", b"heic" + struct.pack(">I", 0) + b"mif1heicmiaf")

    def iloc_for(mdat_start):
        items, at = [], mdat_start + len(grid_data)
        for i, (_, coded) in enumerate(tiles):
            items.append(struct.pack(">HHHII", i + 1, 0, 1, at, len(coded)))
            at += len(coded)
        items.append(struct.pack(">HHHII", grid_id, 0, 1, mdat_start, len(grid_data)))
        return full(b"iloc", struct.pack(">BBH", 0x44, 0x00, n + 1) + b"".join(items))

    def meta_for(mdat_start):
        return full(b"meta", hdlr + pitm + iloc_for(mdat_start) + iinf + iref + iprp)

    mdat_start = len(ftyp) + len(meta_for(0)) + 8
    mdat = box(b"mdat", grid_data + b"".join(coded for _, coded in tiles))
    out = os.path.join(HERE, name)
    with open(out, "wb") as f:
        f.write(ftyp + meta_for(mdat_start) + mdat)
    print(name, os.path.getsize(out), "bytes")


def main():
    upright = quadrants(160, 200)
    # Upright as stored, EXIF orientation 1.
    heic("quadrants-160x200.heic", upright, 1)
    # Stored sideways (200x160, the picture turned anticlockwise) with an `irot` of three
    # anticlockwise quarter turns, and an EXIF block that still says orientation 6, as iPhones
    # write them: the HEIF rule is that `irot` counts and the EXIF tag is informative only.
    # heif-enc 1.15 writes no `irot` itself, so it is added here.
    heic("rotated-irot-200x160.heic", rotate_ccw(upright), 6, irot=3)
    # 10 bits per sample, as newer iPhones write HDR photos (from a 16-bit PNG).
    heic("ten-bit-160x200.heic", upright, 1, bits=10)
    # A 2x2 grid of 96x112 tiles cropped to 160x200, the layout of an iPhone photo (whose
    # tiles are 512x512).
    grid_heic("grid-160x200.heic", upright, 96, 112)
    # AVIF (AV1, libaom's encoder), the same picture and metadata as the first.
    heic("quadrants-160x200.avif", upright, 1, avif=True)


if __name__ == "__main__":
    main()
