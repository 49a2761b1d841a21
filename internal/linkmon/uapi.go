package linkmon

// Linux UAPI values the portable files use, so that the package builds on
// every OS (x/sys/unix has them only for Linux).
const (
	afInet  = 2  // AF_INET
	afInet6 = 10 // AF_INET6

	iffUp       = 0x1     // IFF_UP
	iffLoopback = 0x8     // IFF_LOOPBACK
	iffLowerUp  = 0x10000 // IFF_LOWER_UP

	rtnUnicast   = 1   // RTN_UNICAST
	rtTableLocal = 255 // RT_TABLE_LOCAL
	rtprotKernel = 2   // RTPROT_KERNEL

	operUnknown = 0 // IF_OPER_UNKNOWN
	operUp      = 6 // IF_OPER_UP
)
