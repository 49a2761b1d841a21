package sockdiag

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/mdlayher/netlink"
)

// UAPI constants from include/uapi/linux/{sock_diag,inet_diag,mptcp}.h.
// x/sys/unix has none of them.
const (
	sockDiagByFamily = 20 // SOCK_DIAG_BY_FAMILY

	afInet  = 2  // AF_INET
	afInet6 = 10 // AF_INET6

	ipprotoTCP   = 6   // IPPROTO_TCP
	ipprotoMPTCP = 262 // IPPROTO_MPTCP

	inetDiagReqV2Len = 56 // sizeof(struct inet_diag_req_v2)
	inetDiagMsgLen   = 72 // sizeof(struct inet_diag_msg)

	inetDiagReqProtocol = 3 // INET_DIAG_REQ_PROTOCOL: u32 protocol wider than u8

	inetDiagInfo     = 2  // INET_DIAG_INFO: struct tcp_info / struct mptcp_info
	inetDiagULPInfo  = 19 // INET_DIAG_ULP_INFO: nest
	inetDiagCgroupID = 21 // INET_DIAG_CGROUP_ID: u64, sent unasked (Linux 5.8)

	inetULPInfoName  = 1 // INET_ULP_INFO_NAME: string
	inetULPInfoMPTCP = 3 // INET_ULP_INFO_MPTCP: nest of MPTCP_SUBFLOW_ATTR_*

	subflowAttrTokenRem = 1  // MPTCP_SUBFLOW_ATTR_TOKEN_REM: u32
	subflowAttrTokenLoc = 2  // MPTCP_SUBFLOW_ATTR_TOKEN_LOC: u32
	subflowAttrFlags    = 8  // MPTCP_SUBFLOW_ATTR_FLAGS: u32
	subflowAttrIDRem    = 9  // MPTCP_SUBFLOW_ATTR_ID_REM: u8
	subflowAttrIDLoc    = 10 // MPTCP_SUBFLOW_ATTR_ID_LOC: u8

	ulpNameMPTCP = "mptcp"
)

// Offsets in struct mptcp_info (include/uapi/linux/mptcp.h). There is a
// 16-bit hole at 6 and an 8-bit hole at 43.
const (
	offMPTCPExtraSubflows        = 0
	offMPTCPAddAddrSignal        = 1
	offMPTCPAddAddrAccepted      = 2
	offMPTCPLimitExtraSubflows   = 3
	offMPTCPEndpSignalMax        = 4
	offMPTCPLimitAddAddrAccepted = 5
	offMPTCPFlags                = 8
	offMPTCPToken                = 12
	offMPTCPWriteSeq             = 16
	offMPTCPSndUna               = 24
	offMPTCPRcvNxt               = 32
	offMPTCPLocalAddrUsed        = 40
	offMPTCPEndpSubflowMax       = 41
	offMPTCPCsumEnabled          = 42
	offMPTCPRetransmits          = 44
	offMPTCPBytesRetrans         = 48
	offMPTCPBytesSent            = 56
	offMPTCPBytesReceived        = 64
	offMPTCPBytesAcked           = 72
	offMPTCPSubflowsTotal        = 80
	offMPTCPEndpLaminarMax       = 81
	offMPTCPEndpFullmeshMax      = 82
	offMPTCPLastDataSent         = 84
	offMPTCPLastDataRecv         = 88
	offMPTCPLastAckRecv          = 92
)

// Offsets in struct tcp_info (include/uapi/linux/tcp.h).
const (
	offTCPState        = 0
	offTCPCAState      = 1
	offTCPRetransmits  = 2
	offTCPBackoff      = 4
	offTCPRTO          = 8
	offTCPSndMSS       = 16
	offTCPRcvMSS       = 20
	offTCPUnacked      = 24
	offTCPLost         = 32
	offTCPRetrans      = 36
	offTCPLastDataSent = 44
	offTCPLastDataRecv = 52
	offTCPLastAckRecv  = 56
	offTCPPMTU         = 60
	offTCPRTT          = 68
	offTCPRTTVar       = 72
	offTCPSndSsthresh  = 76
	offTCPSndCwnd      = 80
	offTCPTotalRetrans = 100
	offTCPPacingRate   = 104
	offTCPBytesAcked   = 120
	offTCPBytesRecv    = 128
	offTCPSegsOut      = 136
	offTCPSegsIn       = 140
	offTCPMinRTT       = 148
	offTCPDeliveryRate = 160
	offTCPBytesSent    = 200
	offTCPBytesRetrans = 208
	offTCPSndWnd       = 228
)

var errShortMsg = errors.New("inet_diag_msg too short")

