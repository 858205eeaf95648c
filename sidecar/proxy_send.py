"""--send-proxy-v2 (tcp mode): the main container learns who the client was from a PROXY
protocol v2 header written before the client's first byte, as HAProxy's `send-proxy-v2`
with `send-proxy-v2-ssl-cn` writes it: the client's address (the one a PROXY header in
front carried, else the connection's own), and a PP2_TYPE_SSL TLV with the TLS version,
the cipher and a verified client certificate's CN."""

from __future__ import annotations

import asyncio
import ssl

from podkit.proxy.proxy_header import Address, header_v2, tlv

PP2_TYPE_SSL = 0x20
PP2_SUBTYPE_SSL_VERSION = 0x21
PP2_SUBTYPE_SSL_CN = 0x22
PP2_SUBTYPE_SSL_CIPHER = 0x23
PP2_CLIENT_SSL = 0x01
PP2_CLIENT_CERT_CONN = 0x02
PP2_CLIENT_CERT_SESS = 0x04


def _address(value: object) -> Address | None:
    if isinstance(value, tuple) and len(value) >= 2 and value[0]:
        return str(value[0]), int(value[1])
    return None


def ssl_tlv(sslobj: ssl.SSLObject | None) -> bytes:
    """PP2_TYPE_SSL: client flags, verify result (0: verified), then the sub-TLVs."""
    if sslobj is None:
        return b""
    subs = tlv(PP2_SUBTYPE_SSL_VERSION, (sslobj.version() or "").encode())
    flags = PP2_CLIENT_SSL
    leaf = sslobj.getpeercert(binary_form=True)
    if leaf:  # the handshake verified it, or it would not have completed
        flags |= PP2_CLIENT_CERT_CONN | PP2_CLIENT_CERT_SESS
        # Imported here: a client certificate means mTLS, and only then is cryptography's
        # ~10 MiB worth loading.
        from cryptography import x509
        from cryptography.x509.oid import NameOID

        names = x509.load_der_x509_certificate(leaf).subject
        cns = names.get_attributes_for_oid(NameOID.COMMON_NAME)
        if cns:
            subs += tlv(PP2_SUBTYPE_SSL_CN, str(cns[0].value).encode())
    cipher = sslobj.cipher()
    if cipher:
        subs += tlv(PP2_SUBTYPE_SSL_CIPHER, cipher[0].encode())
    return tlv(PP2_TYPE_SSL, bytes([flags]) + (0).to_bytes(4, "big") + subs)


def preamble(transport: asyncio.Transport) -> bytes:
    """TcpTunnel's preamble: the header for the client connection on `transport`. The
    source a PROXY header in front carried is the client end's `state`, set by the
    sidecar's listener (its TcpUpstreams, OneUpstream, keeps none of its own there)."""
    end = transport.get_protocol()
    source = _address(getattr(end, "state", None)) or _address(transport.get_extra_info("peername"))
    destination = _address(transport.get_extra_info("sockname"))
    return header_v2(source, destination, ssl_tlv(transport.get_extra_info("ssl_object")))
