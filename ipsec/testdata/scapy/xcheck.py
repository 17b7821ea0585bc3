#!/usr/bin/python3
"""Scapy's side of bitw's ESP/AH cross-check (ipsec/scapy_test.go).

One JSON job on stdin, {"cases": [...]}, one JSON answer on stdout,
{"scapy": VERSION, "quirks": [...], "results": [...]}, results in case order.
A single process serves the whole job because importing scapy is slow.
Without scapy the answer is {"skip": "why"} so the Go test can skip.

A case:
  id          label echoed back
  op          "encrypt": protect "packet" (an inner IP packet);
              "decrypt": open "packet" (an outer packet from bitw)
  proto       "ESP" or "AH"
  crypt       scapy CRYPT_ALGOS name; crypt_key hex (key || salt, as in
              RFC 7296 §2.17 KEYMAT, which is also how scapy splits it);
              crypt_icv the AEAD ICV length (0: scapy's default)
  auth        scapy AUTH_ALGOS name or ""; auth_key hex
  spi, seq    SPI and the full 64-bit sequence number of this packet
  esn         extended sequence numbers on the SA
  mode        "tunnel" or "transport"
  src, dst    outer addresses (tunnel endpoints or transport hosts)
  outer_opts  encrypt, tunnel: give the outer header options (IPv4 Router
              Alert and Record Route; IPv6 hop-by-hop Router Alert and an
              option whose data may change en route)
  natt        {"sport", "dport"} for ESP in UDP (RFC 3948), or null
  iv          encrypt, ESP: the IV to use, hex

A result: {"id", "packet": hex} on success or {"id", "error": text}, plus
for decrypt what the outer packet showed: "spi", "seq" (the 32-bit field),
"src", "dst", and under NAT-T "udp": [sport, dport, length, checksum, the
checksum scapy computes for the datagram].

Scapy 2.5 deviations this script works around; the answer's "quirks"
lists those it met, and each is explained where it is handled:
  esp-esn-icv         ESP with a separate integrity algorithm leaves the
                      implicit high 32 ESN bits out of the ICV (probed).
  seq-zero            encrypt(seq_num=0) falls back to the SA's counter.
  natt-udp-length     IPv4 ESP-in-UDP goes out with UDP Length 8.
  natt-exthdr-nh      IPv6 ESP-in-UDP behind extension headers: the last
                      one names ESP, not UDP, as the next header.
  v6-natt-transport   decrypting IPv6 transport-mode ESP-in-UDP keeps the
                      UDP header in the result.
"""

import binascii
import hmac
import json
import struct
import sys

MASK32 = 0xFFFFFFFF


def unhex(s):
    return binascii.unhexlify(s) if s else b""


class CaseError(Exception):
    pass


def main():
    job = json.load(sys.stdin)
    try:
        import scapy
        from scapy.config import conf
        import scapy.layers.ipsec  # noqa: F401
    except ImportError as err:
        json.dump({"skip": "scapy is not importable: %s" % err}, sys.stdout)
        return
    if not conf.crypto_valid:
        json.dump({"skip": "scapy has no python3-cryptography, so no IPsec"}, sys.stdout)
        return
    x = XCheck()
    results = []
    for case in job["cases"]:
        try:
            results.append(x.run(case))
        except Exception as err:  # reported per case, never fatal
            results.append({"id": case.get("id"), "error": "%s: %s" % (type(err).__name__, err)})
    json.dump({"scapy": scapy.VERSION, "quirks": x.quirks, "results": results}, sys.stdout)


