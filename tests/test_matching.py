"""Matching semantics: how the message layer classifies a case's datagrams, judged on the record alone."""

from __future__ import annotations

from msgin5g_conformance.engine.matching import (
    REQ_ACK,
    REQ_MID,
    REQ_RETRANSMIT,
    Inbox,
    Kind,
    message_layer_violations,
)
from msgin5g_conformance.wire.capture.record import Address, Datagram
from msgin5g_conformance.wire.codec import CoapMessage, encode
from msgin5g_conformance.wire.numbers import Code, MessageType, OptionNumber, encode_uint

TESTER: Address = ("127.1.1.11", 65401)  # cue1
OTHER_TESTER: Address = ("127.1.1.12", 65401)  # cue2
SUT: Address = ("127.1.1.1", 65401)
SUT_UU: Address = ("127.1.1.2", 65401)
NOBODY: Address = ("127.1.1.200", 65401)


class Wire:
    """A record under construction: datagrams in order, with times."""

    def __init__(self) -> None:
        self.datagrams: list[Datagram] = []
        self.inbox = Inbox(lambda a: a in (TESTER, OTHER_TESTER, NOBODY))

    def add(self, src: Address, dst: Address, msg: CoapMessage | bytes, t: float | None = None) -> Datagram:
        data = msg if isinstance(msg, bytes) else encode(msg)
        when = t if t is not None else (self.datagrams[-1].time + 0.001 if self.datagrams else 100.0)
        d = Datagram(len(self.datagrams), when, src, dst, data)
        self.datagrams.append(d)
        self.inbox.feed(self.datagrams)
        return d

    def kind(self, d: Datagram) -> Kind:
        return next(a.kind for a in self.inbox.arrivals if a.seq == d.seq)


def con(mid: int, code: int = Code.CONTENT, token: bytes = b"\x01", payload: bytes = b"x") -> CoapMessage:
    return CoapMessage(MessageType.CON, code, mid, token, (), payload)


def ack(mid: int, code: int = 0, token: bytes = b"", payload: bytes = b"") -> CoapMessage:
    return CoapMessage(MessageType.ACK, code, mid, token, (), payload)


def label(a: Address) -> str:
    return f"{a[0]}:{a[1]}"


def test_a_retransmitted_con_from_the_sut_is_a_duplicate_not_a_new_message() -> None:
    """Same source, destination and Message ID with the same bytes: message-layer traffic (RFC 7252 4.5)."""
    w = Wire()
    first = w.add(SUT, TESTER, con(7))
    again = w.add(SUT, TESTER, con(7))
    assert w.kind(first) is Kind.MESSAGE and w.kind(again) is Kind.DUPLICATE
    assert [a.seq for a in w.inbox.leftovers()] == [first.seq]


def test_the_same_mid_towards_another_endpoint_is_a_new_message() -> None:
    """Message IDs are per peer (RFC 7252 4.4): MID 7 to cue1 and to cue2 are two messages."""
    w = Wire()
    a, b = w.add(SUT, TESTER, con(7)), w.add(SUT, OTHER_TESTER, con(7))
    assert w.kind(a) is Kind.MESSAGE and w.kind(b) is Kind.MESSAGE


def test_an_empty_ack_answers_the_tester_con_only_from_its_peer() -> None:
    """An ACK matches a CON by Message ID from the endpoint the CON went to; otherwise it is a stray."""
    w = Wire()
    w.add(TESTER, SUT, con(0x42, Code.GET))
    right = w.add(SUT, TESTER, ack(0x42))
    w.add(TESTER, SUT_UU, con(0x43, Code.GET))
    wrong_peer = w.add(SUT, TESTER, ack(0x43))  # from sut.pc5, but the CON went to sut.uu
    unknown = w.add(SUT, TESTER, ack(0x99))
    assert w.kind(right) is Kind.ACK
    assert w.kind(wrong_peer) is Kind.STRAY and w.kind(unknown) is Kind.STRAY
    assert {a.seq for a in w.inbox.leftovers()} == {wrong_peer.seq, unknown.seq}


def test_a_piggybacked_response_is_a_message_and_its_repeat_a_duplicate() -> None:
    """A response in the ACK is a message a step must take; the same ACK again (the SUT answering the
    tester's retransmission, RFC 7252 4.5) is message-layer traffic."""
    w = Wire()
    w.add(TESTER, SUT, con(5, Code.GET))
    w.add(TESTER, SUT, con(5, Code.GET))  # the tester's retransmission
    answer = w.add(SUT, TESTER, ack(5, Code.BAD_OPTION, b"\x01"))
    repeat = w.add(SUT, TESTER, ack(5, Code.BAD_OPTION, b"\x01"))
    assert w.kind(answer) is Kind.MESSAGE and w.kind(repeat) is Kind.DUPLICATE
    assert [a.seq for a in w.inbox.leftovers()] == [answer.seq]


def test_an_rst_answers_a_tester_con() -> None:
    """A Reset rejects the CON (RFC 7252 4.2): legal, message-layer traffic, and the CON is answered."""
    w = Wire()
    w.add(TESTER, SUT, con(9))
    rst = w.add(SUT, TESTER, CoapMessage(MessageType.RST, 0, 9))
    assert w.kind(rst) is Kind.RESET
    assert message_layer_violations(w.inbox, 1.0, 4, label) == []


def test_an_unanswered_tester_con_breaks_the_ack_bound() -> None:
    """No ACK or RST for a tester CON: REQ-COAP-MSG-1, naming the CON and its transmissions."""
    w = Wire()
    w.add(TESTER, SUT, con(1), t=10.0)
    w.add(TESTER, SUT, con(1), t=10.15)
    (v,) = message_layer_violations(w.inbox, 1.05, 4, label)
    assert v.requirement == REQ_ACK and "2 transmission(s)" in v.reason and "1050 ms" in v.reason


