//go:build linux

package genl

// Constants of the mptcp_pm generic netlink family, as in the kernel's
// include/uapi/linux/mptcp_pm.h (generated from
// Documentation/netlink/specs/mptcp_pm.yaml) and include/uapi/linux/mptcp.h.
//
// TODO: upstream to x/sys/unix, which has only IPPROTO_MPTCP and SOL_MPTCP.

// Family name, version and multicast groups.
const (
	_MPTCP_PM_NAME   = "mptcp_pm"
	_MPTCP_PM_VER    = 1
	_MPTCP_PM_EV_GRP = "mptcp_pm_events" // joining needs CAP_NET_ADMIN
)

// enum mptcp_pm_command: MPTCP_PM_CMD_*.
const (
	_MPTCP_PM_CMD_ADD_ADDR        = 1
	_MPTCP_PM_CMD_DEL_ADDR        = 2
	_MPTCP_PM_CMD_GET_ADDR        = 3
	_MPTCP_PM_CMD_FLUSH_ADDRS     = 4
	_MPTCP_PM_CMD_SET_LIMITS      = 5
	_MPTCP_PM_CMD_GET_LIMITS      = 6
	_MPTCP_PM_CMD_SET_FLAGS       = 7
	_MPTCP_PM_CMD_ANNOUNCE        = 8
	_MPTCP_PM_CMD_REMOVE          = 9
	_MPTCP_PM_CMD_SUBFLOW_CREATE  = 10
	_MPTCP_PM_CMD_SUBFLOW_DESTROY = 11
)

// Top-level command attributes: MPTCP_PM_ATTR_*.
const (
	_MPTCP_PM_ATTR_ADDR          = 1 // nest of MPTCP_PM_ADDR_ATTR_*
	_MPTCP_PM_ATTR_RCV_ADD_ADDRS = 2 // u32
	_MPTCP_PM_ATTR_SUBFLOWS      = 3 // u32
	_MPTCP_PM_ATTR_TOKEN         = 4 // u32
	_MPTCP_PM_ATTR_LOC_ID        = 5 // u8
	_MPTCP_PM_ATTR_ADDR_REMOTE   = 6 // nest of MPTCP_PM_ADDR_ATTR_*

	// MPTCP_PM_ENDPOINT_ADDR is the only attribute of ADD_ADDR's
	// "endpoint" attribute set; it has the same number as ATTR_ADDR.
	_MPTCP_PM_ENDPOINT_ADDR = 1
)

// Address nest attributes: MPTCP_PM_ADDR_ATTR_*.
const (
	_MPTCP_PM_ADDR_ATTR_FAMILY = 1 // u16, AF_INET or AF_INET6
	_MPTCP_PM_ADDR_ATTR_ID     = 2 // u8
	_MPTCP_PM_ADDR_ATTR_ADDR4  = 3 // be32
	_MPTCP_PM_ADDR_ATTR_ADDR6  = 4 // 16 bytes
	_MPTCP_PM_ADDR_ATTR_PORT   = 5 // u16 in HOST byte order
	_MPTCP_PM_ADDR_ATTR_FLAGS  = 6 // u32, MPTCP_PM_ADDR_FLAG_*
	_MPTCP_PM_ADDR_ATTR_IF_IDX = 7 // s32
)

// Event attributes: MPTCP_ATTR_*.
const (
	_MPTCP_ATTR_TOKEN        = 1  // u32
	_MPTCP_ATTR_FAMILY       = 2  // u16
	_MPTCP_ATTR_LOC_ID       = 3  // u8
	_MPTCP_ATTR_REM_ID       = 4  // u8
	_MPTCP_ATTR_SADDR4       = 5  // be32
	_MPTCP_ATTR_SADDR6       = 6  // 16 bytes
	_MPTCP_ATTR_DADDR4       = 7  // be32
	_MPTCP_ATTR_DADDR6       = 8  // 16 bytes
	_MPTCP_ATTR_SPORT        = 9  // be16
	_MPTCP_ATTR_DPORT        = 10 // be16
	_MPTCP_ATTR_BACKUP       = 11 // u8
	_MPTCP_ATTR_ERROR        = 12 // u8
	_MPTCP_ATTR_FLAGS        = 13 // u16, MPTCP_PM_EV_FLAG_*
	_MPTCP_ATTR_TIMEOUT      = 14 // u32, never emitted
	_MPTCP_ATTR_IF_IDX       = 15 // s32 (the YAML says u32)
	_MPTCP_ATTR_RESET_REASON = 16 // u32
	_MPTCP_ATTR_RESET_FLAGS  = 17 // u32
	_MPTCP_ATTR_SERVER_SIDE  = 18 // u8; since 6.18 only sent when true
)