// fieldReader reads host-endian fields of a kernel struct that may be
// shorter than the newest layout: a field beyond the end reads as zero.
type fieldReader []byte

func (r fieldReader) u8(off int) uint8 {
	if off >= len(r) {
		return 0
	}
	return r[off]
}

func (r fieldReader) u32(off int) uint32 {
	if off+4 > len(r) {
		return 0
	}
	return binary.NativeEndian.Uint32(r[off:])
}

func (r fieldReader) u64(off int) uint64 {
	if off+8 > len(r) {
		return 0
	}
	return binary.NativeEndian.Uint64(r[off:])
}

func (r fieldReader) usec(off int) time.Duration {
	return time.Duration(r.u32(off)) * time.Microsecond
}

func (r fieldReader) msec(off int) time.Duration {
	return time.Duration(r.u32(off)) * time.Millisecond
}

// parseMPTCPInfo decodes struct mptcp_info of any length.
func parseMPTCPInfo(b []byte) MPTCPInfo {
	r := fieldReader(b)
	return MPTCPInfo{
		Size:                 len(b),
		ExtraSubflows:        r.u8(offMPTCPExtraSubflows),
		AddAddrSignal:        r.u8(offMPTCPAddAddrSignal),
		AddAddrAccepted:      r.u8(offMPTCPAddAddrAccepted),
		LimitExtraSubflows:   r.u8(offMPTCPLimitExtraSubflows),
		EndpSignalMax:        r.u8(offMPTCPEndpSignalMax),
		LimitAddAddrAccepted: r.u8(offMPTCPLimitAddAddrAccepted),
		Flags:                MPTCPInfoFlags(r.u32(offMPTCPFlags)),
		Token:                r.u32(offMPTCPToken),
		WriteSeq:             r.u64(offMPTCPWriteSeq),
		SndUna:               r.u64(offMPTCPSndUna),
		RcvNxt:               r.u64(offMPTCPRcvNxt),
		LocalAddrUsed:        r.u8(offMPTCPLocalAddrUsed),
		EndpSubflowMax:       r.u8(offMPTCPEndpSubflowMax),
		CsumEnabled:          r.u8(offMPTCPCsumEnabled) != 0,
		Retransmits:          r.u32(offMPTCPRetransmits),
		BytesRetrans:         r.u64(offMPTCPBytesRetrans),
		BytesSent:            r.u64(offMPTCPBytesSent),
		BytesReceived:        r.u64(offMPTCPBytesReceived),
		BytesAcked:           r.u64(offMPTCPBytesAcked),
		SubflowsTotal:        r.u8(offMPTCPSubflowsTotal),
		EndpLaminarMax:       r.u8(offMPTCPEndpLaminarMax),
		EndpFullmeshMax:      r.u8(offMPTCPEndpFullmeshMax),
		LastDataSent:         r.msec(offMPTCPLastDataSent),
		LastDataRecv:         r.msec(offMPTCPLastDataRecv),
		LastAckRecv:          r.msec(offMPTCPLastAckRecv),
	}
}

// parseTCPInfo decodes struct tcp_info of any length.
func parseTCPInfo(b []byte) TCPInfo {
	r := fieldReader(b)
	return TCPInfo{
		Size:          len(b),
		State:         r.u8(offTCPState),
		CAState:       r.u8(offTCPCAState),
		Retransmits:   r.u8(offTCPRetransmits),
		Backoff:       r.u8(offTCPBackoff),
		RTO:           r.usec(offTCPRTO),
		SndMSS:        r.u32(offTCPSndMSS),
		RcvMSS:        r.u32(offTCPRcvMSS),
		Unacked:       r.u32(offTCPUnacked),
		Lost:          r.u32(offTCPLost),
		Retrans:       r.u32(offTCPRetrans),
		LastDataSent:  r.msec(offTCPLastDataSent),
		LastDataRecv:  r.msec(offTCPLastDataRecv),
		LastAckRecv:   r.msec(offTCPLastAckRecv),
		PMTU:          r.u32(offTCPPMTU),
		RTT:           r.usec(offTCPRTT),
		RTTVar:        r.usec(offTCPRTTVar),
		SndSsthresh:   r.u32(offTCPSndSsthresh),
		SndCwnd:       r.u32(offTCPSndCwnd),
		TotalRetrans:  r.u32(offTCPTotalRetrans),
		PacingRate:    r.u64(offTCPPacingRate),
		BytesAcked:    r.u64(offTCPBytesAcked),
		BytesReceived: r.u64(offTCPBytesRecv),
		SegsOut:       r.u32(offTCPSegsOut),
		SegsIn:        r.u32(offTCPSegsIn),
		MinRTT:        r.usec(offTCPMinRTT),
		DeliveryRate:  r.u64(offTCPDeliveryRate),
		BytesSent:     r.u64(offTCPBytesSent),
		BytesRetrans:  r.u64(offTCPBytesRetrans),
		SndWnd:        r.u32(offTCPSndWnd),
	}
}