class XCheck(object):
    def __init__(self):
        from scapy.layers import inet, inet6, ipsec
        self.inet, self.inet6, self.ipsec = inet, inet6, ipsec
        self.met = set()
        self.esp_esn_icv = self._scapy_drops_esp_esn()

    @property
    def quirks(self):
        return sorted(self.met)

    def _scapy_drops_esp_esn(self):
        """Whether scapy's ESP ICV ignores the high ESN bits.

        RFC 4303 §2.2.1 and §2.8: with ESN the high-order 32 bits take part
        in the ICV computation although they are not sent. Scapy 2.5's
        _encrypt_esp calls auth_algo.sign(esp, key) without them. Two
        packets that differ only in those bits tell.
        """
        ipsec, inet = self.ipsec, self.inet
        icvs = set()
        for high in (1, 2):
            sa = ipsec.SecurityAssociation(ipsec.ESP, spi=0x100, seq_num=1, crypt_algo="NULL",
                                           auth_algo="SHA2-256-128", auth_key=b"k" * 32,
                                           esn_en=True, esn=high)
            e = sa.encrypt(inet.IP(src="192.0.2.1", dst="192.0.2.2") / inet.UDP(), seq_num=1, esn_en=True, esn=high)
            icvs.add(bytes(e[ipsec.ESP].data[-16:]))
        return len(icvs) == 1

    def run(self, c):
        if c["proto"] not in ("ESP", "AH"):
            raise CaseError("unknown proto %r" % c["proto"])
        if c["op"] == "encrypt":
            return {"id": c["id"], "packet": self.encrypt(c).hex()}
        if c["op"] == "decrypt":
            return self.decrypt(c)
        raise CaseError("unknown op %r" % c["op"])

    def parse_ip(self, b):
        if not b:
            raise CaseError("empty packet")
        if b[0] >> 4 == 4:
            return self.inet.IP(b)
        if b[0] >> 4 == 6:
            return self.inet6.IPv6(b)
        raise CaseError("not an IP packet")

    def sa(self, c, tunnel_header=None, nat_t_header=None):
        """The SecurityAssociation for case c.

        Scapy takes the sequence number as its low 32 bits (seq_num) and
        the high 32 bits (esn) apart. encrypt(seq_num=0) means "unset"
        (seq_num or self.seq_num), so the SA's own counter is set to the
        low bits too: the seq-zero workaround.
        """
        ipsec = self.ipsec
        seq = c["seq"]
        kw = dict(spi=c["spi"], seq_num=seq & MASK32, esn_en=bool(c["esn"]), esn=seq >> 32,
                  tunnel_header=tunnel_header, nat_t_header=nat_t_header)
        if c["proto"] == "ESP":
            kw["crypt_algo"] = c["crypt"]
            kw["crypt_key"] = unhex(c.get("crypt_key")) or None
            kw["crypt_icv_size"] = c.get("crypt_icv") or None
        if c.get("auth"):
            kw["auth_algo"] = c["auth"]
            kw["auth_key"] = unhex(c["auth_key"])
        proto = ipsec.ESP if c["proto"] == "ESP" else ipsec.AH
        return ipsec.SecurityAssociation(proto, **kw)

    def tunnel_header(self, c):
        inet, inet6 = self.inet, self.inet6
        v6 = ":" in c["src"]
        if not v6:
            opts = []
            if c.get("outer_opts"):
                opts = [inet.IPOption_Router_Alert(), inet.IPOption_RR(routers=["0.0.0.0"])]
            return inet.IP(src=c["src"], dst=c["dst"], options=opts)
        h = inet6.IPv6(src=c["src"], dst=c["dst"])
        if c.get("outer_opts"):
            h = h / inet6.IPv6ExtHdrHopByHop(options=[
                inet6.RouterAlert(),
                inet6.HBHOptUnknown(otype=0x3E, optdata=b"\x00\x00\x00\x00"),
            ])
        return h

    def needs_esn_icv_fix(self, sa, c):
        return (c["esn"] and self.esp_esn_icv and not sa.crypt_algo.is_aead
                and sa.auth_algo.mac is not None)

    def esn_icv(self, sa, covered, high):
        """ICV over the ESP packet followed by the high ESN bits (RFC 4303
        §2.2.1), computed with scapy's own MAC object."""
        mac = sa.auth_algo.new_mac(sa.auth_key)
        mac.update(covered + struct.pack("!L", high))
        return mac.finalize()[:sa.auth_algo.icv_size]

    def encrypt(self, c):
        inet, ipsec = self.inet, self.ipsec
        inner = self.parse_ip(unhex(c["packet"]))
        th = self.tunnel_header(c) if c["mode"] == "tunnel" else None
        nat = None
        if c.get("natt"):
            nat = inet.UDP(sport=c["natt"]["sport"], dport=c["natt"]["dport"])
        sa = self.sa(c, th, nat)
        low, high = c["seq"] & MASK32, c["seq"] >> 32
        if low == 0:
            self.met.add("seq-zero")
        if c["proto"] == "AH":
            return bytes(sa.encrypt(inner, seq_num=low, esn_en=bool(c["esn"]), esn=high))
        out = sa.encrypt(inner, seq_num=low, iv=unhex(c.get("iv")), esn_en=bool(c["esn"]), esn=high)
        if self.needs_esn_icv_fix(sa, c):
            esp = out[ipsec.ESP]
            n = sa.auth_algo.icv_size
            covered = bytes(esp)[:-n]
            esp.data = esp.data[:-n] + self.esn_icv(sa, covered, high)
            self.met.add("esp-esn-icv")
        if nat is not None:
            out = self.fix_natt(out)
        return bytes(out)

    def fix_natt(self, out):
        """Repairs scapy 2.5's ESP-in-UDP headers (RFC 3948 §2.1, RFC 768).

        natt-udp-length: for IPv4, _encrypt_esp serializes IP / UDP before
        the ESP packet is appended, which freezes the UDP Length at 8; it
        must count the ESP packet too.
        natt-exthdr-nh: for IPv6 with extension headers in front of ESP,
        split_for_transport has set the last one's Next Header to ESP, and
        the UDP header is then inserted after it without changing that.
        The checksum stays as scapy sent it, zero (RFC 3948 §2.1).
        """
        inet = self.inet
        udp = out[inet.UDP]
        if udp.len != len(bytes(udp)):
            self.met.add("natt-udp-length")
            udp.len = None
        prev = udp.underlayer
        if hasattr(prev, "nh") and prev.nh not in (None, 17):
            self.met.add("natt-exthdr-nh")
            prev.nh = 17
        return out.__class__(bytes(out))

    def strip_natt_v6(self, pkt):
        """Removes the UDP header of IPv6 ESP-in-UDP (RFC 3948 §3.3 step 1
        for IPv6): scapy 2.5's transport-mode decrypt sets the next header
        on the UDP layer instead of on the header before it and keeps
        the UDP header in the result, the v6-natt-transport quirk."""
        inet, inet6, ipsec = self.inet, self.inet6, self.ipsec
        udp = pkt[inet.UDP]
        esp = udp.payload.copy()
        prev = udp.underlayer
        prev.remove_payload()
        prev.nh = 50
        prev.add_payload(esp)
        pkt.plen = None
        return inet6.IPv6(bytes(pkt))

    def decrypt(self, c):
        inet, ipsec = self.inet, self.ipsec
        raw = unhex(c["packet"])
        pkt = self.parse_ip(raw)
        res = {"id": c["id"], "src": pkt.src, "dst": pkt.dst}
        v6 = pkt.version == 6
        if c.get("natt"):
            if inet.UDP not in pkt:
                raise CaseError("no UDP header for NAT-T")
            u = pkt[inet.UDP]
            fresh = pkt.copy()
            fresh[inet.UDP].chksum = None
            fresh = fresh.__class__(bytes(fresh))
            res["udp"] = [u.sport, u.dport, u.len, u.chksum, fresh[inet.UDP].chksum]
            if len(bytes(u)) != u.len:
                raise CaseError("UDP length %d but %d octets follow" % (u.len, len(bytes(u))))
            if v6 and c["mode"] == "transport":
                self.met.add("v6-natt-transport")
                pkt = self.strip_natt_v6(pkt)
        layer = ipsec.ESP if c["proto"] == "ESP" else ipsec.AH
        if layer not in pkt:
            raise CaseError("no %s header in %s" % (c["proto"], pkt.summary()))
        res["spi"], res["seq"] = pkt[layer].spi, pkt[layer].seq
        th = self.tunnel_header(dict(c, outer_opts=False)) if c["mode"] == "tunnel" else None
        sa = self.sa(c, th)
        high = c["seq"] >> 32
        if c["proto"] == "ESP" and self.needs_esn_icv_fix(sa, c):
            esp = pkt[ipsec.ESP]
            n = sa.auth_algo.icv_size
            b = bytes(esp)
            if not hmac.compare_digest(b[-n:], self.esn_icv(sa, b[:-n], high)):
                raise ipsec.IPSecIntegrityError("ICV over ESP || ESN high bits does not match")
            sa.check_spi(esp)
            self.met.add("esp-esn-icv")
            inner = sa.decrypt(pkt, verify=False, esn_en=True, esn=high)
        else:
            inner = sa.decrypt(pkt, esn_en=bool(c["esn"]), esn=high)
        res["packet"] = bytes(inner).hex()
        return res


if __name__ == "__main__":
    main()