def test_an_ack_later_than_the_bound_breaks_it_and_one_within_does_not() -> None:
    """The bound counts from the CON's first transmission to its answer."""
    late, early = Wire(), Wire()
    late.add(TESTER, SUT, con(1), t=10.0)
    late.add(SUT, TESTER, ack(1), t=11.2)
    early.add(TESTER, SUT, con(1), t=10.0)
    early.add(SUT, TESTER, ack(1), t=10.4)
    (v,) = message_layer_violations(late.inbox, 1.05, 4, label)
    assert v.requirement == REQ_ACK and "1200 ms" in v.reason
    assert message_layer_violations(early.inbox, 1.05, 4, label) == []


def test_more_copies_of_a_sut_con_than_max_retransmit_allows() -> None:
    """A SUT CON seen more than 1 + MAX_RETRANSMIT times breaks REQ-COAP-MSG-2; exactly that many does not."""
    w = Wire()
    for _ in range(5):
        w.add(SUT, TESTER, con(3))
    assert message_layer_violations(w.inbox, 1.0, 4, label) == []
    w.add(SUT, TESTER, con(3))
    (v,) = message_layer_violations(w.inbox, 1.0, 4, label)
    assert v.requirement == REQ_RETRANSMIT and "6 times" in v.reason


def test_retransmitting_after_the_acknowledgement() -> None:
    """A CON sent again after the tester acknowledged it: "retransmitted ... until ... it is
    acknowledged" (RFC 7252 4.2, REQ-COAP-MSG-2), even within MAX_RETRANSMIT. Copies within the
    ACK bound after the ACK (in flight, or crossing it in a busy SUT's receive queue) are not."""
    w = Wire()
    w.add(SUT, TESTER, con(9), t=100.0)
    w.add(TESTER, SUT, ack(9), t=100.001)
    w.add(SUT, TESTER, con(9), t=100.05)  # in flight when the ACK left
    w.add(SUT, TESTER, con(9), t=100.9)  # a busy SUT that had not read the ACK yet
    assert message_layer_violations(w.inbox, 1.0, 4, label) == []
    again = w.add(SUT, TESTER, con(9), t=101.2)  # more than the bound after the ACK: went on without it
    (v,) = message_layer_violations(w.inbox, 1.0, 4, label)
    assert v.requirement == REQ_RETRANSMIT and "after the tester had acknowledged it" in v.reason
    assert "1 copies after the acknowledgement" in v.reason and again.seq == v.datagram


def test_a_mid_reused_for_another_message_is_a_violation_and_a_message() -> None:
    """Same MID, different bytes, same peer: RFC 7252 4.4; the second message still has to be accounted for."""
    w = Wire()
    w.add(SUT, TESTER, con(3, payload=b"one"))
    second = w.add(SUT, TESTER, con(3, payload=b"two"))
    assert w.kind(second) is Kind.MESSAGE
    (v,) = message_layer_violations(w.inbox, 1.0, 4, label)
    assert v.requirement == REQ_MID and v.datagram == second.seq


def test_a_later_block_request_continues_the_transfer() -> None:
    """A GET for block 1 of the resource asked for before is a continuation (RFC 7959 2.4), not a new request."""
    w = Wire()
    path = ((OptionNumber.URI_PATH, b"bulk"), (OptionNumber.URI_QUERY, b"ue-uri=a"))
    first = w.add(SUT_UU, NOBODY, CoapMessage(MessageType.CON, Code.GET, 1, b"\x01", path))
    block1 = (*path, (OptionNumber.BLOCK2, encode_uint((1 << 4) | 6)))
    more = w.add(SUT_UU, NOBODY, CoapMessage(MessageType.CON, Code.GET, 2, b"\x02", block1))
    other = ((OptionNumber.URI_PATH, b"other"), (OptionNumber.BLOCK2, encode_uint((1 << 4) | 6)))
    stranger = w.add(SUT_UU, NOBODY, CoapMessage(MessageType.CON, Code.GET, 3, b"\x03", other))
    assert [w.kind(d) for d in (first, more, stranger)] == [Kind.MESSAGE, Kind.CONTINUATION, Kind.MESSAGE]


def test_malformed_and_ping_are_classified() -> None:
    """Bytes that are not CoAP are malformed (accountable); an Empty CON is a ping (message layer)."""
    w = Wire()
    bad = w.add(SUT, TESTER, b"\x40\x01")
    ping = w.add(SUT, TESTER, CoapMessage(MessageType.CON, 0, 77))
    assert w.kind(bad) is Kind.MALFORMED and w.kind(ping) is Kind.PING
    assert [a.seq for a in w.inbox.leftovers()] == [bad.seq]


def test_taken_messages_are_not_leftovers_and_candidates_are_per_address() -> None:
    """A message a step took is accounted for; candidates are what arrived at one address."""
    w = Wire()
    to_cue1 = w.add(SUT, TESTER, con(1))
    to_nobody = w.add(SUT, NOBODY, con(2))
    (c,) = w.inbox.candidates(TESTER)
    assert c.seq == to_cue1.seq
    w.inbox.take(c, "3")
    assert [a.seq for a in w.inbox.leftovers()] == [to_nobody.seq]


def test_datagrams_the_tester_sent_are_not_arrivals() -> None:
    """Only what the SUT sent is judged; the tester's own datagrams only feed the message layer."""
    w = Wire()
    w.add(TESTER, SUT, con(1))
    w.add(TESTER, SUT, CoapMessage(MessageType.NON, Code.CONTENT, 2, b"", (), b"y"))
    assert w.inbox.arrivals == []