// diagMsg is the decoded struct inet_diag_msg.
type diagMsg struct {
	Family  uint8
	State   uint8
	Local   netip.AddrPort
	Remote  netip.AddrPort
	IfIndex uint32
	Cookie  uint64
	UID     uint32
	Inode   uint32
}

// parseDiagMsg decodes the struct inet_diag_msg at the start of a
// SOCK_DIAG_BY_FAMILY reply and returns it with the attributes that follow.
//
// Layout: family, state, timer, retrans (u8); id { sport, dport (be16),
// src[4], dst[4] (be32), if (u32), cookie[2] (u32) }; expires, rqueue,
// wqueue, uid, inode (u32).
func parseDiagMsg(b []byte) (diagMsg, []byte, error) {
	if len(b) < inetDiagMsgLen {
		return diagMsg{}, nil, fmt.Errorf("%w: %d bytes, want %d", errShortMsg, len(b), inetDiagMsgLen)
	}
	m := diagMsg{
		Family:  b[0],
		State:   b[1],
		IfIndex: binary.NativeEndian.Uint32(b[40:]),
		Cookie:  uint64(binary.NativeEndian.Uint32(b[44:])) | uint64(binary.NativeEndian.Uint32(b[48:]))<<32,
		UID:     binary.NativeEndian.Uint32(b[64:]),
		Inode:   binary.NativeEndian.Uint32(b[68:]),
	}
	src, err := parseAddr(m.Family, b[8:24])
	if err != nil {
		return diagMsg{}, nil, err
	}
	dst, err := parseAddr(m.Family, b[24:40])
	if err != nil {
		return diagMsg{}, nil, err
	}
	m.Local = netip.AddrPortFrom(src, binary.BigEndian.Uint16(b[4:]))
	m.Remote = netip.AddrPortFrom(dst, binary.BigEndian.Uint16(b[6:]))
	return m, b[inetDiagMsgLen:], nil
}

// parseAddr decodes an idiag_src/idiag_dst field; IPv4-mapped IPv6
// addresses become IPv4.
func parseAddr(family uint8, b []byte) (netip.Addr, error) {
	switch family {
	case afInet:
		return netip.AddrFrom4([4]byte(b[:4])), nil
	case afInet6:
		return netip.AddrFrom16([16]byte(b[:16])).Unmap(), nil
	default:
		return netip.Addr{}, fmt.Errorf("unexpected address family %d in inet_diag_msg", family)
	}
}

// parseConnection decodes one MPTCP sock_diag reply (inet_diag_msg plus
// attributes, INET_DIAG_INFO holding struct mptcp_info).
func parseConnection(b []byte) (*Connection, error) {
	m, attrs, err := parseDiagMsg(b)
	if err != nil {
		return nil, err
	}
	c := &Connection{
		Local:   m.Local,
		Remote:  m.Remote,
		State:   m.State,
		UID:     m.UID,
		Inode:   m.Inode,
		IfIndex: m.IfIndex,
		Cookie:  m.Cookie,
	}
	ad, err := netlink.NewAttributeDecoder(attrs)
	if err != nil {
		return nil, fmt.Errorf("decode MPTCP socket attributes: %w", err)
	}
	for ad.Next() {
		switch ad.Type() {
		case inetDiagInfo:
			ad.Do(func(b []byte) error {
				c.Info = parseMPTCPInfo(b)
				c.Token = c.Info.Token
				return nil
			})
		case inetDiagCgroupID:
			c.CgroupID = ad.Uint64()
		}
	}
	if err := ad.Err(); err != nil {
		return nil, fmt.Errorf("decode MPTCP socket attributes: %w", err)
	}
	return c, nil
}

// tcpReply is one TCP sock_diag reply, decoded.
type tcpReply struct {
	msg diagMsg
	// mptcp reports that the socket's ULP is "mptcp": an MPTCP subflow,
	// whose MPTCP_SUBFLOW_ATTR_* are in subflow.
	mptcp    bool
	subflow  Subflow
	tcpInfo  []byte
	cgroupID uint64
}

