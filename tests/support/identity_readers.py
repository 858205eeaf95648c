"""Readers of the identity headers, written from the specifications rather than from the
sidecar's code, so that a test reads what an upstream would read.

- `rfc4514`: RFC 4514 §3's grammar (distinguishedName, pair, hexpair, hexstring).
- `xfcc`: Envoy's X-Forwarded-Client-Cert as its documentation describes it: elements
  separated by `,`, key=value pairs by `;`, keys case-insensitive, a value holding `,` `;` or
  `=` double-quoted, with `"` written `\\"` inside.
- `byte_sequence(s)`: RFC 8941 §3.3.5 byte sequences (`:base64:`) and lists of them.
"""

from __future__ import annotations

import base64
import re

Rdn = list[tuple[str, str]]

_HEX = "0123456789abcdefABCDEF"
_ESCAPED = '"+,;<>'
_SPECIAL = _ESCAPED + " #="


def rfc4514(text: str) -> list[Rdn]:
    """RDNs in the string's order (most specific first); values decoded. Raises ValueError
    on anything the grammar does not allow."""
    if text == "":
        return []
    rdns: list[Rdn] = [[]]
    i = 0
    while True:
        eq = text.find("=", i)
        if eq < 0:
            raise ValueError(f"no '=' after position {i}: {text!r}")
        attr_type = text[i:eq]
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9-]*|[0-9]+(\.[0-9]+)+", attr_type):
            raise ValueError(f"bad attribute type {attr_type!r}")
        value, i = _value(text, eq + 1)
        rdns[-1].append((attr_type, value))
        if i == len(text):
            return rdns
        if text[i] == ",":
            rdns.append([])
        elif text[i] != "+":
            raise ValueError(f"unexpected {text[i]!r} at {i}")
        i += 1


def _value(text: str, i: int) -> tuple[str, int]:
    if i < len(text) and text[i] == "#":  # hexstring: the BER encoding, kept as hex
        j = i + 1
        while j < len(text) and text[j] in _HEX:
            j += 1
        if (j - i - 1) % 2 or j == i + 1:
            raise ValueError("bad hexstring")
        return text[i:j], j
    out = bytearray()
    start = i
    while i < len(text) and text[i] not in ",+":
        c = text[i]
        if c == "\\":
            nxt = text[i + 1 : i + 3]
            if len(nxt) == 2 and nxt[0] in _HEX and nxt[1] in _HEX:
                out.append(int(nxt, 16))
                i += 3
            elif nxt[:1] and (nxt[0] in _SPECIAL or nxt[0] == "\\"):
                out += nxt[0].encode()
                i += 2
            else:
                raise ValueError(f"bad escape at {i}: {text!r}")
            continue
        if c in '";<>' or c == "\x00":
            raise ValueError(f"unescaped {c!r} at {i}")
        if i == start and c in " #":
            raise ValueError("unescaped leading space or #")
        out += c.encode()
        i += 1
    if text[start:i].endswith(" ") and not text[start:i].endswith("\\ "):
        raise ValueError("unescaped trailing space")
    return out.decode("utf-8"), i


def _split(text: str, sep: str) -> list[str]:
    """Split on `sep` outside double quotes (a `\\"` inside does not end them)."""
    parts, current, quoted, i = [], [], False, 0
    while i < len(text):
        c = text[i]
        if quoted and c == "\\" and text[i + 1 : i + 2] == '"':
            current.append(text[i : i + 2])
            i += 2
            continue
        if c == '"':
            quoted = not quoted
        if c == sep and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(c)
        i += 1
    if quoted:
        raise ValueError(f"unterminated quote: {text!r}")
    parts.append("".join(current))
    return parts


def xfcc(header: str) -> list[list[tuple[str, str]]]:
    """Elements, each a list of (lower-case key, value)."""
    elements = []
    for element in _split(header, ","):
        pairs = []
        for pair in _split(element, ";"):
            key, eq, value = pair.partition("=")
            if not eq or not key:
                raise ValueError(f"not key=value: {pair!r}")
            if value.startswith('"'):
                if len(value) < 2 or not value.endswith('"'):
                    raise ValueError(f"bad quoted value: {value!r}")
                value = value[1:-1].replace('\\"', '"')
            elif any(c in value for c in ',;="'):
                raise ValueError(f"unquoted value with a delimiter: {value!r}")
            pairs.append((key.strip().lower(), value))
        elements.append(pairs)
    return elements


def byte_sequence(item: str) -> bytes:
    item = item.strip()
    if not (len(item) >= 2 and item[0] == ":" and item[-1] == ":"):
        raise ValueError(f"not a byte sequence: {item!r}")
    if not re.fullmatch(r"[A-Za-z0-9+/]*={0,2}", item[1:-1]):
        raise ValueError(f"not base64: {item!r}")
    return base64.b64decode(item[1:-1], validate=True)


def byte_sequences(value: str) -> list[bytes]:
    return [byte_sequence(item) for item in value.split(",")]
