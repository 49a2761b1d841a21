package all

import (
	// The built-in policies, registered by their init functions.
	_ "github.com/mptcpgod/mptcpgod/plugins/backupcell"
	_ "github.com/mptcpgod/mptcpgod/plugins/costaware"
	_ "github.com/mptcpgod/mptcpgod/plugins/exec"
	_ "github.com/mptcpgod/mptcpgod/plugins/fullmesh"
)