// parseTCPReply decodes one TCP sock_diag reply.
func parseTCPReply(b []byte) (tcpReply, error) {
	var r tcpReply
	m, attrs, err := parseDiagMsg(b)
	if err != nil {
		return tcpReply{}, err
	}
	r.msg = m
	ad, err := netlink.NewAttributeDecoder(attrs)
	if err != nil {
		return tcpReply{}, fmt.Errorf("decode TCP socket attributes: %w", err)
	}
	for ad.Next() {
		switch ad.Type() {
		case inetDiagInfo:
			ad.Do(func(b []byte) error {
				r.tcpInfo = b
				return nil
			})
		case inetDiagULPInfo:
			ad.Nested(func(nad *netlink.AttributeDecoder) error {
				var err error
				r.mptcp, err = parseULPInfo(nad, &r.subflow)
				return err
			})
		case inetDiagCgroupID:
			r.cgroupID = ad.Uint64()
		}
	}
	if err := ad.Err(); err != nil {
		return tcpReply{}, fmt.Errorf("decode TCP socket attributes: %w", err)
	}
	return r, nil
}

// parseSubflow decodes one TCP sock_diag reply. ok is false, with no error,
// for a TCP socket whose ULP is not "mptcp".
func parseSubflow(b []byte) (Subflow, bool, error) {
	r, err := parseTCPReply(b)
	if err != nil || !r.mptcp {
		return Subflow{}, false, err
	}
	sf := r.subflow
	sf.Local, sf.Remote = r.msg.Local, r.msg.Remote
	sf.State = r.msg.State
	sf.IfIndex = r.msg.IfIndex
	sf.Cookie = r.msg.Cookie
	sf.TCP = parseTCPInfo(r.tcpInfo)
	return sf, true, nil
}

// parseTCPSocket decodes one TCP sock_diag reply. ok is false, with no
// error, for an MPTCP subflow.
func parseTCPSocket(b []byte) (TCPSocket, bool, error) {
	r, err := parseTCPReply(b)
	if err != nil || r.mptcp {
		return TCPSocket{}, false, err
	}
	return TCPSocket{Local: r.msg.Local, Remote: r.msg.Remote, State: r.msg.State,
		UID: r.msg.UID, Inode: r.msg.Inode, CgroupID: r.cgroupID}, true, nil
}

// parseULPInfo decodes the INET_DIAG_ULP_INFO nest into sf and reports
// whether the ULP is MPTCP.
func parseULPInfo(ad *netlink.AttributeDecoder, sf *Subflow) (bool, error) {
	var isMPTCP bool
	for ad.Next() {
		switch ad.Type() {
		case inetULPInfoName:
			ad.Do(func(b []byte) error {
				isMPTCP = string(trimNUL(b)) == ulpNameMPTCP
				return nil
			})
		case inetULPInfoMPTCP:
			ad.Nested(func(nad *netlink.AttributeDecoder) error {
				parseSubflowAttrs(nad, sf)
				return nil
			})
		}
	}
	return isMPTCP, ad.Err()
}

// parseSubflowAttrs decodes the MPTCP_SUBFLOW_ATTR_* nest; errors stay in ad.
func parseSubflowAttrs(ad *netlink.AttributeDecoder, sf *Subflow) {
	for ad.Next() {
		switch ad.Type() {
		case subflowAttrTokenRem:
			sf.RemoteToken = ad.Uint32()
		case subflowAttrTokenLoc:
			sf.Token = ad.Uint32()
		case subflowAttrFlags:
			sf.Flags = SubflowFlags(ad.Uint32())
		case subflowAttrIDRem:
			sf.RemoteID = ad.Uint8()
		case subflowAttrIDLoc:
			sf.LocalID = ad.Uint8()
		}
	}
}

func trimNUL(b []byte) []byte {
	for len(b) > 0 && b[len(b)-1] == 0 {
		b = b[:len(b)-1]
	}
	return b
}

// encodeRequest builds a SOCK_DIAG_BY_FAMILY request: struct
// inet_diag_req_v2 asking for INET_DIAG_INFO, followed by an
// INET_DIAG_REQ_PROTOCOL attribute when the protocol does not fit the
// struct's u8 (IPPROTO_MPTCP is 262). token goes to id.idiag_cookie[0],
// where the MPTCP diag module looks up a single connection.
func encodeRequest(family uint8, protocol uint32, states uint32, token uint32) []byte {
	n := inetDiagReqV2Len
	if protocol > 0xff {
		n += 8
	}
	b := make([]byte, n)
	b[0] = family
	if protocol <= 0xff {
		b[1] = uint8(protocol)
	}
	b[2] = 1 << (inetDiagInfo - 1) // idiag_ext
	binary.NativeEndian.PutUint32(b[4:], states)
	binary.NativeEndian.PutUint32(b[8+40:], token) // id.idiag_cookie[0]
	if protocol > 0xff {
		binary.NativeEndian.PutUint16(b[56:], 8) // nla_len
		binary.NativeEndian.PutUint16(b[58:], inetDiagReqProtocol)
		binary.NativeEndian.PutUint32(b[60:], protocol)
	}
	return b
}
