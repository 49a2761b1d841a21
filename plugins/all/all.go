package all

import (
	// The built-in policies, registered by their init functions.
	_ "github.com/mptcpgod/mptcpgod/plugins/fullmesh"
)
