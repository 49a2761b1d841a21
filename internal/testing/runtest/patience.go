package runtest

import (
	"os"
	"strconv"
	"time"
)

// PatienceEnv names the environment variable that multiplies how long the
// tests wait for the kernel and the daemon: a number of at least 1. The
// compatibility matrix sets it for guests whose CPU qemu emulates
// (internal/compat), where everything is several times slower.
const PatienceEnv = "MPTCPGOD_TEST_PATIENCE"

// Patience returns d multiplied by $MPTCPGOD_TEST_PATIENCE; d itself when
// the variable is unset, not a number, or below 1.
func Patience(d time.Duration) time.Duration {
	f, err := strconv.ParseFloat(os.Getenv(PatienceEnv), 64)
	if err != nil || f <= 1 {
		return d
	}
	return time.Duration(float64(d) * f)
}
