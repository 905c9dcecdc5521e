"""Live capture of MSGin5G UDP traffic on the loopback interface.

The sniffer opens a libpcap handle (through scapy's libpcap backend) on ``lo``
with a BPF filter (the pcap-filter(7) language) that keeps only UDP to or from
the test's addresses.  libpcap is used instead of scapy's native Linux packet
socket because on loopback the native socket sees every packet twice (once
outgoing, once incoming) and falls behind under load, whereas libpcap delivers
each packet once through a kernel ring buffer.

Frames are not dissected by scapy: each one is decoded by
:func:`msgin5g_conformance.wire.capture.pcap.decode_frame` into addresses, ports and
the exact UDP payload bytes, which go to a
:class:`~msgin5g_conformance.wire.capture.record.Recorder`.  The payload is never
interpreted here; CoAP parsing (RFC 7252) happens elsewhere, on the recorded
bytes.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
import sys
import threading
import time
from collections.abc import Collection
from typing import Any

from msgin5g_conformance.errors import HarnessError
from msgin5g_conformance.wire.capture.pcap import SUPPORTED_LINKTYPES, decode_frame
from msgin5g_conformance.wire.capture.record import Address, Recorder, ThreadsafeSink

__all__ = ["CaptureError", "LoopbackSniffer", "sniff_available"]

_CAP_NET_RAW = 13  # bit number in the capability sets of /proc/<pid>/status
_DRAIN_PREFIX = b"msgin5g-capture-drain:"
# libpcap on Linux (TPACKET_V3) hands a ring block to user space when it fills
# or when its timer fires; scapy opens the handle with a 100 ms timeout, so a
# packet can sit unseen for that long.  Without a drain marker, stop() waits
# this long instead.
_SETTLE_WITHOUT_MARKER = 0.35

_IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class CaptureError(HarnessError):
    """Live capture could not start, stop cleanly, or be sure it saw everything."""


# --------------------------------------------------------------------------- #
# Environment checks
# --------------------------------------------------------------------------- #


def _capability_problem() -> str | None:
    """Say why this process may not open a packet capture, or None if it may."""
    if sys.platform.startswith("linux"):
        try:
            with open("/proc/self/status", encoding="ascii") as fh:
                for line in fh:
                    if line.startswith("CapEff:"):
                        effective = int(line.split()[1], 16)
                        if effective >> _CAP_NET_RAW & 1:
                            return None
                        return (
                            f"live capture needs root or CAP_NET_RAW; this process (euid "
                            f"{os.geteuid()}) has effective capabilities {effective:#x} without it"
                        )
        except OSError:
            pass  # no /proc: fall back to the uid test below
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return None
    return "live capture needs root or CAP_NET_RAW"


def _libpcap_problem() -> str | None:
    """Switch scapy to its libpcap backend; say why that failed, or None.

    This is a process-wide scapy setting.  It must be on before scapy's libpcap
    socket classes exist at all, and it leaves scapy's other functions working.
    """
    from scapy.config import conf

    if not conf.use_pcap:
        try:
            conf.use_pcap = True
        except Exception as exc:  # scapy raises assorted errors when libpcap is broken
            return f"scapy could not switch to libpcap: {exc}"
    if not conf.use_pcap:
        return "scapy could not load libpcap (is libpcap installed?)"
    import scapy.arch.libpcap as libpcap

    if not hasattr(libpcap, "L2pcapListenSocket"):
        return "scapy's libpcap backend is not available on this platform"
    return None


_raw_socket_class: type[Any] | None = None


def _listen_socket_class() -> type[Any]:
    """A scapy libpcap listening socket that returns frames undissected.

    scapy would otherwise build a full layer stack for every frame (and, if
    its CoAP layer is loaded, parse CoAP leniently); we only need the bytes.
    """
    global _raw_socket_class
    if _raw_socket_class is None:
        # Registers Ethernet and the Linux cooked headers in conf.l2types; the
        # socket looks its link type up there and warns on every open if absent.
        import scapy.layers.l2  # noqa: F401
        from scapy.arch.libpcap import L2pcapListenSocket
        from scapy.config import conf

        class RawPcapListenSocket(L2pcapListenSocket):
            def recv(self, x: int = 65535, **kwargs: Any) -> Any:
                ts, frame = self.pcap_fd.next()
                if frame is None:
                    return None
                pkt = conf.raw_layer(frame)
                pkt.time = ts if ts is not None else time.time()
                return pkt

        _raw_socket_class = RawPcapListenSocket
    return _raw_socket_class


_confirmed: dict[str, str] = {}


def sniff_available(iface: str = "lo") -> tuple[bool, str]:
    """Say whether live capture on ``iface`` can work in this process, and why not.

    Checks privileges (root or CAP_NET_RAW), that the interface exists, that
    scapy can use libpcap, and finally opens and closes a filtered handle.  A
    positive answer is remembered for the life of the process, so that every
    :meth:`LoopbackSniffer.start` does not pay for a probe capture.
    """
    if iface in _confirmed:
        return True, _confirmed[iface]
    problem = _capability_problem()
    if problem:
        return False, problem
    try:
        socket.if_nametoindex(iface)
    except OSError:
        return False, f"there is no network interface named {iface!r}"
    problem = _libpcap_problem()
    if problem:
        return False, problem
    try:
        probe = _listen_socket_class()(iface=iface, promisc=False, filter="udp and port 9")
    except Exception as exc:  # OSError or scapy's exceptions, depending on the failure
        return False, f"cannot open a libpcap capture on {iface!r}: {exc}"
    try:
        linktype = probe.pcap_fd.datalink()
    finally:
        probe.close()
    if linktype not in SUPPORTED_LINKTYPES:
        return False, f"interface {iface!r} has link type {linktype}, which we cannot decode"
    from scapy.libs.winpcapy import pcap_lib_version

    version = pcap_lib_version().decode("ascii", "replace")
    _confirmed[iface] = f"{version} can capture on {iface!r}"
    return True, _confirmed[iface]


# --------------------------------------------------------------------------- #
# The sniffer
# --------------------------------------------------------------------------- #


def _bare(address: str) -> str:
    return address.split("%", 1)[0]


class LoopbackSniffer:
    """Capture UDP datagrams of one test case on the loopback interface into a recorder.

    ``addresses`` is either a network in CIDR notation (``"127.77.3.0/24"``) or
    a collection of host addresses; a single address string is one host.
    ``network`` may be given by keyword instead.  A datagram is captured when
    its source or destination is in scope; ``port_hint`` further restricts the
    capture to datagrams with that UDP port at either end.

    :meth:`stop` is a barrier: every datagram that crossed ``lo`` before it was
    called is in the recorder (or queued to its event loop) when it returns.
    """

    def __init__(
        self,
        recorder: Recorder | ThreadsafeSink,
        addresses: str | Collection[str] | None = None,
        port_hint: int | None = None,
        iface: str = "lo",
        network: str | None = None,
    ) -> None:
        if (addresses is None) == (network is None):
            raise ValueError("give exactly one of addresses and network")
        self.recorder = recorder
        self.iface = iface
        self.port_hint = port_hint
        if port_hint is not None and not 0 < port_hint < 65536:
            raise ValueError(f"port_hint {port_hint} is not a UDP port")
        self._network: _IPNetwork | None = None
        self._hosts: tuple[_IPAddress, ...] = ()
        if isinstance(addresses, str) and "/" in addresses:
            network, addresses = addresses, None
        if network is not None:
            self._network = ipaddress.ip_network(_bare(network), strict=False)
        else:
            assert addresses is not None
            items = [addresses] if isinstance(addresses, str) else list(addresses)
            if not items:
                raise ValueError("addresses is empty")
            self._hosts = tuple(sorted({ipaddress.ip_address(_bare(a)) for a in items}, key=_sort_key))

        self._sniffer: Any = None
        self._socket: Any = None
        self._linktype = -1
        self._marker: socket.socket | None = None
        self._marker_addr: _IPAddress | None = None
        self._marker_token = b""
        self._drained = threading.Event()
        self._recorded = 0
        self._truncated = 0
        self._failure: BaseException | None = None
        self.filter = ""

    # -- public ---------------------------------------------------------------

    @classmethod
    def available(cls, iface: str = "lo") -> tuple[bool, str]:
        """Same as :func:`sniff_available`."""
        return sniff_available(iface)

    @property
    def running(self) -> bool:
        return self._sniffer is not None

    @property
    def recorded(self) -> int:
        """How many datagrams this sniffer has handed to the recorder so far."""
        return self._recorded

    def start(self, timeout: float = 2.0) -> None:
        """Open the capture and return once packets are being captured.

        :raises CaptureError: capture is unavailable, or the capture thread did
            not report that it started within ``timeout`` seconds.
        """
        if self._sniffer is not None:
            raise CaptureError("sniffer already started")
        ok, why = sniff_available(self.iface)
        if not ok:
            raise CaptureError(why)
        from scapy.sendrecv import AsyncSniffer

        self._open_marker()
        self.filter = self._build_filter()
        try:
            sock = _listen_socket_class()(iface=self.iface, promisc=False, filter=self.filter)
        except Exception as exc:
            self._close_marker()
            raise CaptureError(f"cannot capture on {self.iface!r} with filter {self.filter!r}: {exc}") from exc
        self._socket = sock
        self._linktype = sock.pcap_fd.datalink()
        self._drained.clear()
        self._marker_token = b""
        self._truncated = 0
        self._failure = None
        started = threading.Event()
        sniffer = AsyncSniffer(opened_socket=sock, prn=self._on_packet, store=False, started_callback=started.set)
        sniffer.start()
        self._sniffer = sniffer
        if not started.wait(timeout):
            detail = f": {sniffer.exception}" if sniffer.exception else ""
            with contextlib.suppress(CaptureError):  # the start failure is the error worth reporting
                self._shutdown(timeout)
            raise CaptureError(f"capture on {self.iface!r} did not start within {timeout} s{detail}")

    def stop(self, timeout: float = 2.0) -> None:
        """Wait for in-flight packets, stop capturing and release the handle.

        Stopping a sniffer that is not running does nothing.

        :raises CaptureError: the drain marker was not seen (datagrams may be
            missing), the capture thread failed or did not end in time, or a
            datagram was cut short by the snapshot length.
        """
        if self._sniffer is None:
            return
        deadline = time.monotonic() + timeout
        drained = self._drain(deadline)
        self._shutdown(max(0.1, deadline - time.monotonic()))
        if self._failure is not None:
            raise CaptureError(f"decoding a captured frame failed: {self._failure!r}") from self._failure
        if not drained:
            raise CaptureError(
                f"the drain marker sent at stop did not come back within {timeout} s; "
                "datagrams sent just before stop may be missing"
            )
        if self._truncated:
            raise CaptureError(f"{self._truncated} datagram(s) were longer than the capture snapshot length")

    def flush(self, timeout: float = 2.0) -> None:
        """A barrier while running: every datagram that crossed ``lo`` before this call has been
        handed to the recorder when it returns.

        :raises CaptureError: the drain marker did not come back within ``timeout``.
        """
        if self._sniffer is None:
            return
        self._drained.clear()
        if not self._drain(time.monotonic() + timeout):
            raise CaptureError(f"the drain marker did not come back within {timeout} s; datagrams may be missing")

    def __enter__(self) -> LoopbackSniffer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- internals ------------------------------------------------------------

    def _marker_candidate(self) -> _IPAddress | None:
        if self._hosts:
            return self._hosts[0]
        net = self._network
        assert net is not None
        if net.version == 6:
            loop6 = ipaddress.IPv6Address("::1")
            return loop6 if loop6 in net else None
        return net.network_address + 1 if net.num_addresses > 2 else net.network_address

    def _open_marker(self) -> None:
        """Bind a socket inside the scope, used to send a drain marker at stop.

        Seeing our own marker come through the capture proves that every
        packet queued on ``lo`` before it has been read, because the kernel
        keeps them in order.
        """
        self._marker = None
        self._marker_addr = None
        candidate = self._marker_candidate()
        if candidate is None:
            return
        family = socket.AF_INET6 if candidate.version == 6 else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.bind((str(candidate), 0))
        except OSError:
            sock.close()  # not a local address: fall back to a fixed settle time
            return
        self._marker = sock
        self._marker_addr = candidate

    def _close_marker(self) -> None:
        if self._marker is not None:
            self._marker.close()
            self._marker = None

    def _build_filter(self) -> str:
        hosts = " or ".join(f"host {h}" for h in self._hosts)
        scope = f"net {self._network}" if self._network is not None else hosts
        expr = f"udp and ({scope})"
        if self.port_hint is not None:
            ports = f"port {self.port_hint}"
            if self._marker is not None:
                marker_port = self._marker.getsockname()[1]
                ports += f" or (src port {marker_port} and dst port {marker_port})"
            expr += f" and ({ports})"
        return expr

    def _drain(self, deadline: float) -> bool:
        marker = self._marker
        if marker is None or self._failure is not None:
            time.sleep(max(0.0, min(_SETTLE_WITHOUT_MARKER, deadline - time.monotonic())))
            return True
        self._marker_token = _DRAIN_PREFIX + os.urandom(16)
        try:
            marker.sendto(self._marker_token, marker.getsockname())
        except OSError:
            return False
        thread = self._sniffer.thread if self._sniffer is not None else None
        # Wait in slices so a capture thread that has died is noticed at once
        # instead of after the whole timeout.
        while not self._drained.wait(min(0.05, max(0.0, deadline - time.monotonic()))):
            if time.monotonic() >= deadline or thread is None or not thread.is_alive():
                return self._drained.is_set()
        return True

    def _shutdown(self, timeout: float) -> None:
        sniffer, self._sniffer = self._sniffer, None
        sock, self._socket = self._socket, None
        self._close_marker()
        from scapy.error import Scapy_Exception

        # stop() refuses when the thread already ended (e.g. its socket
        # failed); the join and the exception check below cover that case.
        with contextlib.suppress(Scapy_Exception):
            sniffer.stop(join=False)
        sniffer.join(timeout)
        if sniffer.thread is not None and sniffer.thread.is_alive():
            # Closing the pcap handle while the thread may still be inside
            # libpcap would free memory under it; leaking the handle is safer.
            raise CaptureError(f"capture thread on {self.iface!r} did not stop within {timeout:.1f} s")
        if sock is not None:
            sock.close()
        if sniffer.exception is not None:
            raise CaptureError(f"capture thread failed: {sniffer.exception!r}") from sniffer.exception

    def _on_packet(self, pkt: Any) -> None:
        # Runs on the capture thread.  scapy treats an exception here as a
        # broken socket and silently stops reading it, so keep the first
        # failure for stop() to report instead of raising.
        try:
            udp = decode_frame(self._linktype, pkt.load)
            if udp is None:
                return
            if udp.data == self._marker_token and self._is_marker(udp.src, udp.dst):
                self._drained.set()
                return
            if not udp.complete:
                self._truncated += 1
                return
            self.recorder.append_threadsafe(udp.src, udp.dst, udp.data, float(pkt.time))
            self._recorded += 1
        except Exception as exc:
            if self._failure is None:
                self._failure = exc

    def _is_marker(self, src: Address, dst: Address) -> bool:
        return (
            bool(self._marker_token)
            and src == dst
            and self._marker_addr is not None
            and ipaddress.ip_address(src[0]) == self._marker_addr
        )


def _sort_key(address: _IPAddress) -> tuple[int, int]:
    return address.version, int(address)
